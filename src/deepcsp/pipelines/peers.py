"""Peer reconstructions from unoriented point clouds, for side-by-side comparisons (the benchmark
and the demo): open3d's ball pivoting and screened Poisson with stated settings. open3d is an
optional extra (``pip install 'deepcsp[peers]'``), imported only when a peer runs."""

from __future__ import annotations

import numpy as np

from deepcsp.errors import DeepCSPError

#: The settings, as the benchmark and the demo report them.
SETTINGS = {
    "bpa": "open3d ball pivoting: normals from 30 neighbours, oriented by orient_normals_consistent_tangent_plane(30) "
    "(on planar clouds, where its qhull step fails, along the thinnest axis); "
    "radii 1, 2, 4x the mean nearest-neighbour distance",
    "poisson": "open3d screened Poisson: the same normals, depth 9, vertices of the lowest 5% density removed, "
    "then faces more than 3 mean spacings from the input",
}


def available() -> bool:
    """True when open3d imports (on some machines it also needs Debian's libusb-1.0-0)."""
    try:
        import open3d  # noqa: F401
    except Exception:
        return False
    return True


def _open3d():
    try:
        import open3d as o3d
    except Exception as exc:
        raise DeepCSPError(
            "the open3d peers need the optional extra: pip install 'deepcsp[peers]' "
            f"({' '.join(str(exc).split())[:120]})"
        ) from None
    return o3d


def _cloud_with_normals(points: np.ndarray):
    o3d = _open3d()
    pc = o3d.geometry.PointCloud(o3d.utility.Vector3dVector(np.asarray(points, np.float64)))
    pc.estimate_normals(o3d.geometry.KDTreeSearchParamKNN(30))
    try:
        pc.orient_normals_consistent_tangent_plane(30)
    except RuntimeError:  # its qhull step fails on a planar cloud: orient along the cloud's thinnest axis
        centred = np.asarray(points, np.float64) - np.mean(points, axis=0)
        pc.orient_normals_to_align_with_direction(
            np.linalg.svd(centred[:: max(1, len(centred) // 20000)], full_matrices=False)[2][2]
        )
    spacing = float(np.asarray(pc.compute_nearest_neighbor_distance()).mean())
    return pc, spacing


def ball_pivoting(points: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Ball pivoting (see :data:`SETTINGS`): ``(vertices (V, 3), faces (F, 3))``."""
    o3d = _open3d()
    pc, d = _cloud_with_normals(points)
    m = o3d.geometry.TriangleMesh.create_from_point_cloud_ball_pivoting(pc, o3d.utility.DoubleVector([d, 2 * d, 4 * d]))
    return np.asarray(m.vertices), np.asarray(m.triangles)


def screened_poisson(points: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Screened Poisson, trimmed (see :data:`SETTINGS`): ``(vertices (V, 3), faces (F, 3))``."""
    from scipy.spatial import cKDTree

    o3d = _open3d()
    pc, d = _cloud_with_normals(points)
    m, density = o3d.geometry.TriangleMesh.create_from_point_cloud_poisson(pc, depth=9)
    density = np.asarray(density)
    m.remove_vertices_by_mask(density < np.quantile(density, 0.05))
    v, f = np.asarray(m.vertices), np.asarray(m.triangles)
    if len(f) == 0:
        return v, f
    far, _ = cKDTree(points).query(v[f].mean(1))
    return v, f[far <= 3 * d]


PEERS = {"bpa": ball_pivoting, "poisson": screened_poisson}
