"""Inside and outside of closed meshes: a watertightness test and generalised winding numbers.

A CSP field is unsigned: it says where the surface is, not which side is inside. For closed
inputs the side is known at fit time, so fields store it (one bit per grid vertex) and can give
signed distances, outward normals and watertight extractions. Open surfaces have no inside.
"""

from __future__ import annotations

import numpy as np

from deepcsp._arrays import unique
from deepcsp.geometry.cleanup import repeats_index, weld_map


def is_watertight(vertices: np.ndarray, faces: np.ndarray | None, tol: float = 1e-9) -> bool:
    """True when, after welding vertices closer than ``tol`` (relative to the bounding box),
    every edge is shared by exactly two triangles that run opposite ways along it (a closed,
    consistently wound 2-manifold edge structure). Point clouds (``faces is None``) are not.

    Welding by position makes meshes whose OBJ files split vertices along texture seams (e.g.
    ``spot.obj``) count as closed.
    """
    if faces is None or len(faces) == 0:
        return False
    v = np.asarray(vertices, np.float64)
    scale = float(np.ptp(v, axis=0).max()) or 1.0
    _, weld = weld_map(v, scale * max(tol, 1e-15))
    f = weld[np.asarray(faces, np.int64)]
    f = f[~repeats_index(f)]
    if len(f) == 0:
        return False
    directed = np.concatenate([f[:, [0, 1]], f[:, [1, 2]], f[:, [2, 0]]])
    n = int(f.max()) + 1
    fwd = directed[:, 0] * n + directed[:, 1]
    rev = directed[:, 1] * n + directed[:, 0]
    fwd_sorted = np.sort(fwd)
    # each directed edge once, and its reverse present exactly once
    if len(unique(fwd_sorted)) != len(fwd_sorted):
        return False
    pos = np.searchsorted(fwd_sorted, rev)
    pos = np.minimum(pos, len(fwd_sorted) - 1)
    return bool((fwd_sorted[pos] == rev).all())


def winding_numbers(vertices: np.ndarray, faces: np.ndarray, points: np.ndarray) -> np.ndarray:
    """Generalised winding numbers ``(N,)`` of ``points`` w.r.t. a triangle mesh (libigl's fast
    hierarchical approximation; ~1 inside a closed outward-wound mesh, ~0 outside)."""
    import igl

    pts = np.ascontiguousarray(points, dtype=np.float64)
    if len(pts) == 0:
        return np.zeros(0)
    return np.asarray(
        igl.fast_winding_number(np.ascontiguousarray(vertices, np.float64), np.ascontiguousarray(faces, np.int64), pts),
        np.float64,
    )


def outside_mask(vertices: np.ndarray, faces: np.ndarray, points: np.ndarray, chunk: int = 1 << 20) -> np.ndarray:
    """``(N,)`` bool: True where ``points`` lie outside the closed mesh (|winding number| < 1/2).

    The absolute value makes inward-wound closed meshes work too."""
    pts = np.asarray(points, np.float64)
    out = np.empty(len(pts), dtype=bool)
    for i in range(0, len(pts), chunk):
        out[i : i + chunk] = np.abs(winding_numbers(vertices, faces, pts[i : i + chunk])) < 0.5
    return out
