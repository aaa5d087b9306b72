"""Sharp features: mesh vertices moved onto the creases and corners that the field shows.

A dual-contouring vertex snapped onto the surface by one closest-point query lands on one side of a
crease, and the triangles between such vertices cut the crease off (a bevel a cell wide, normals
off by half the crease angle). Here each vertex reads the tangent planes ``(CSP(p), p - CSP(p))``
of a small stencil of points ``p`` around it and moves to the least-squares meeting point of those
planes (dual contouring's quadric error function, solved in the planes' well-conditioned directions
only): on a crease, where the planes span two directions, that point lies on the crease; on a
corner, three. Each side of the mesh (along the vertex normal) is solved on its own planes and the
side whose planes meet best is taken: inside a part thinner than the stencil the far face's plane
shows too and would pull the vertex towards the part's middle. Vertices whose planes span one
direction (a smooth patch) stay where they are, and so do those next to an open boundary, whose
planes include the rim's (``snap_boundary`` places the rim itself). A move is kept only when it is
shorter than a cell and turns over no face.

Measured on the 24 dev meshes (fitted default fields, ``benchmarks/bm_thin.py --sharpen 0`` against
the default; benchmarks/RESULTS.md, thin parts): Chamfer-L1 0.86x (median; 0.12x on the bottomless
cube), airplane_holes' normal consistency 0.977 -> 0.984.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from deepcsp.extract.grid import Queries, unit
from deepcsp.extract.topology import boundary_vertex_mask
from deepcsp.geometry.cleanup import face_cross, face_normals, vertex_normals

#: Stencil directions: the 26 neighbours of a grid cell, unit length (the 6 axis and 8 diagonal
#: directions alone: airplane_holes NC 0.9837 instead of 0.9844, the bottomless cube's Chamfer 1.4x).
_STENCIL = np.array(
    [[i, j, k] for i in (-1, 0, 1) for j in (-1, 0, 1) for k in (-1, 0, 1) if (i, j, k) != (0, 0, 0)], float
)
_STENCIL = _STENCIL / np.linalg.norm(_STENCIL, axis=1, keepdims=True)
#: Planes whose point is further than this many stencil radii from the vertex do not count (another
#: part of the surface).
PLANE_REACH = 1.5
#: A stencil point closer than this share of the radius to its closest point gives no direction.
MIN_OFFSET = 0.05
#: Directions of the quadric with an eigenvalue below this share of the largest are left alone.
TRUNCATE = 0.05
#: A face may keep no less than this share of its area (along its normal before the moves).
KEEP_AREA = 0.01
#: Vertices all of whose faces' normals lie within this cosine of their own are not looked at.
BENT = 0.995
#: A step that turns a face over is halved this many times before it is taken back.
HALVINGS = 3
#: A vertex is on a feature when the quadric's second eigenvalue is at least this share of its largest.
FEATURE = 0.05


@dataclass
class SharpenedVertices:
    """``vertices (V, 3)`` after :func:`sharpen_features`; ``moved (V,)`` which of them moved."""

    vertices: np.ndarray
    moved: np.ndarray


def sharpen_features(
    fq: Queries, vertices: np.ndarray, faces: np.ndarray, radius: float, bias: float = 0.0, max_move: float = 1.0
) -> SharpenedVertices:
    """Move the vertices ``(V, 3)`` (normalised coordinates) of a mesh of ``fq``'s field onto the
    creases and corners near them (module docstring). ``radius``: stencil radius (normalised units,
    about a cell); ``bias``: the distance bias the extraction removed; ``max_move``: longest move, in
    stencil radii."""
    moved = np.zeros(len(vertices), dtype=bool)
    if len(faces) == 0 or radius <= 0:
        return SharpenedVertices(vertices, moved)
    vn = vertex_normals(vertices, faces)
    todo = _bent(vertices, faces, vn)
    todo[_near_boundary(faces, len(vertices))] = False
    if not todo.any():
        return SharpenedVertices(vertices, moved)
    v = vertices[todo]
    feet, normals, used = _stencil_planes(fq, v, radius, bias)
    # the planes of each side of the mesh on their own: a part thinner than the stencil shows its far
    # side's plane only on the inside, where it would pull the vertex towards the part's middle
    side = vn[todo] @ _STENCIL.T  # (V', K)
    sides = [_quadric_steps(v, feet, normals, used & (sign * side > -1e-9)) for sign in (1.0, -1.0)]
    inner = sides[1].feature & (~sides[0].feature | (sides[1].residual < sides[0].residual))
    step = np.zeros_like(vertices)
    step[todo] = np.where(inner[:, None], sides[1].step, sides[0].step)
    feature = sides[0].feature | sides[1].feature
    moved[todo] = feature & (np.linalg.norm(step[todo], axis=1) < max_move * radius)
    return _undo_flips(vertices, step, faces, moved)


def _stencil_planes(
    fq: Queries, vertices: np.ndarray, radius: float, bias: float
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Tangent planes around each vertex: ``feet (V, K, 3)``, unit ``normals (V, K, 3)`` and
    ``used (V, K)`` (a direction was defined and the foot lies within ``PLANE_REACH`` radii)."""
    p = (vertices[:, None, :] + radius * _STENCIL[None]).reshape(-1, 3)
    p32, q = fq.closest(p)
    n, d = unit(p32 - q)
    feet = (q + bias * n).reshape(len(vertices), -1, 3)
    normals, d = n.reshape(feet.shape), d.reshape(feet.shape[:2])
    near = np.linalg.norm(feet - vertices[:, None], axis=2) < PLANE_REACH * radius
    return feet, normals, (d > MIN_OFFSET * radius) & near


