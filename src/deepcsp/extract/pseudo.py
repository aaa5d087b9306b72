"""Open-surface extraction: dual contouring on CSP pseudo-signs (the twin of :mod:`deepcsp.extract.signed`
for fields that do not know inside from outside, and for closed ones with ``use_signs=False``).

Pipeline, all in normalised coordinates on the grid ``origin + (i, j, k) h``, ``h = 1 / resolution``:


1. **Candidate cells** (coarse to fine, :mod:`deepcsp.extract.sparse`): only cells whose centre
   lies within the half cell diagonal (plus a margin) of the surface are kept.
2. **Corners**: ``CSP`` at every corner of a candidate cell gives the direction
   ``n = (p - CSP(p)) / u`` and distance ``u``. No autograd.
3. **Crossed edges** (the pseudo-sign test, decided per edge so neighbouring cells always agree):
   an edge ``a -> b`` is a crossing candidate when its corners lie on opposite sides of a sheet,
   ``n_a . n_b < flip_cos``, and look at the same sheet, ``|CSP(a) - CSP(b)| < agree h`` (a medial
   axis jump moves the closest point across the shape). The crossing point is interpolated from
   the distances, ``t = (u_a - b) / (u_a + u_b - 2 b)``, and the field is asked there: the edge is
   kept only if that point lies within ``accept h`` of the surface, which rejects edges that pass
   beside the boundary of an open sheet or between two nested sheets.
   **Sheet rule** (``cross_sheets``, default): where two sheets come within a cell or two (folds,
   hems, thin parts) a corner may see the other sheet, so the flip test both misses crossings and
   takes false ones (an edge passing just beside a sheet). Flipped edges whose interpolated point
   is not right on the surface (``verify_flips``), and unflipped edges whose far corner lies behind
   the near corner's tangent plane at a point on the near corner's sheet, are sampled along the
   edge; an edge is crossed where it straddles exactly one sheet.
   **Noisy distances** (estimated noise above ``noisy_above`` = 0.05 cells, step 4): one query
   can no longer say whether a point lies on the surface, so every flipped edge is sampled and
   judged by its samples' tangent planes (both sides of the side change must agree on where the
   sheet is, :func:`~deepcsp.extract.planes.straddles`), crossings are placed by those planes and
   dual vertices by the mean height of all the planes around them instead of one snap (noise 0.13
   cells: vertices ~0.025 cells off the surface instead of ~0.075). The signed path does the same.
4. **Bias**: on a crossed edge ``u_a + u_b`` equals the edge's extent along the normal,
   ``h |n_axis|``, for an exact field; the median excess over all edges estimates a constant
   distance bias ``b`` (learned fields overestimate distances near the surface), which is
   removed from every interpolation and snap.
5. **Dual contouring**: one vertex per sheet in each cell around a crossed edge (the cell's
   crossings grouped by the cell faces that link them, as in manifold dual contouring, so two
   sheets in one cell get two vertices; ``split_sheets``), the mean of its crossing points,
   snapped onto the surface with the field itself, ``v <- CSP(v) + b n``; one quad per crossed
   edge joining its four cells, split along the shorter diagonal. An open sheet ends where
   crossings end (no faces where no sheet crosses), so boundaries stay open; a closed surface
   gives a closed mesh; exactly one layer per sheet.
6. **Repair** (``fill_holes``): at edges shared by more than two faces only the two faces nearest
   the surface that can be wound consistently stay (the others are fins from a misjudged
   crossing); then small boundary loops (loops touching at a pinch vertex taken apart) whose fill
   the field confirms to lie on the surface, within a tolerance that grows with the field's own
   error there (``fill_field_error``), are closed by a fan around ``CSP(centroid)``. A true
   hole's centre lies a radius off the surface, so true boundaries stay open. Slits of any length
   (tears a fraction of a cell wide, along creases) whose ear-clipped patch lies on the surface
   are zipped shut (``zip_slits``).
7. **Cleanup and winding**: coincident vertices welded, repeated/zero-area/duplicate faces
   dropped, faces oriented consistently by propagation across edges, each component turned to
   positive signed volume (outward for closed surfaces), optional removal of small components.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from deepcsp._arrays import unique
from deepcsp.extract.config import ExtractConfig, PathMesh
from deepcsp.extract.dual import entry_table, link_cell_faces, link_components, quad_cells, snapped_means, triangulate
from deepcsp.extract.grid import Queries, cell_edges, corner_ijk, corner_keys, dense_edges, timed, unit
from deepcsp.extract.planes import EdgeSamples, flat_planes, no_planes, straddles
from deepcsp.extract.refine import snap_boundary
from deepcsp.extract.sparse import candidate_cells
from deepcsp.extract.topology import (
    _edges,
    boundary_cycles,
    boundary_half_edges,
    inconsistent_edge_count,
    orient_faces,
    remove_small_components,
    weld_and_clean,
)


@dataclass(frozen=True)
class _Grid:
    """The extraction grid ``origin + (i, j, k) h`` (normalised coordinates) and the coarse-to-fine margin."""

    resolution: int
    h: float
    n1: int
    origin: float
    stride: np.ndarray
    """Corner key steps along x, y, z: ``key = ijk @ stride``."""
    margin: float

    @classmethod
    def of(cls, config: ExtractConfig) -> "_Grid":
        R = int(config.resolution)
        h = 1.0 / R
        n1 = R + 1
        return cls(
            R,
            h,
            n1,
            -0.5 + config.grid_shift * h,
            np.array([n1 * n1, n1, 1], dtype=np.int64),
            max(0.5 * h, config.margin),
        )


@dataclass
class _CandidateCells:
    """Cells that may hold surface and the corners to ask the field at."""

    cells: np.ndarray
    """(M, 3) lowest corners."""
    corner_keys: np.ndarray | None
    """(M, 8) the cells' corner keys (sparse grids only)."""
    corners: np.ndarray
    """(C,) sorted unique corner keys."""


