"""Merged close sheets split back into their two layers.

The close-sheet merge (:mod:`deepcsp.extract.merge`) meshes two sheets closer than the topology
grid resolves as one clean mid-surface, which keeps them from shredding but loses one of the two
layers (two open rectangles 0.1-1 cells apart came out with half their area). Once that mid-surface
is meshed, the field can still tell the two layers apart along the mesh's own normals, which are
smooth there: probes ``v +- s n`` on either side of a vertex ``v`` find the upper and the lower
sheet. :func:`unmerge_sheets` moves each vertex where the probes find two parallel sheets onto the
upper one and adds a copy on the lower one, and copies the faces over those vertices with reversed
winding, so that two parallel sheets come out as two sheets and a fold as one sheet bent back (its
two layers join along the fold, where the probes find one sheet). Steps: probe both sides
(:func:`_probe_layers`; at the rim, :func:`_two_edges` tells a fold from two sheets ending together),
grow into a fold's bend, fill single vertices amid split ones, copy the faces, drop copies that form
small pieces.

The copies stay edge-manifold by construction: a face is copied only where its vertices that stay
single (one sheet: a fold line, a rim the two sheets share) lie on the mesh's boundary and its edges
between two of them are boundary edges; elsewhere the lower layer ends (where two sheets run into
one: a Y, which no single-layer mesh follows).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from deepcsp.constants import (
    SPLIT_BEND_ROWS,
    SPLIT_ENDS_LEVEL,
    SPLIT_FILL_SHARE,
    SPLIT_FOLD_REACH,
    SPLIT_MIN_AIM,
    SPLIT_MIN_AREA,
    SPLIT_MIN_COS,
    SPLIT_MIN_SEPARATION,
    SPLIT_RIM_HOPS,
    SPLIT_VALUE_ERRORS,
)
from deepcsp.extract.grid import Queries, unit
from deepcsp.extract.topology import _edges, boundary_half_edges, face_components
from deepcsp.fields.query import Field
from deepcsp.geometry.cleanup import face_areas, vertex_normals


@dataclass
class UnmergedSheets:
    """A mesh whose merged close sheets were split (normalised coordinates)."""

    vertices: np.ndarray
    faces: np.ndarray
    n_split: int
    """Vertices found on two sheets (each gained a copy on the lower one)."""
    n_copied_faces: int
    """Faces copied onto the lower sheet."""


@dataclass
class _Layers:
    upper: np.ndarray
    lower: np.ndarray
    two: np.ndarray
    """(V,) bool: two sheets seen."""
    apart: np.ndarray
    """(V,) bool: two points apart seen, not necessarily parallel sheets (a bend)."""


def unmerge_sheets(field: Field | Queries, vertices: np.ndarray, faces: np.ndarray, gap: float) -> UnmergedSheets:
    """Split the merged close sheets of a mesh ``(vertices (V, 3), faces (F, 3))`` of ``field`` (or
    counted :class:`~deepcsp.extract.grid.Queries` of it; normalised coordinates) into their two
    layers (see the module docstring). ``gap``: the merge's gap (normalised units); sheets found
    further apart than 1.5 gaps are not a merged pair."""
    normals = vertex_normals(vertices, faces)
    boundary = boundary_half_edges(faces, len(vertices))
    outward = rim_directions(vertices, boundary, normals)
    on_rim = np.linalg.norm(outward, axis=1) > 0
    fq = field if isinstance(field, Queries) else Queries(field)
    layers = _probe_layers(fq, vertices, faces, normals, outward, boundary, gap)
    half_edges = _edges(faces, len(vertices))[0]
    two = _grow_into_bends(half_edges, len(vertices), layers.two, layers.apart & ~on_rim)
    two, upper, lower = _fill_pinches(vertices, half_edges, normals, two, layers.upper, layers.lower)
    copied = _copied_faces(faces, two, on_rim, boundary, len(vertices))
    copied, two = _drop_small_copies(vertices, faces, copied, two, gap)
    index = np.full(len(vertices), -1)
    index[two] = len(vertices) + np.arange(int(two.sum()))
    lower_faces = np.where(two[faces[copied]], index[faces[copied]], faces[copied])[:, ::-1]
    verts = np.concatenate([np.where(two[:, None], upper, vertices), lower[two]])
    return UnmergedSheets(verts, np.concatenate([faces, lower_faces]), int(two.sum()), int(copied.sum()))


def rim_directions(vertices: np.ndarray, boundary: np.ndarray, normals: np.ndarray) -> np.ndarray:
    """``(V, 3)`` unit directions out of the mesh across its boundary at boundary vertices (the
    mean of their boundary edges' ``edge x normal``: faces lie left of their boundary half-edges),
    zero elsewhere."""
    out = np.zeros_like(vertices, dtype=np.float64)
    if len(boundary) == 0:
        return out
    i, j = boundary[:, 0], boundary[:, 1]
    e = vertices[j] - vertices[i]
    for k in (i, j):
        np.add.at(out, k, np.cross(e, normals[k]))
    return unit(out)[0]


def _probe_layers(
    fq: Queries,
    vertices: np.ndarray,
    faces: np.ndarray,
    normals: np.ndarray,
    outward: np.ndarray,
    boundary: np.ndarray,
    gap: float,
) -> _Layers:
    """The closest points seen from ``v +- gap/2 n`` (``upper``, ``lower``) and where they are two
    sheets (``two``): apart along their normal by at least SPLIT_MIN_SEPARATION of the gap (and
    SPLIT_VALUE_ERRORS of the field's value error) and at most 1.5 gaps, and parallel (their normals,
    seen from the probes, within SPLIT_MIN_COS; SPLIT_MIN_AIM of the vertex normal). On the mesh's
    rim, where the probes pass the sheets' edges and see them at a slant, the fold test of
    :func:`_two_edges` replaces the parallel test."""
    pa, a = fq.closest(vertices + 0.5 * gap * normals)
    pb, b = fq.closest(vertices - 0.5 * gap * normals)
    na, _ = unit(pa - a)  # each sheet's normal, towards its probe
    nb, _ = unit(pb - b)
    m = na * np.sign((na * normals).sum(1, keepdims=True))
    sep = ((a - b) * m).sum(1)
    least = max(SPLIT_MIN_SEPARATION * gap, SPLIT_VALUE_ERRORS * float(getattr(fq.field, "value_error", 0.0)))
    apart = (sep >= least) & (sep <= 1.5 * gap)
    apart[apart] = ~_meshed_elsewhere(vertices, faces, np.nonzero(apart)[0], a[apart], b[apart], sep[apart])
    two = apart & (np.abs((na * nb).sum(1)) >= SPLIT_MIN_COS) & (np.abs((m * normals).sum(1)) >= SPLIT_MIN_AIM)
    rim = np.nonzero((np.linalg.norm(outward, axis=1) > 0) & apart)[0]
    if len(rim):
        two[rim] = _two_edges(fq, a[rim], b[rim], normals[rim], outward[rim], sep[rim], gap, rim, boundary)
    upper, lower = vertices.astype(np.float64).copy(), vertices.astype(np.float64).copy()
    upper[apart], lower[apart] = a[apart], b[apart]
    return _Layers(upper, lower, two, apart)


def _meshed_elsewhere(
    vertices: np.ndarray, faces: np.ndarray, idx: np.ndarray, a: np.ndarray, b: np.ndarray, sep: np.ndarray
) -> np.ndarray:
    """``(K,)`` bool for vertices ``idx`` whose two sheets' points ``a``, ``b``: True where one of
    them that lies away from the vertex (more than 3/4 of ``sep``: not the sheet the vertex is on)
    is already on the mesh (within 1/10 of ``sep``): both sheets are meshed there (a wing's two
    skins a gap or so apart, each meshed), and a copy would double one of them (forced onto
    airplane_holes' merged mesh: area 1.23 without this test, 1.08 with it; within 1/5: 1.06, but
    rectangles 0.25 cells apart lost copies where their merged mesh crumples, 6 loops for 2)."""
    from deepcsp.geometry.closest import MeshOracle

    oracle = MeshOracle(vertices, faces)
    v = vertices[idx]
    out = np.zeros(len(idx), dtype=bool)
    for p in (a, b):
        away = np.linalg.norm(p - v, axis=1) > 0.75 * sep
        if away.any():
            out[away] |= oracle.query(p[away]).distances < 0.1 * sep[away]
    return out


def _two_edges(
    fq: Queries,
    a: np.ndarray,
    b: np.ndarray,
    n: np.ndarray,
    out: np.ndarray,
    sep: np.ndarray,
    gap: float,
    rim: np.ndarray,
    boundary: np.ndarray,
) -> np.ndarray:
    """``(R,)`` bool at rim vertices ``rim`` with upper / lower closest points ``a``, ``b``: True where
    two sheets end together, False at a fold. Probes SPLIT_FOLD_REACH gaps out across the rim
    (``out``) from between the two meet one of the two edges where two sheets end (half their
    separation ``sep`` off the mid-level) and the bend of a fold (at the mid-level); their median
    level, averaged along the rim (:func:`_along_rim`), is compared with SPLIT_ENDS_LEVEL."""
    mid = 0.5 * (a + b)
    levels = []
    for reach in SPLIT_FOLD_REACH:
        _, c = fq.closest(mid + reach * gap * out)
        levels.append(np.abs(((c - mid) * n).sum(1)) / sep)
    return _along_rim(np.median(levels, axis=0).clip(0, 1), rim, boundary) >= SPLIT_ENDS_LEVEL


def _along_rim(values: np.ndarray, vertex: np.ndarray, boundary: np.ndarray) -> np.ndarray:
    """``values`` at the boundary vertices ``vertex`` averaged SPLIT_RIM_HOPS times with their
    neighbours along the boundary half-edges ``boundary (B, 2)`` that also carry a value."""
    from scipy.sparse import coo_matrix

    pos = np.full(int(max(boundary.max(initial=0), vertex.max(initial=0))) + 1, -1)
    pos[vertex] = np.arange(len(vertex))
    i, j = pos[boundary[:, 0]], pos[boundary[:, 1]]
    keep = (i >= 0) & (j >= 0)
    i, j = i[keep], j[keep]
    k = np.arange(len(vertex))
    rows, cols = np.concatenate([i, j, k]), np.concatenate([j, i, k])
    adj = coo_matrix((np.ones(len(rows)), (rows, cols)), shape=(len(vertex), len(vertex))).tocsr()
    degree = np.asarray(adj.sum(1)).ravel()
    out = values.astype(np.float64)
    for _ in range(SPLIT_RIM_HOPS):
        out = adj @ out / degree
    return out


def _grow_into_bends(half_edges: np.ndarray, nv: int, two: np.ndarray, candidates: np.ndarray) -> np.ndarray:
    """``two`` grown SPLIT_BEND_ROWS times into ``candidates`` (inner vertices whose probes saw two
    points apart but not parallel sheets: the bend of a fold, which curves within a cell of it) that
    have at least a third of their neighbours on two sheets (``half_edges (H, 2)`` of the mesh). A
    lone crease has no such neighbours."""
    a, b = half_edges[:, 0], half_edges[:, 1]
    n_nb = np.maximum(np.bincount(a, minlength=nv), 1)
    for _ in range(SPLIT_BEND_ROWS):
        grow = candidates & ~two & (3 * np.bincount(a, weights=two[b], minlength=nv) >= n_nb)
        if not grow.any():
            break
        two = two | grow
    return two


def _drop_small_copies(
    vertices: np.ndarray, faces: np.ndarray, copied: np.ndarray, two: np.ndarray, gap: float
) -> tuple[np.ndarray, np.ndarray]:
    """Copies forming pieces of less area than SPLIT_MIN_AREA squared gaps are not made, and vertices
    left in no copied face stay single (on the merged mesh): on meshes whose close sheets part (a
    wing's two skins, layers of cloth), scattered probes see two sheets in patches a few faces wide
    (forced onto tee_sim's merged mesh: 511 pieces with all copies kept, 16 with pieces of 64 faces
    or more, 2 as without copies with 512)."""
    idx = np.nonzero(copied)[0]
    if len(idx) == 0:
        return copied, np.zeros_like(two)
    _, label = face_components(faces[idx], len(vertices))
    area = face_areas(vertices, faces[idx])
    small = np.bincount(label, weights=area)[label] < SPLIT_MIN_AREA * gap * gap
    copied = copied.copy()
    copied[idx[small]] = False
    used = np.zeros(len(two), dtype=bool)
    used[faces[copied].ravel()] = True
    return copied, two & used


def _fill_pinches(
    vertices: np.ndarray, half_edges: np.ndarray, normals: np.ndarray, two, upper, lower
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Single vertices with SPLIT_FILL_SHARE of their neighbours on two sheets (a probe that missed)
    join them, at those neighbours' mean offsets along their own normal, so that the two layers do
    not touch there; two passes."""
    a, b = half_edges[:, 0], half_edges[:, 1]
    n_nb = np.bincount(a, minlength=len(vertices))
    up = ((upper - vertices) * normals).sum(1)
    down = ((vertices - lower) * normals).sum(1)
    for _ in range(2):
        n_two = np.bincount(a, weights=two[b], minlength=len(vertices))
        fill = ~two & (n_nb > 0) & (n_two * SPLIT_FILL_SHARE[1] >= n_nb * SPLIT_FILL_SHARE[0])
        if not fill.any():
            break
        mean_up = np.bincount(a, weights=np.where(two[b], up[b], 0.0), minlength=len(vertices))
        mean_down = np.bincount(a, weights=np.where(two[b], down[b], 0.0), minlength=len(vertices))
        k = np.nonzero(fill)[0]
        up[k], down[k] = mean_up[k] / n_two[k], mean_down[k] / n_two[k]
        upper[k] = vertices[k] + up[k, None] * normals[k]
        lower[k] = vertices[k] - down[k, None] * normals[k]
        two = two | fill
    return two, upper, lower


def _copied_faces(faces: np.ndarray, two: np.ndarray, on_rim: np.ndarray, boundary: np.ndarray, nv: int) -> np.ndarray:
    """``(F,)`` bool: faces copied onto the lower sheet: at least one vertex on two sheets, every
    single vertex on the boundary and every edge between two single vertices a boundary edge (so
    that the two layers join only along the fold or the rim they share, and every edge keeps at
    most two faces)."""
    t = two[faces]
    copied = t.any(1) & (t | on_rim[faces]).all(1)
    bkeys = np.sort(boundary, axis=1)
    bkeys = bkeys[:, 0].astype(np.int64) * nv + bkeys[:, 1]
    for i, j in ((0, 1), (1, 2), (2, 0)):
        both_single = ~t[:, i] & ~t[:, j]
        lo, hi = np.minimum(faces[:, i], faces[:, j]), np.maximum(faces[:, i], faces[:, j])
        inner = ~np.isin(lo.astype(np.int64) * nv + hi, bkeys)
        copied &= ~(both_single & inner)
    return copied