@dataclass
class _Quadric:
    step: np.ndarray
    """(V, 3) the move to the planes' least-squares point within the well-conditioned directions."""
    feature: np.ndarray
    """(V,) whether the planes span two directions or more."""
    residual: np.ndarray
    """(V,) mean squared distance of that point to the planes."""


def _quadric_steps(vertices: np.ndarray, feet: np.ndarray, normals: np.ndarray, used: np.ndarray) -> _Quadric:
    """The dual-contouring quadric of each vertex's ``used`` planes, solved."""
    w = used.astype(np.float64)[..., None]
    a = np.einsum("vki,vkj->vij", w * normals, normals)
    height = ((feet - vertices[:, None]) * normals).sum(2, keepdims=True)
    r = (w * height * normals).sum(1)
    lam, basis = np.linalg.eigh(a)  # ascending
    top = np.maximum(lam[:, 2:], 1e-300)
    keep = lam > TRUNCATE * top
    coef = np.where(keep, np.einsum("vij,vi->vj", basis, r) / np.where(keep, lam, 1.0), 0.0)
    step = np.einsum("vij,vj->vi", basis, coef)
    feature = (lam[:, 1] >= FEATURE * top[:, 0]) & (used.sum(1) >= 4)
    off = height[..., 0] - (normals * step[:, None]).sum(2)
    residual = (w[..., 0] * off**2).sum(1) / np.maximum(w[..., 0].sum(1), 1.0)
    return _Quadric(step, feature, residual)


def _bent(vertices: np.ndarray, faces: np.ndarray, vn: np.ndarray) -> np.ndarray:
    """``(V,)`` bool: vertices with a face whose normal leaves their normal ``vn (V, 3)`` by more
    than ``BENT`` (a mesh flat around a vertex has no crease to find there)."""
    fn = face_normals(vertices, faces)
    lowest = np.ones(len(vertices))
    for k in range(3):
        np.minimum.at(lowest, faces[:, k], (fn * vn[faces[:, k]]).sum(1))
    return lowest < BENT


def _near_boundary(faces: np.ndarray, n_vertices: int) -> np.ndarray:
    """Ids of the boundary vertices and of every vertex sharing a face with one."""
    rim = boundary_vertex_mask(faces, n_vertices)
    return np.unique(faces[rim[faces].any(1)])


def _undo_flips(before: np.ndarray, step: np.ndarray, faces: np.ndarray, moved: np.ndarray) -> SharpenedVertices:
    """``before + step`` at the ``moved`` vertices; where a face is turned over or flattened (its
    area along its normal before down to ``KEEP_AREA`` or less), the longest move among its
    vertices is halved, up to ``HALVINGS`` times and then taken back, until no face is. (Halving
    all three would pull every vertex off a crease that a face's vertices all reach: on a tilted
    box, Chamfer 11x higher.)"""
    n0 = face_cross(before, faces)
    floor = KEEP_AREA * (n0 * n0).sum(1)
    scale = np.where(moved, 1.0, 0.0)
    halved = np.zeros(len(before), dtype=np.int64)
    while True:
        after = before + scale[:, None] * step
        bad = faces[(n0 * face_cross(after, faces)).sum(1) <= floor]
        back = np.zeros(len(before), dtype=bool)
        length = scale[bad] * np.linalg.norm(step[bad], axis=2)
        back[bad[np.arange(len(bad)), length.argmax(1)]] = True
        back &= scale > 0
        if not back.any():
            return SharpenedVertices(after, scale > 0)
        halved[back] += 1
        scale[back] = np.where(halved[back] > HALVINGS, 0.0, 0.5 * scale[back])
