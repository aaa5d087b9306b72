"""Triangle-mesh cleanup: face areas, and welding with removal of degenerate, duplicate and unused
elements. Pure NumPy; ``vertices : (V, 3) float``, ``faces : (F, 3) int``."""

from __future__ import annotations

import numpy as np

from deepcsp._arrays import unique, unique_rows
from deepcsp.constants import DEGENERATE_AREA_REL


def face_cross(vertices: np.ndarray, faces: np.ndarray) -> np.ndarray:
    """``(F, 3)`` each triangle's edge cross product ``(v1 - v0) x (v2 - v0)``: its normal in
    winding order, twice its area long. (The products of ``np.cross``, per axis from coordinate
    rows gathered by contiguous index rows: the same values, 3x faster than gathering through the
    strided views on 1.7M faces, 5x faster than ``np.cross``.)"""
    v = np.asarray(vertices).T.copy()
    corners = np.ascontiguousarray(np.asarray(faces).T)
    a = np.take(v, corners[0], axis=1)
    e1, e2 = np.take(v, corners[1], axis=1) - a, np.take(v, corners[2], axis=1) - a
    x = e1[1] * e2[2] - e1[2] * e2[1]
    y = e1[2] * e2[0] - e1[0] * e2[2]
    return np.stack([x, y, e1[0] * e2[1] - e1[1] * e2[0]], axis=1)


def face_normals(vertices: np.ndarray, faces: np.ndarray) -> np.ndarray:
    """``(F, 3)`` unit face normals (winding order; zero for a degenerate face)."""
    fn = face_cross(vertices, faces)
    return fn / np.maximum(np.linalg.norm(fn, axis=1, keepdims=True), 1e-300)


def face_areas(vertices: np.ndarray, faces: np.ndarray) -> np.ndarray:
    """``(F,)`` triangle areas."""
    return 0.5 * np.linalg.norm(face_cross(vertices, faces), axis=1)


def vertex_normals(vertices: np.ndarray, faces: np.ndarray) -> np.ndarray:
    """``(V, 3)`` area-weighted unit vertex normals (winding order) of a triangle mesh."""
    fn = face_cross(vertices, faces)
    if fn.dtype == np.float64:  # one bincount per axis: the sums of np.add.at in its order, 2.5x faster
        ids = np.asarray(faces).T.reshape(-1)
        vn = np.stack([np.bincount(ids, np.tile(fn[:, i], 3), len(vertices)) for i in range(3)], axis=1)
    else:  # bincount would sum in float64
        vn = np.zeros_like(fn, shape=(len(vertices), 3))
        for k in range(3):
            np.add.at(vn, faces[:, k], fn)
    return vn / np.maximum(np.linalg.norm(vn, axis=1, keepdims=True), 1e-300)


def weld_map(vertices: np.ndarray, tol: float) -> tuple[np.ndarray, np.ndarray]:
    """Vertices within the same ``tol``-cell of a grid coincide: ``(first, inverse)``, the index of
    each cell's first vertex ``(W,)`` and each vertex's cell ``(V,)`` (welded: ``vertices[first]``,
    ``inverse[faces]``)."""
    return unique_rows(np.round(vertices / tol).astype(np.int64))


def repeats_index(faces: np.ndarray) -> np.ndarray:
    """``(F,)`` bool: the face names one vertex twice."""
    return (faces[:, 0] == faces[:, 1]) | (faces[:, 1] == faces[:, 2]) | (faces[:, 0] == faces[:, 2])


def drop_unused_vertices(vertices: np.ndarray, faces: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``(vertices, faces)`` without the vertices no face uses (their order kept, faces renumbered);
    the inputs themselves when every vertex is used."""
    used = unique(faces)
    if len(used) == len(vertices):
        return vertices, faces
    remap = np.full(len(vertices), -1, dtype=np.int64)
    remap[used] = np.arange(len(used))
    return vertices[used], remap[faces]


def weld_and_clean(vertices: np.ndarray, faces: np.ndarray, tol: float) -> tuple[np.ndarray, np.ndarray]:
    """Merge vertices closer than ``tol`` (grid hashing), then drop faces with a repeated index,
    zero area (below ``DEGENERATE_AREA_REL`` times the squared bounding-box diagonal) or the same
    vertex set as an earlier face, and unused vertices. Returns ``(vertices, faces)``."""
    if len(faces) == 0:
        return vertices[:0], faces
    if tol > 0:
        first, inverse = weld_map(vertices, tol)
        vertices, faces = vertices[first], inverse[faces]
    faces = faces[~repeats_index(faces)]
    if len(faces):
        diag2 = float(((vertices.max(0) - vertices.min(0)) ** 2).sum())
        faces = faces[face_areas(vertices, faces) > DEGENERATE_AREA_REL * max(diag2, 1e-300)]
    return drop_unused_vertices(vertices, faces[distinct_faces(faces, len(vertices))])


def distinct_faces(faces: np.ndarray, nv: int) -> np.ndarray:
    """Ascending indices of the first face of each distinct vertex set among ``faces`` (indices
    below ``nv``): one int64 key per sorted face where ``nv^3`` fits, else rows compared whole."""
    f = np.sort(faces, axis=1)
    if nv**3 < 2**63:
        _, first = np.unique((f[:, 0] * nv + f[:, 1]) * nv + f[:, 2], return_index=True)
    else:
        _, first = np.unique(f, axis=0, return_index=True)
    return np.sort(first)
