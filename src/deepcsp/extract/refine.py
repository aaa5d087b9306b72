"""Refinement of an extracted mesh by subdivision and CSP projection.

A CSP field gives every point its closest surface point, so a mesh whose topology is right can be
made as fine as wanted without another grid: split every triangle into four at its edge midpoints
and move every vertex onto the surface, ``v <- CSP(v) + bias n``, boundary vertices then onto the
sheet's own boundary. This lets extraction take its topology from a grid coarse enough that the
field's errors are small against its cells (a fitted band grid is 0.1-0.25 of its own cell off where
two sheets pass within a cell, which a grid of the band's spacing turns into spurious holes), and
its geometry from the field at full resolution.
"""

from __future__ import annotations

import numpy as np

from deepcsp._arrays import unique
from deepcsp.extract.grid import Queries, unit
from deepcsp.extract.topology import _edges


def midpoint_subdivide(vertices: np.ndarray, faces: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Split every triangle of ``faces (F, 3)`` into four at its edge midpoints; each edge's
    midpoint is shared by the faces on both sides, so connectivity, boundaries and winding are
    kept. Returns ``(vertices (V + E, 3), faces (4F, 3))``."""
    if len(faces) == 0:
        return vertices, faces
    nv = len(vertices)
    _, key, _ = _edges(faces, nv)  # edges (0,1) of all faces, then (1,2), then (2,0)
    uniq, inv = np.unique(key, return_inverse=True)
    a, b = uniq // nv, uniq % nv
    mids = 0.5 * (vertices[a] + vertices[b])
    m = (nv + inv.reshape(3, -1)).T  # midpoint ids of edges (0,1), (1,2), (2,0) of each face
    v0, v1, v2 = faces[:, 0], faces[:, 1], faces[:, 2]
    m01, m12, m20 = m[:, 0], m[:, 1], m[:, 2]
    out = np.concatenate(
        [
            np.stack([v0, m01, m20], -1),
            np.stack([m01, v1, m12], -1),
            np.stack([m20, m12, v2], -1),
            np.stack([m01, m12, m20], -1),
        ]
    )
    return np.concatenate([vertices, mids]), out.astype(np.int64)


def refine_mesh(
    fq: Queries,
    vertices: np.ndarray,
    faces: np.ndarray,
    passes: int,
    h: float,
    bias: float,
    boundary_reach: float = 1.0,
) -> tuple[np.ndarray, np.ndarray]:
    """``passes`` rounds of :func:`midpoint_subdivide` then projection onto the field's surface
    (normalised coordinates; ``h`` the cell size of the grid that made the mesh). A vertex whose
    closest point lies further than a cell diagonal of the current level (the field jumped to
    another sheet) stays where it is. Open boundaries: boundary vertices are then moved onto the
    sheet's boundary within ``boundary_reach`` cells of the level (0: not). Returns ``(vertices,
    faces)``."""
    for k in range(1, passes + 1):
        hk = h / 2**k
        vertices, faces = midpoint_subdivide(vertices, faces)
        x32, q = fq.closest(vertices)
        n, _ = unit(x32 - q)
        new = q + bias * n
        move = np.linalg.norm(new - vertices, axis=1) <= np.sqrt(3.0) * hk
        vertices = np.where(move[:, None], new, vertices)
        if boundary_reach > 0:
            vertices = snap_boundary(fq, vertices, faces, boundary_reach * hk, bias)
    return vertices, faces


def snap_boundary(fq: Queries, verts: np.ndarray, faces: np.ndarray, reach: float, bias: float) -> np.ndarray:
    """Move boundary vertices ``(V, 3)`` onto the sheet's boundary: ``CSP(v + reach t) + bias n``
    with ``t`` the mean outward tangent of the vertex's boundary edges; a move longer than
    ``1.5 reach`` (the closest point jumped elsewhere) is not made."""
    if len(faces) == 0:
        return verts
    he, key, _ = _edges(faces, len(verts))
    third = np.concatenate([faces[:, 2], faces[:, 0], faces[:, 1]])
    _, inv, counts = np.unique(key, return_inverse=True, return_counts=True)
    bd = counts[inv.reshape(-1)] == 1
    if not bd.any():
        return verts
    a, b, c = he[bd, 0], he[bd, 1], third[bd]
    e = verts[b] - verts[a]
    w = 0.5 * (verts[a] + verts[b]) - verts[c]
    w -= ((w * e).sum(1) / np.maximum((e * e).sum(1), 1e-300))[:, None] * e
    w /= np.maximum(np.linalg.norm(w, axis=1), 1e-300)[:, None]
    t = np.zeros_like(verts)
    np.add.at(t, a, w)
    np.add.at(t, b, w)
    ids = unique(np.concatenate([a, b]))
    tn = t[ids] / np.maximum(np.linalg.norm(t[ids], axis=1), 1e-300)[:, None]
    x32, q = fq.closest(verts[ids] + reach * tn)
    nx, _ = unit(x32 - q)
    new = q + bias * nx
    move = np.linalg.norm(new - verts[ids], axis=1) <= 1.5 * reach
    out = verts.copy()
    out[ids[move]] = new[move]
    return out
