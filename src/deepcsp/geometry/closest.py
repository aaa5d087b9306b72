"""Exact closest points on triangle meshes (BVH) and point clouds (KD-tree).

Precompute once, query many times (as gpytoolbox and libigl do)::

    oracle = MeshOracle(vertices, faces)
    result = oracle.query(points)      # ClosestPoints(points, distances, face_ids, barycentrics)
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from deepcsp.geometry.cleanup import face_normals


@dataclass
class ClosestPoints:
    """Result of an exact closest-point query for N points.

    Attributes
    ----------
    points : (N, 3) float64
        Closest points on the surface.
    distances : (N,) float64
        Euclidean (not squared) distances ``|query - points|``.
    face_ids : (N,) int64
        Triangle containing each closest point (index of the nearest input point for clouds).
    barycentrics : (N, 3) float64 or None
        Barycentric coordinates of ``points`` in ``face_ids`` (``None`` for clouds); for a mesh's
        query computed when first asked for (collocation never asks: 15% of a fit's time).
    """

    points: np.ndarray
    distances: np.ndarray
    face_ids: np.ndarray
    known_barycentrics: np.ndarray | None = None
    """Barycentrics given with the result (see :attr:`barycentrics`)."""
    mesh: tuple[np.ndarray, np.ndarray] | None = field(default=None, repr=False, compare=False)
    """The mesh ``(vertices, faces)`` queried, which gives :attr:`barycentrics` when none were given."""

    @property
    def barycentrics(self) -> np.ndarray | None:
        if self.known_barycentrics is None and self.mesh is not None:
            vertices, faces = self.mesh
            self.known_barycentrics = triangle_barycentrics(self.points, vertices[faces[self.face_ids]])
        return self.known_barycentrics


def check_points(points, name: str = "points") -> np.ndarray:
    """Return ``points`` as a C-contiguous (N, 3) float64 array or raise ValueError quoting it."""
    arr = np.asarray(points)
    if arr.ndim != 2 or arr.shape[-1] != 3:
        raise ValueError(f"{name} must have shape (N, 3), got {arr.shape}")
    if arr.dtype.kind not in "fiu":
        raise ValueError(f"{name} must be numeric, got dtype {arr.dtype}")
    arr = np.ascontiguousarray(arr, dtype=np.float64)
    if not np.isfinite(arr).all():
        raise ValueError(f"{name} contains NaN or inf ({int((~np.isfinite(arr)).any(1).sum())} rows)")
    return arr


def triangle_barycentrics(points: np.ndarray, tri: np.ndarray) -> np.ndarray:
    """Barycentric coordinates of ``points : (N, 3)`` in triangles ``tri : (N, 3, 3)`` (projected)."""
    a, b, c = tri[:, 0], tri[:, 1], tri[:, 2]
    v0, v1, v2 = b - a, c - a, points - a
    d00 = (v0 * v0).sum(1)
    d01 = (v0 * v1).sum(1)
    d11 = (v1 * v1).sum(1)
    d20 = (v2 * v0).sum(1)
    d21 = (v2 * v1).sum(1)
    den = d00 * d11 - d01 * d01
    den = np.where(np.abs(den) > 0, den, 1.0)
    v = (d11 * d20 - d01 * d21) / den
    w = (d00 * d21 - d01 * d20) / den
    return np.stack([1.0 - v - w, v, w], axis=1)


class MeshOracle:
    """Exact closest points on a triangle mesh through libigl's AABB tree.

    Parameters
    ----------
    vertices : (V, 3) float
    faces : (F, 3) int
    backend : {"igl", "open3d"}
        ``open3d`` (optional extra) is imported lazily and only when asked for.
    """

    def __init__(self, vertices: np.ndarray, faces: np.ndarray, backend: str = "igl"):
        self.vertices = np.ascontiguousarray(vertices, dtype=np.float64)
        self.faces = np.ascontiguousarray(faces, dtype=np.int64)
        if self.faces.ndim != 2 or self.faces.shape[1] != 3 or len(self.faces) == 0:
            raise ValueError(f"faces must have shape (F, 3) with F > 0, got {self.faces.shape}")
        self.backend = backend
        if backend == "igl":
            import igl

            self._tree = igl.AABB()
            self._tree.init(self.vertices, self.faces)
        elif backend == "open3d":
            try:
                import open3d as o3d
            except ImportError as exc:  # pragma: no cover - optional
                raise ImportError("backend 'open3d' needs the optional extra: pip install 'deepcsp[open3d]'") from exc
            scene = o3d.t.geometry.RaycastingScene()
            mesh = o3d.t.geometry.TriangleMesh()
            mesh.vertex.positions = o3d.core.Tensor(self.vertices.astype(np.float32))
            mesh.triangle.indices = o3d.core.Tensor(self.faces.astype(np.int32))
            scene.add_triangles(mesh)
            self._tree = scene
        else:
            raise ValueError(f"unknown backend {backend!r}; expected 'igl' or 'open3d'")

    def query(self, points, chunk: int = 1 << 20) -> ClosestPoints:
        """Closest points for ``points : (N, 3)``; see :class:`ClosestPoints`."""
        q = check_points(points)
        outs = [self._query(q[i : i + chunk]) for i in range(0, max(len(q), 1), chunk)] if len(q) else []
        if not outs:
            z = np.zeros((0, 3))
            return ClosestPoints(z, np.zeros(0), np.zeros(0, np.int64), z.copy())
        pts = np.concatenate([o[0] for o in outs])
        fid = np.concatenate([o[1] for o in outs])
        dist = np.linalg.norm(q - pts, axis=1)
        return ClosestPoints(points=pts, distances=dist, face_ids=fid, mesh=(self.vertices, self.faces))

    def _query(self, q: np.ndarray):
        if self.backend == "igl":
            _, fid, pts = self._tree.squared_distance(self.vertices, self.faces, q)
            return np.asarray(pts), np.asarray(fid, dtype=np.int64)
        import open3d as o3d  # pragma: no cover - optional

        ans = self._tree.compute_closest_points(o3d.core.Tensor(q.astype(np.float32)))
        return ans["points"].numpy().astype(np.float64), ans["primitive_ids"].numpy().astype(np.int64)

    def face_normals(self) -> np.ndarray:
        """(F, 3) unit face normals (winding order)."""
        return face_normals(self.vertices, self.faces)


class CloudOracle:
    """Nearest input point of a point cloud through SciPy's KD-tree.

    Parameters
    ----------
    points : (P, 3) float
    """

    def __init__(self, points: np.ndarray):
        from scipy.spatial import cKDTree

        self.vertices = check_points(points, "cloud")
        self.faces = None
        self._tree = cKDTree(self.vertices)

    def query(self, points, workers: int = -1) -> ClosestPoints:
        q = check_points(points)
        dist, idx = self._tree.query(q, k=1, workers=workers)
        return ClosestPoints(points=self.vertices[idx], distances=dist, face_ids=idx.astype(np.int64))


def make_oracle(vertices: np.ndarray, faces: np.ndarray | None, backend: str = "igl"):
    """A :class:`MeshOracle` for a mesh, a :class:`CloudOracle` when ``faces`` is None."""
    return CloudOracle(vertices) if faces is None else MeshOracle(vertices, faces, backend=backend)


def closest_point_on_triangles_naive(points: np.ndarray, vertices: np.ndarray, faces: np.ndarray) -> ClosestPoints:
    """Brute-force reference: test every triangle for every point (Ericson's region tests).

    O(N F) memory and time; for tests only.
    """
    q = check_points(points)
    tri = vertices[faces]  # (F, 3, 3)
    best_d = np.full(len(q), np.inf)
    best_p = np.zeros_like(q)
    best_f = np.zeros(len(q), dtype=np.int64)
    for fi in range(len(faces)):
        p = _closest_on_triangle(q, tri[fi, 0], tri[fi, 1], tri[fi, 2])
        d = np.linalg.norm(q - p, axis=1)
        better = d < best_d
        best_d[better], best_p[better], best_f[better] = d[better], p[better], fi
    bary = triangle_barycentrics(best_p, tri[best_f])
    return ClosestPoints(best_p, best_d, best_f, bary)


def _closest_on_triangle(p: np.ndarray, a: np.ndarray, b: np.ndarray, c: np.ndarray) -> np.ndarray:
    """Closest point on triangle (a, b, c) to each row of ``p``, by Voronoi regions."""
    ab, ac = b - a, c - a
    ap = p - a
    d1, d2 = ap @ ab, ap @ ac
    bp = p - b
    d3, d4 = bp @ ab, bp @ ac
    cp = p - c
    d5, d6 = cp @ ab, cp @ ac
    vc = d1 * d4 - d3 * d2
    vb = d5 * d2 - d1 * d6
    va = d3 * d6 - d5 * d4
    out = np.empty_like(p)
    done = np.zeros(len(p), dtype=bool)

    def put(mask, val):
        m = mask & ~done
        out[m] = val[m] if np.ndim(val) == 2 else val
        done[m] = True

    put((d1 <= 0) & (d2 <= 0), a)
    put((d3 >= 0) & (d4 <= d3), b)
    put((d6 >= 0) & (d5 <= d6), c)
    with np.errstate(divide="ignore", invalid="ignore"):
        v = d1 / (d1 - d3)
        put((vc <= 0) & (d1 >= 0) & (d3 <= 0), a + v[:, None] * ab)
        w = d2 / (d2 - d6)
        put((vb <= 0) & (d2 >= 0) & (d6 <= 0), a + w[:, None] * ac)
        w = (d4 - d3) / ((d4 - d3) + (d5 - d6))
        put((va <= 0) & ((d4 - d3) >= 0) & ((d5 - d6) >= 0), b + w[:, None] * (c - b))
        den = 1.0 / (va + vb + vc)
        v, w = vb * den, vc * den
        put(np.ones(len(p), bool), a + v[:, None] * ab + w[:, None] * ac)
    return out