@dataclass
class _Corners:
    """Closest points at the evaluated grid corners (rows in sorted key order)."""

    keys: np.ndarray
    """(C,) corner keys."""
    points: np.ndarray
    """(C, 3) the corners as the field saw them (float32 rounding)."""
    closest: np.ndarray
    """(C, 3) their closest points ``q``."""
    directions: np.ndarray
    """(C, 3) ``n = (p - q) / u``."""
    distances: np.ndarray
    """(C,) ``u = |p - q|``."""


@dataclass
class _Edges:
    """Grid edges: keys ``(E,)`` (``corner * 3 + axis``), axes, and the corner rows of their ends."""

    keys: np.ndarray
    axis: np.ndarray
    ia: np.ndarray
    ib: np.ndarray

    @classmethod
    def of(cls, keys: np.ndarray, corners: np.ndarray, stride: np.ndarray) -> "_Edges":
        axis = keys % 3
        return cls(keys, axis, np.searchsorted(corners, keys // 3), np.searchsorted(corners, keys // 3 + stride[axis]))

    def take(self, mask: np.ndarray) -> "_Edges":
        return _Edges(self.keys[mask], self.axis[mask], self.ia[mask], self.ib[mask])


@dataclass
class _PseudoSigns:
    """The per-edge pseudo-sign test (step 3), ``(E,)`` each."""

    cos: np.ndarray
    """Cosine of the corners' directions."""
    agree: np.ndarray
    """The corners' closest points lie within ``agree`` cells of each other."""
    live: np.ndarray
    """``agree`` and both distances positive."""
    flip: np.ndarray
    """``live`` and the directions flip (``cos < flip_cos``)."""


@dataclass
class _DistanceError:
    """Distance bias and noise estimated from the clear flips (step 4, normalised units)."""

    bias: float
    """Constant bias removed from interpolations and snaps (0 without ``debias``)."""
    noise: float
    """Robust spread of the distances."""
    noisy: bool
    """``noise`` above ``noisy_above`` cells: crossings and vertices are placed by tangent planes."""


@dataclass
class _Crossings:
    """Crossed edges and where a sheet crosses them."""

    edges: np.ndarray
    """(E,) edge keys."""
    axis: np.ndarray
    """(E,) their axes."""
    points: np.ndarray
    """(E, 3) crossing points."""
    planes: tuple[np.ndarray, np.ndarray, np.ndarray]
    """Noisy distances: ``(feet (P, 3), normals (P, 3), edge (P,))`` the tangent planes that placed the crossings."""

    def extended(
        self,
        edges: np.ndarray,
        axis: np.ndarray,
        points: np.ndarray,
        planes: tuple[np.ndarray, np.ndarray, np.ndarray] | None = None,
    ) -> "_Crossings":
        """These crossings followed by more (whose ``planes`` number their own edges from 0)."""
        if planes is not None:
            planes = tuple(
                np.concatenate([a, b]) for a, b in zip(self.planes, (planes[0], planes[1], planes[2] + len(self.edges)))
            )
        return _Crossings(
            np.concatenate([self.edges, edges]),
            np.concatenate([self.axis, axis]),
            np.concatenate([self.points, points]),
            self.planes if planes is None else planes,
        )


@dataclass
class _DualMesh:
    """Dual vertices and the quad of every crossed edge inside the grid."""

    vertices: np.ndarray
    """(V, 3) snapped dual vertices."""
    quads: np.ndarray
    """(Q, 4) vertex ids, ``QUAD`` order."""


@dataclass
class _Repaired:
    """The cleaned, consistently wound mesh."""

    vertices: np.ndarray
    faces: np.ndarray
    n_filled: int
    """Small holes closed."""


def pseudo_sign_mesh(fq: Queries, config: ExtractConfig, timings: dict) -> PathMesh:
    """Pseudo-sign dual contouring from CSP directions (open fields; see the module docstring)."""
    grid = _Grid.of(config)
    with timed(timings, "cells"):  # 1. candidate cells (coarse to fine)
        cand = _candidate_cells(fq, grid, config)
    with timed(timings, "corners"):  # 2. closest points at their corners
        corners = _query_corners(fq, cand.corners, grid)
    with timed(timings, "cells"):
        cells, edge_keys = _surface_cell_edges(cand, corners, grid, config)
    with timed(timings, "edges"):  # 3-4. crossed edges, distance bias
        crossed, err = _crossed_edges(fq, corners, _Edges.of(edge_keys, corners.keys, grid.stride), grid, config)
    with timed(timings, "vertices"):  # 5. dual vertices
        dual = _dual_vertices(fq, crossed, grid, err, config)
    with timed(timings, "mesh"):  # 6-7. repair, cleanup, winding
        mesh = _repaired_mesh(fq, dual, grid.h, err, config)
    return PathMesh(
        mesh.vertices, mesh.faces, err.bias, err.noise, int(len(cells)), int(len(crossed.edges)), mesh.n_filled
    )


def _candidate_cells(fq: Queries, grid: _Grid, config: ExtractConfig) -> _CandidateCells:
    """Cells near the surface (coarse to fine, :mod:`deepcsp.extract.sparse`), or every cell of the dense grid."""
    R = grid.resolution
    if config.sparse:
        cells = candidate_cells(fq.distances, R, grid.origin, grid.margin, stop_size=2).cells(R)
        ckeys = corner_keys(cells, grid.stride)
        return _CandidateCells(cells, ckeys, unique(ckeys))
    ax = np.arange(R, dtype=np.int64)
    cells = np.stack(np.meshgrid(ax, ax, ax, indexing="ij"), -1).reshape(-1, 3)
    return _CandidateCells(cells, None, np.arange(grid.n1**3, dtype=np.int64))


def _query_corners(fq: Queries, keys: np.ndarray, grid: _Grid) -> _Corners:
    """``CSP`` at the corners ``keys (C,)``: directions and distances (no autograd)."""
    p, q = fq.closest(grid.origin + corner_ijk(keys, grid.n1) * grid.h)
    n, u = unit(p - q)
    return _Corners(keys, p, q, n, u)


def _surface_cell_edges(
    cand: _CandidateCells, corners: _Corners, grid: _Grid, config: ExtractConfig
) -> tuple[np.ndarray, np.ndarray]:
    """``(cells (M, 3), edge keys)``: on sparse grids the candidate cells that may hold surface (a
    cell holding surface has every corner within its diagonal of it) and their edges; on dense
    grids every cell and edge."""
    if not config.sparse:
        return cand.cells, dense_edges(grid.n1)
    u_max = corners.distances[np.searchsorted(cand.corners, cand.corner_keys)].max(1)
    cells = cand.cells[u_max <= np.sqrt(3.0) * grid.h + grid.margin]
    return cells, cell_edges(cells, grid.n1)


def _crossed_edges(
    fq: Queries, c: _Corners, edges: _Edges, grid: _Grid, config: ExtractConfig
) -> tuple[_Crossings, _DistanceError]:
    """Step 3: flipped edges whose crossing the field confirms, then the crease rule's and the
    sheet rule's crossings (see the module docstring); the distance bias (step 4) from the flips."""
    h = grid.h
    test = _pseudo_signs(c, edges, h, config)
    flips = edges.take(test.flip)
    err = _flip_bias(c, flips, h, config)
    crossed = _flip_crossings(fq, c, flips, err, h, config)
    if config.side_cos > -1.0:
        crease = _crease_crossings(
            fq, c, edges.take(~test.flip & test.live & (test.cos < config.side_cos)), err, h, config
        )
        if crease is not None:
            crossed = crossed.extended(*crease)
    if config.cross_sheets and err.noise <= config.sheet_max_noise * h:
        other = edges.take(
            (c.distances[edges.ia] > 0)
            & (c.distances[edges.ib] > 0)
            & ~(test.agree & (test.cos < max(config.flip_cos, config.side_cos)))
        )
        sheet = _sheet_crossings(fq, c, other, err, h, config)
        crossed = crossed.extended(sheet.edges, sheet.axis, sheet.points, sheet.planes)
    return crossed, err


def _pseudo_signs(c: _Corners, e: _Edges, h: float, config: ExtractConfig) -> _PseudoSigns:
    """The pseudo-sign test of every edge (decided per edge, so neighbouring cells always agree)."""
    n_c, q, u_c = c.directions, c.closest, c.distances
    cos = (n_c[e.ia] * n_c[e.ib]).sum(1)
    agree = np.linalg.norm(q[e.ia] - q[e.ib], axis=1) < config.agree * h
    live = (u_c[e.ia] > 0) & (u_c[e.ib] > 0) & agree
    return _PseudoSigns(cos, agree, live, live & (cos < config.flip_cos))


def _flip_bias(c: _Corners, flips: _Edges, h: float, config: ExtractConfig) -> _DistanceError:
    """Bias and noise from the clear flips: ``u_a + u_b`` exceeds the edge's extent along the normal."""
    ne, _ = unit(c.directions[flips.ia] - c.directions[flips.ib])
    extent = h * np.abs(ne[np.arange(len(ne)), flips.axis])
    excess = 0.5 * (c.distances[flips.ia] + c.distances[flips.ib] - extent)
    if len(excess):
        med = float(np.median(excess))
        # the excess averages two distances: its spread is the distance noise / sqrt(2)
        noise = float(np.sqrt(2.0) * 1.4826 * np.median(np.abs(excess - med)))
    else:
        med, noise = 0.0, 0.0
    return _DistanceError(med if config.debias else 0.0, noise, noise > config.noisy_above * h)


def _flip_crossings(
    fq: Queries, c: _Corners, flips: _Edges, err: _DistanceError, h: float, config: ExtractConfig
) -> _Crossings:
    """The flipped edges kept, with their crossings (:func:`_noisy_flips` when the distances are
    noisy, :func:`_accepted_flips` otherwise)."""
    planes = no_planes()  # noisy distances: tangent planes of the crossed edges' samples
    if err.noisy:
        keep, xs, planes = _noisy_flips(fq, c, flips, err, h, config)
    else:
        keep, xs = _accepted_flips(fq, c, flips, err, h, config)
    # planes follow their edges: number them among the kept edges
    planes = (planes[0], planes[1], (np.cumsum(keep) - 1)[planes[2]])
    return _Crossings(flips.keys[keep], flips.axis[keep], xs[keep], planes)


def _crease_crossings(
    fq: Queries, c: _Corners, side: _Edges, err: _DistanceError, h: float, config: ExtractConfig
) -> tuple[np.ndarray, np.ndarray, np.ndarray] | None:
    """Crease rule: next to a crease the two corners see different faces and their directions are
    about orthogonal, so the flip test misses the crossing. Where one corner lies behind the
    other's (debiased) tangent plane, the plane meets the edge; the edge is kept when the field
    confirms that point is on the surface, with a tight tolerance (an edge running beside a
    sheet's open boundary passes the plane test too, but not this one). ``side``: the unflipped
    live edges whose directions' cosine is below ``side_cos``. Returns ``(edge keys, axes,
    crossings)``, None when no edge has a corner behind the other's plane."""
    p, n_c, u_c, bias = c.points, c.directions, c.distances, err.bias
    qt = c.closest + bias * n_c
    s_ab = ((p[side.ib] - qt[side.ia]) * n_c[side.ia]).sum(1)  # b relative to a's plane
    s_ba = ((p[side.ia] - qt[side.ib]) * n_c[side.ib]).sum(1)  # a relative to b's plane
    use_a = s_ab < 0
    cand = use_a | (s_ba < 0)
    e, use_a, s_ab, s_ba = side.take(cand), use_a[cand], s_ab[cand], s_ba[cand]
    if len(e.keys) == 0:
        return None
    # plane of the corner whose plane the other lies behind: signed heights of a and b
    pa = np.where(use_a, u_c[e.ia] - bias, s_ba)
    pb = np.where(use_a, s_ab, u_c[e.ib] - bias)
    t2 = (pa / np.where(np.abs(pa - pb) > 1e-15, pa - pb, 1.0)).clip(0.0, 1.0)
    x2 = p[e.ia] + t2[:, None] * (p[e.ib] - p[e.ia])
    x2_32, q2 = fq.closest(x2)
    n2, u2 = unit(x2_32 - q2)
    good = u2 - bias <= max(config.crease_accept * h, 4.0 * err.noise)
    return e.keys[good], e.axis[good], (q2 + bias * n2)[good]


def _dual_vertices(fq: Queries, cr: _Crossings, grid: _Grid, err: _DistanceError, config: ExtractConfig) -> _DualMesh:
    """Step 5: one vertex per sheet in each cell around a crossed edge (``split_sheets``; one per
    cell otherwise), the mean of its crossings snapped onto the surface (or moved to its tangent
    planes' mean height when noisy); one quad per crossed edge whose four cells lie in the grid."""
    R = grid.resolution
    qcells = quad_cells(cr.edges, grid.n1)
    valid = ((qcells >= 0) & (qcells < R)).all(axis=(1, 2))
    qcells, xs = qcells[valid], cr.points[valid]
    vmap = np.cumsum(valid) - 1
    pvalid = valid[cr.planes[2]]
    planes = (cr.planes[0][pvalid], cr.planes[1][pvalid], vmap[cr.planes[2][pvalid]])
    cell_keys = ((qcells[..., 0] * R + qcells[..., 1]) * R + qcells[..., 2]).reshape(-1)
    uniq, inv = np.unique(cell_keys, return_inverse=True)
    inv = inv.reshape(-1)
    if config.split_sheets:
        inv = _split_cells(inv, len(uniq), cr.axis[valid], xs)
        uniq = np.arange(int(inv.max()) + 1 if len(inv) else 0)
    vplanes = None
    if err.noisy:
        # each plane serves the four dual vertices around its edge
        pe = planes[2]
        vplanes = (np.repeat(planes[0], 4, axis=0), np.repeat(planes[1], 4, axis=0), inv.reshape(-1, 4)[pe].reshape(-1))
    vs = snapped_means(fq, inv, np.repeat(xs, 4, axis=0), len(uniq), err.bias, grid.h, planes=vplanes)
    return _DualMesh(vs, inv.reshape(-1, 4))


def _repaired_mesh(fq: Queries, dual: _DualMesh, h: float, err: _DistanceError, config: ExtractConfig) -> _Repaired:
    """Steps 6-7: quads split into triangles, vertices welded, boundaries snapped, fins dropped and
    small holes filled, faces wound consistently, small components removed."""
    bias = err.bias
    faces, _ = triangulate(dual.quads, dual.vertices)
    verts, faces = weld_and_clean(dual.vertices, faces, tol=1e-6 * h)
    if config.boundary_reach > 0:
        verts = snap_boundary(fq, verts, faces, config.boundary_reach * h, bias)
        verts, faces = weld_and_clean(verts, faces, tol=1e-6 * h)
    n_filled = 0
    if config.fill_holes > 0:
        faces = _drop_fins(fq, verts, orient_faces(verts, faces), bias)
        faces = orient_faces(verts, faces)
        verts, faces, n_filled = fill_surface_holes(
            fq, verts, faces, config.fill_holes, h, bias, err.noise, config.fill_tolerance, config.fill_field_error
        )
    faces = orient_faces(verts, faces)
    if config.zip_slits > 0:
        zipped, n_zipped = _zip_slits(fq, verts, faces, config.zip_slits * h, bias)
        if n_zipped:
            faces, n_filled = orient_faces(verts, zipped), n_filled + n_zipped
    verts, faces = remove_small_components(verts, faces, config.min_component_faces)
    return _Repaired(verts, faces, n_filled)


def _accepted_flips(
    fq: Queries, c: _Corners, flips: _Edges, err: _DistanceError, h: float, config: ExtractConfig
) -> tuple[np.ndarray, np.ndarray]:
    """Flipped edges ``flips`` whose interpolated crossing the field puts on the surface
    (``accept``; a second try where the tangent plane meets the edge, for creases), then, with the
    sheet rule, checked by sampling when that point is not right on the surface (``verify_flips``).
    Returns ``(keep (E,) bool, snapped crossing points (E, 3))``."""
    tau = max(config.accept * h, 8.0 * err.noise)
    at = _interpolated_crossings(fq, c, flips, err.bias)
    keep = at.distances - err.bias <= tau
    xs = at.snapped
    rows, points = _plane_retry(fq, c, flips, at, np.nonzero(~keep)[0], err.bias, h, tau)
    keep[rows] = True
    xs[rows] = points
    if config.cross_sheets and err.noise <= config.sheet_max_noise * h and config.verify_flips > 0:
        # a flip whose interpolated crossing is not right on the surface may be an edge passing
        # beside a sheet between two close sheets: keep it only if it straddles exactly one sheet
        ver = np.nonzero(keep & (at.distances - err.bias > max(config.verify_flips * h, 4.0 * err.noise)))[0]
        if len(ver):
            e = flips.take(ver)
            ref, _ = unit(c.directions[e.ia] - c.directions[e.ib])
            q32, qq = fq.closest(xs[ver])  # the field's distance at its own (debiased) closest point
            floor = np.linalg.norm(q32 - qq, axis=1)
            st = _edge_samples(fq, c, e, ref, floor, err, h, config, config.sheet_samples).straddle
            keep[ver[st.sum(1) != 1]] = False
    return keep, xs


@dataclass
class _Interpolated:
    """The field at the crossings interpolated from the corners' distances, one row per edge."""

    t: np.ndarray
    """(E,) the crossings' parameters along their edges."""
    directions: np.ndarray
    """(E, 3) the field's directions there."""
    distances: np.ndarray
    """(E,) the field's distances there."""
    snapped: np.ndarray
    """(E, 3) their debiased closest points."""


def _interpolated_crossings(fq: Queries, c: _Corners, e: _Edges, bias: float) -> _Interpolated:
    """Ask the field where the debiased distances interpolate to zero, ``t = (u_a - b) / (u_a + u_b - 2 b)``."""
    p, ua, ub = c.points, c.distances[e.ia], c.distances[e.ib]
    denom = ua + ub - 2 * bias
    t = np.where(denom > 1e-12, (ua - bias) / np.where(denom > 1e-12, denom, 1.0), 0.5).clip(0.0, 1.0)
    xc = p[e.ia] + t[:, None] * (p[e.ib] - p[e.ia])
    xc32, qc = fq.closest(xc)
    nc, uc = unit(xc32 - qc)
    return _Interpolated(t, nc, uc, qc + bias * nc)


def _plane_retry(
    fq: Queries,
    c: _Corners,
    e: _Edges,
    at: _Interpolated,
    retry: np.ndarray,
    bias: float,
    h: float,
    tau: float,
) -> tuple[np.ndarray, np.ndarray]:
    """Second chance for the edges ``retry`` (creases, where distance is not linear along the
    edge): move to where the tangent plane at the interpolated crossing's closest point meets the
    edge and ask again. Returns ``(rows now on the surface (R,), their snapped crossings (R, 3))``."""
    p = c.points
    e_dot = at.directions[retry, e.axis[retry]]
    ok2 = np.abs(e_dot) > 0.1
    lam = np.where(ok2, -(at.distances[retry] - bias) / np.where(ok2, e_dot, 1.0), 0.0)
    t2 = at.t[retry] + lam / h
    ok2 &= (t2 >= 0.0) & (t2 <= 1.0)
    retry = retry[ok2]
    if len(retry) == 0:
        return retry, np.zeros((0, 3))
    x2 = p[e.ia[retry]] + t2[ok2, None] * (p[e.ib[retry]] - p[e.ia[retry]])
    x2_32, q2 = fq.closest(x2)
    n2, u2 = unit(x2_32 - q2)
    good = u2 - bias <= tau
    return retry[good], (q2 + bias * n2)[good]


def _edge_samples(
    fq: Queries,
    c: _Corners,
    e: _Edges,
    ref: np.ndarray,
    floor: np.ndarray,
    err: _DistanceError,
    h: float,
    config: ExtractConfig,
    samples: int,
    planes: bool = False,
) -> EdgeSamples:
    """:func:`~deepcsp.extract.planes.straddles` on the edges ``e`` between corners of ``c``."""
    n, u = c.directions, c.distances
    return straddles(
        fq,
        c.points[e.ia],
        c.points[e.ib],
        n[e.ia],
        n[e.ib],
        u[e.ia],
        u[e.ib],
        ref,
        floor,
        err.bias,
        err.noise,
        h,
        samples,
        config.straddle_slack,
        planes=planes,
    )


def _noisy_flips(
    fq: Queries, c: _Corners, e: _Edges, err: _DistanceError, h: float, config: ExtractConfig
) -> tuple[np.ndarray, np.ndarray, tuple[np.ndarray, np.ndarray, np.ndarray]]:
    """Flipped edges checked when the distances are noisy (``noisy_above``): one query at the
    interpolated crossing cannot tell an edge passing a tenth of a cell beside a sheet from one
    crossing it, so every flipped edge is sampled and judged by its samples' tangent planes
    (:func:`~deepcsp.extract.planes.straddles` with ``planes``); an edge is kept where it straddles
    exactly one sheet, its crossing placed by those planes (not snapped: the dual vertices average
    the planes).
    Returns ``(keep (E,) bool, crossing points (E, 3), planes)``, ``planes = (feet (P, 3), normals
    (P, 3), edge (P,))`` the tangent planes that judged each kept edge."""
    xs = np.zeros((len(e.ia), 3))
    keep = np.zeros(len(e.ia), dtype=bool)
    if len(e.ia) == 0:
        return keep, xs, no_planes()
    ref, _ = unit(c.directions[e.ia] - c.directions[e.ib])
    floor = np.full(len(e.ia), err.bias)
    smp = _edge_samples(fq, c, e, ref, floor, err, h, config, config.noisy_samples, planes=True)
    st = smp.straddle
    rows, j = np.nonzero(st & (st.sum(1) == 1)[:, None])
    keep[rows] = True
    pa, pb = c.points[e.ia[rows]], c.points[e.ib[rows]]
    xs[rows] = pa + smp.tcross[rows, j][:, None] * (pb - pa)
    return keep, xs, flat_planes(smp, rows, j, rows)


def _sheet_crossings(
    fq: Queries, c: _Corners, e: _Edges, err: _DistanceError, h: float, config: ExtractConfig
) -> _Crossings:
    """Crossings of edges that the flip test skips although one sheet crosses them: where two
    sheets lie within a cell or two (folds, hems, thin parts) a corner may see the other sheet, so
    the corners' directions do not flip (or their closest points do not agree).

    Screening (:func:`_sheet_screen`): for each corner ``c`` of an edge ``a -> b`` of ``e``, the
    other corner lies behind ``c``'s debiased tangent plane, and the point ``x`` where that plane
    meets the edge lies within ``sheet_accept`` cells of the surface with its closest point within
    ``agree`` cells of ``q_c`` (on ``c``'s sheet); a grazing edge passes this too. Decision: the
    screened edges are sampled (:func:`~deepcsp.extract.planes.straddles`); an edge that straddles
    exactly one sheet is crossed there, snapped with ``CSP``; twice (a ridge or fold sharper than a
    cell, cut twice by the edge) gives no crossing, as with signs. The crossings' ``planes`` are
    the tangent planes that judged each edge when the distances are noisy, as :func:`_noisy_flips`
    gives them; none otherwise.
    """
    empty = _Crossings(np.zeros(0, dtype=e.keys.dtype), np.zeros(0, dtype=e.axis.dtype), np.zeros((0, 3)), no_planes())
    if len(e.keys) == 0:
        return empty
    screened, ref, foot = _sheet_screen(fq, c, e, err, h, config)
    sel = np.nonzero(screened)[0]
    if len(sel) == 0:
        return empty
    s = e.take(sel)
    f32, fq_ = fq.closest(foot[sel])  # the field's distance at its own (debiased) closest point
    floor = np.linalg.norm(f32 - fq_, axis=1)
    smp = _edge_samples(fq, c, s, ref[sel], floor, err, h, config, config.sheet_samples, planes=err.noisy)
    rows, j = np.nonzero(smp.straddle & (smp.straddle.sum(1) == 1)[:, None])  # crossed exactly once
    if len(rows) == 0:
        return empty
    pa, pb = c.points[s.ia[rows]], c.points[s.ib[rows]]
    xc = pa + smp.tcross[rows, j][:, None] * (pb - pa)
    if err.noisy:
        # the samples' planes placed the crossing; a single noisy query would only move it off
        return _Crossings(s.keys[rows], s.axis[rows], xc, flat_planes(smp, rows, j, np.arange(len(rows))))
    xc32, qc = fq.closest(xc)
    nc, uc = unit(xc32 - qc)
    ok = uc - err.bias <= max(config.accept * h, 8.0 * err.noise)
    return _Crossings(s.keys[rows[ok]], s.axis[rows[ok]], (qc + err.bias * nc)[ok], no_planes())


def _sheet_screen(
    fq: Queries, corners: _Corners, e: _Edges, err: _DistanceError, h: float, config: ExtractConfig
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The screening of :func:`_sheet_crossings`. Returns ``(screened (E,) bool, the screening
    corner's direction (E, 3), the debiased closest point of the plane's point on the edge (E, 3))``."""
    p, q, n, u = corners.points, corners.closest, corners.directions, corners.distances
    ia, ib, bias = e.ia, e.ib, err.bias
    tol = max(config.sheet_accept * h, 4.0 * err.noise)
    reach = config.agree * h
    screened = np.zeros(len(ia), dtype=bool)
    ref = np.zeros((len(ia), 3))  # the screening corner's direction
    foot = np.zeros((len(ia), 3))  # the (debiased) closest point of the plane's point on the edge
    for c, o in ((ia, ib), (ib, ia)):
        ha = u[c] - bias  # the corner's height over its own (debiased) plane
        ho = ((p[o] - q[c] - bias * n[c]) * n[c]).sum(1)  # the other corner's height
        sel = np.nonzero((ho < 0) & (ha > 0) & ~screened)[0]
        if len(sel) == 0:
            continue
        t = (ha[sel] / (ha[sel] - ho[sel])).clip(0.0, 1.0)
        x32, qx = fq.closest(p[c[sel]] + t[:, None] * (p[o[sel]] - p[c[sel]]))
        ux = np.linalg.norm(x32 - qx, axis=1)
        screened[sel] = (ux - bias <= tol) & (np.linalg.norm(qx - q[c[sel]], axis=1) <= reach)
        ref[sel] = n[c[sel]]
        nx, _ = unit(x32 - qx)
        foot[sel] = qx + bias * nx
    return screened, ref, foot


def _split_cells(cell_of: np.ndarray, n_cells: int, axis: np.ndarray, xs: np.ndarray) -> np.ndarray:
    """Group the crossings of each cell into sheets and give each group its own dual vertex.

    ``cell_of : (4E,)`` cell index of entry ``4 e + k`` (crossed edge ``e`` seen from the ``k``-th
    cell of its quad), ``axis : (E,)`` the edges' axes, ``xs : (E, 3)`` their crossing points.
    On every cell face, two crossings are linked (one sheet passes through the face between them);
    four are paired along the face's sides, the pairing with the shorter links winning; one or
    three (inconsistent pseudo-signs) are all linked, as one vertex per cell would. Returns
    ``(4E,)`` vertex ids (connected components of the links within each cell).
    """
    n = len(cell_of)
    if n == 0:
        return cell_of
    table = entry_table(cell_of, n_cells, axis)
    xe = np.repeat(xs, 4, axis=0)

    def shorter_pairing(face: int, four: np.ndarray, sub: np.ndarray) -> np.ndarray:
        d = lambda i, j: np.linalg.norm(xe[sub[:, i]] - xe[sub[:, j]], axis=1)  # noqa: E731
        return d(0, 1) + d(2, 3) <= d(1, 2) + d(3, 0)

    a, b = link_cell_faces(table, shorter_pairing)
    _, labels = link_components(a, b, n)
    return labels.astype(np.int64)


def _drop_fins(fq: Queries, verts: np.ndarray, faces: np.ndarray, bias: float) -> np.ndarray:
    """At every edge of ``faces (F, 3)`` shared by more than two faces, keep only the two faces whose
    centroids lie closest to the field's surface (the others are fins from a misjudged crossing;
    the holes their removal leaves are closed by the hole-filling pass); faces left without any
    neighbour are dropped too. Returns the kept faces."""
    if len(faces) == 0:
        return faces
    _, key, owner = _edges(faces, len(verts))
    _, inv, counts = np.unique(key, return_inverse=True, return_counts=True)
    nm = counts[inv] > 2
    if not nm.any():
        return faces
    fid, ekey = owner[nm], inv[nm]
    cand = unique(fid)
    c32, qc = fq.closest(verts[faces[cand]].mean(1))
    dist = np.full(len(faces), np.inf)
    dist[cand] = np.linalg.norm(c32 - qc, axis=1)
    he, _, _ = _edges(faces, len(verts))
    fwd = he[nm, 0] < he[nm, 1]
    order = np.lexsort((dist[fid], ekey))
    fid, ekey, fwd = fid[order], ekey[order], fwd[order]
    start = np.searchsorted(ekey, ekey)
    rank = np.arange(len(ekey)) - start
    # keep the closest face and the closest one running the other way along the edge (so the two
    # kept faces can be wound consistently); the second closest when none runs the other way
    other = (fwd != fwd[start]) & (rank > 0)
    idx = np.arange(len(ekey))
    first_other = np.full(len(ekey), len(ekey))
    np.minimum.at(first_other, start[other], idx[other])
    partner = np.where(first_other[start] < len(ekey), first_other[start], start + 1)
    kept = (rank == 0) | (idx == partner)
    drop = unique(fid[~kept])
    keep = np.ones(len(faces), dtype=bool)
    keep[drop] = False
    faces = faces[keep]
    # a face left with no neighbour at all (its other edges were boundary) was a fin too
    _, key, owner = _edges(faces, len(verts))
    _, inv, counts = np.unique(key, return_inverse=True, return_counts=True)
    lone = np.bincount(owner, weights=counts[inv] == 1, minlength=len(faces)) == 3
    return faces[~lone]


def fill_surface_holes(
    fq: Queries,
    verts: np.ndarray,
    faces: np.ndarray,
    max_edges: int,
    h: float,
    bias: float,
    noise: float,
    rel_tol: float = 0.5,
    error_cap: float = 0.0,
) -> tuple[np.ndarray, np.ndarray, int]:
    """Close small holes that lie on the field's surface.

    The boundary of ``verts (V, 3)``, ``faces (F, 3)`` (consistently wound) is split into cycles,
    loops touching at a pinch vertex separated (:func:`boundary_cycles`). A cycle ``L`` is closed by
    a fan around a new vertex ``c = CSP(m) + bias n`` (``m`` the cycle's centroid) when it visits
    each vertex once, has at most ``max_edges`` edges and ``m`` and the midpoints ``(c + v) / 2`` of
    every spoke lie within ``tol = max(h / 4, rel_tol rho, 4 noise) + min(2 e, error_cap h)`` of the
    surface (``rho`` the loop's mean radius, ``e`` the field's own error at ``c``: the distance it
    reports at its own closest point ``c``, 0 for an exact field, up to a quarter cell for a fitted
    band-grid field where sheets are close): a true hole of radius ``rho`` has its centre ``~rho``
    off the surface and stays open. The fan
    faces ``(b, a, c)`` run against the loop's half-edges ``a -> b``, so winding stays consistent.
    Returns ``(verts, faces, number of loops closed)``.
    """
    if len(faces) == 0:
        return verts, faces, 0
    nv = len(verts)
    bhe = boundary_half_edges(faces, nv)
    if len(bhe) == 0:
        return verts, faces, 0
    n_loops, lab, simple = boundary_cycles(bhe, nv)
    size = np.bincount(lab, minlength=n_loops)
    ok_loop = (np.bincount(lab, weights=simple, minlength=n_loops) == size) & (size >= 3) & (size <= max_edges)
    loops = np.nonzero(ok_loop)[0]
    if len(loops) == 0:
        return verts, faces, 0
    sel = ok_loop[lab]
    bhe, lab = bhe[sel], np.searchsorted(loops, lab[sel])
    cnt = np.bincount(lab, minlength=len(loops)).astype(np.float64)
    m = (
        np.stack([np.bincount(lab, weights=verts[bhe[:, 0], d], minlength=len(loops)) for d in range(3)], -1)
        / cnt[:, None]
    )
    rho = np.bincount(lab, weights=np.linalg.norm(verts[bhe[:, 0]] - m[lab], axis=1), minlength=len(loops)) / cnt
    tol = np.maximum(np.maximum(0.25 * h, rel_tol * rho), 4.0 * noise)
    m32, qm = fq.closest(m)
    nm, um = unit(m32 - qm)
    c = qm + bias * nm
    if error_cap > 0:
        # the field's own error there: its distance at its own closest point (0 for an exact field)
        c32, qc = fq.closest(c)
        tol = tol + np.minimum(2.0 * (np.linalg.norm(c32 - qc, axis=1) - bias).clip(0.0), error_cap * h)
    mid32, qs = fq.closest(0.5 * (c[lab] + verts[bhe[:, 0]]))
    us = np.linalg.norm(mid32 - qs, axis=1) - bias
    spoke_ok = np.bincount(lab, weights=us <= tol[lab], minlength=len(loops)) == cnt
    good = (um - bias <= tol) & spoke_ok & (np.linalg.norm(c - m, axis=1) <= tol + 0.5 * h)
    if not good.any():
        return verts, faces, 0
    new_id = np.full(len(loops), -1, dtype=np.int64)
    new_id[good] = nv + np.arange(int(good.sum()))
    use = good[lab]
    fan = np.stack([bhe[use, 1], bhe[use, 0], new_id[lab[use]]], -1)
    return np.concatenate([verts, c[good]]), np.concatenate([faces, fan]), int(good.sum())


def _zip_slits(fq: Queries, verts: np.ndarray, faces: np.ndarray, tol: float, bias: float) -> tuple[np.ndarray, int]:
    """Close slits: boundary loops, of any length, whose ear-clipped patch is thin (mean width,
    twice its area over its perimeter, at most ``2 tol``) and lies on the field's surface (every
    patch triangle's centroid and edge midpoints within ``tol`` of it, bias removed). A tear a
    fraction of a cell wide along a crease passes (measured on cube_no_bottom's edges with a 180
    topology grid: 0.07 cells off, 0.04-0.09 cells wide); a true hole's patch reaches half its width
    off the surface, and an outer boundary's patch (the sheet again) is as wide as the sheet, so
    both stay open. Meshes that can not be wound consistently (a Moebius strip) are left alone.
    Returns ``(faces, number of loops closed)``."""
    from deepcsp.extract.holes import boundary_loops, ear_clip, edge_keys

    loops = boundary_loops(faces, len(verts))
    if not loops or inconsistent_edge_count(faces, len(verts)):
        return faces, 0
    taken = edge_keys(faces, len(verts), among=loops)
    clipped = [(loop, ear_clip(verts, loop, taken)) for loop in loops]
    clipped = [(loop, tri) for loop, tri in clipped if tri is not None]
    if not clipped:
        return faces, 0
    tri = np.concatenate([t for _, t in clipped])
    owner = np.repeat(np.arange(len(clipped)), [len(t) for _, t in clipped])
    a, b, c = verts[tri[:, 0]], verts[tri[:, 1]], verts[tri[:, 2]]
    p32, q = fq.closest(np.concatenate([(a + b + c) / 3, (a + b) / 2, (b + c) / 2, (c + a) / 2]))
    off = np.full(len(clipped), -np.inf)
    np.maximum.at(off, owner, (np.linalg.norm(p32 - q, axis=1) - bias).reshape(4, -1).max(0))
    area = np.bincount(owner, weights=0.5 * np.linalg.norm(np.cross(b - a, c - a), axis=1), minlength=len(clipped))
    perimeter = np.array([np.linalg.norm(verts[loop] - verts[np.roll(loop, -1)], axis=1).sum() for loop, _ in clipped])
    slit = (off <= tol) & (2.0 * area / perimeter <= 2.0 * tol)  # on the surface and thin
    if not slit.any():
        return faces, 0
    return np.concatenate([faces, *(t for (_, t), s in zip(clipped, slit) if s)]), int(slit.sum())
