"""Collocation of a band grid: exact closest points at grid vertices near the surface, found
coarse-to-fine so that far-away fine vertices are never queried."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from deepcsp.constants import (
    REFINE_BUDGET,
    REFINE_GAP,
    REFINE_MAX_CELLS,
    REFINE_MIN_CELLS,
    REFINE_NEAR,
    REFINE_OFFSET,
    REFINE_ROUGH,
)
from deepcsp.fields import encodings
from deepcsp.fields.encodings import BandGrid, cell_indices, cells_around, corner_ids, grid_vertices
from deepcsp.fields.meshcodec import MeshSource
from deepcsp.geometry.cleanup import face_normals


@dataclass
class BandStats:
    """What collocation did: active fine vertices, oracle queries, and their share of a dense grid."""

    n_active: int
    n_queried: int
    dense_vertices: int
    seconds: float
    seconds_sides: float = 0.0
    """Seconds spent on inside/outside bits (closed inputs only)."""
    n_refined: int = 0
    """Fine cells refined (two sheets within a cell or two; ``BandGrid.refine`` sub-cells per axis)."""
    n_subvertices: int = 0
    """Distinct refined-level vertices stored (cell corners excluded)."""
    seconds_refine: float = 0.0
    """Seconds spent choosing and collocating the refined cells (included in ``seconds``)."""


def _values(kind: str, output: str, v: np.ndarray, cp: np.ndarray, dist: np.ndarray) -> np.ndarray:
    if kind == "udf":
        return dist[:, None]
    if output == "displacement":
        return cp - v
    if output == "point":
        return cp
    raise ValueError(
        "band_grid supports output 'displacement' or 'point' (trilinear interpolation of either is identical)"
    )


def collocate(
    grid: BandGrid,
    oracle,
    band: float,
    kind: str = "csp",
    output: str = "displacement",
    closed_mesh: tuple | None = None,
) -> BandStats:
    """Fill ``grid`` (in place) with exact values: every coarse vertex, and every fine vertex whose
    distance to the surface is at most ``band + sqrt(3) h`` (so any cell meeting the band has all
    8 corners active). With ``closed_mesh = (vertices, faces)`` (a watertight mesh in normalised
    coordinates) also store which vertices lie outside it (:func:`outside_bits`). A CSP grid
    (displacements) with ``grid.refine > 1`` also gets its refined level where two sheets pass
    within a cell or two (:func:`refine_close_sheets`)."""
    import time

    t0 = time.perf_counter()
    half, rc, rf = grid.half, grid.coarse_res, grid.res
    hc, hf = 2 * half / (rc - 1), 2 * half / (rf - 1)
    cv = grid_vertices(rc, half).double().numpy()
    cres = oracle.query(cv)
    grid.coarse.values.data = torch.as_tensor(
        _values(kind, output, cv, cres.points, cres.distances), dtype=torch.float32
    )

    # Coarse cells that may contain points within band + margin of the surface.
    keep = band + np.sqrt(3) * hf
    dcorner = cres.distances.reshape(rc, rc, rc)
    mins = dcorner[:-1, :-1, :-1]
    for di in (0, 1):
        for dj in (0, 1):
            for dk in (0, 1):
                mins = np.minimum(mins, dcorner[di : rc - 1 + di, dj : rc - 1 + dj, dk : rc - 1 + dk])
    cand_cells = mins <= keep + np.sqrt(3) * hc
    # Fine vertices whose coarse cell (any of the up to 8 touching cells) is a candidate.
    idx = np.arange(rf)
    pos = idx * hf  # offset from -half
    ci = np.minimum((pos / hc).astype(np.int64), rc - 2)
    cand = cand_cells[ci][:, ci][:, :, ci]
    ids = np.flatnonzero(cand)
    v = grid_vertices(rf, half, ids=torch.as_tensor(ids)).double().numpy()
    near = getattr(oracle, "may_lie_within", None)  # a cheap bound (point clouds): skip surely far vertices
    if near is not None:
        mask = near(v, keep)
        ids, v = ids[mask], v[mask]
    res = oracle.query(v)
    act = res.distances <= keep
    vals = _values(kind, output, v[act], res.points[act], res.distances[act])
    grid.set_active(torch.as_tensor(ids[act]), torch.as_tensor(vals, dtype=torch.float32))
    if getattr(oracle, "faces", None) is not None and kind == "csp" and output == "displacement":
        # the triangles of the closest points: a field file stores them instead of the values
        grid.source = MeshSource(
            oracle.vertices, oracle.faces, {"coarse.values": cres.face_ids, "values": res.face_ids[act]}
        )
    t_ref = time.perf_counter()
    n_ref, n_sub = (0, 0)
    if grid.refine > 1 and kind == "csp" and output == "displacement":
        n_ref, n_sub = refine_close_sheets(grid, oracle)
    seconds_refine = time.perf_counter() - t_ref
    seconds = time.perf_counter() - t0
    seconds_sides = 0.0
    if closed_mesh is not None:
        t1 = time.perf_counter()
        fine = outside_bits(closed_mesh[0], closed_mesh[1], v[act], res.points[act], res.face_ids[act])
        coarse = outside_bits(closed_mesh[0], closed_mesh[1], cv, cres.points, cres.face_ids)
        grid.set_sides(torch.from_numpy(fine), torch.from_numpy(coarse))
        seconds_sides = time.perf_counter() - t1
    return BandStats(
        n_active=int(act.sum()),
        n_queried=len(ids) + rc**3 + n_sub,
        dense_vertices=rf**3,
        seconds=seconds + seconds_sides,
        seconds_sides=seconds_sides,
        n_refined=n_ref,
        n_subvertices=n_sub,
        seconds_refine=seconds_refine,
    )


def close_sheet_cells(
    grid: BandGrid,
    near: float = REFINE_NEAR,
    gap: float = REFINE_GAP,
    offset: float = REFINE_OFFSET,
    chunk: int = 1 << 15,
) -> tuple[torch.Tensor, torch.Tensor]:
    """:func:`deepcsp.fields.encodings.close_sheet_cells` with the refinement's thresholds."""
    return encodings.close_sheet_cells(grid, near, gap, offset, chunk)


def refine_close_sheets(
    grid: BandGrid,
    oracle,
    near: float = REFINE_NEAR,
    gap: float = REFINE_GAP,
    offset: float = REFINE_OFFSET,
    budget: float = REFINE_BUDGET,
) -> tuple[int, int]:
    """Give ``grid`` its refined level in :func:`close_sheet_cells` and, after them, in their
    :func:`rough_neighbours` (the closest sheets first, then the worst interpolated neighbours, up to
    ``budget`` values per fine vertex and ``REFINE_MAX_CELLS`` cells), with exact closest points at
    every sub-vertex. (Where a
    refined cell meets an unrefined one the two interpolations differ by the fine level's error on
    their shared face; interpolating the fine level on the refined
    region's boundary instead, to keep the field continuous there, was measured worse: airplane_holes
    Chamfer-L1 +5%, the same loops.) Returns ``(refined cells, distinct sub-vertices stored)``."""
    cells, sep = close_sheet_cells(grid, near, gap, offset)
    # within the budget, the cells whose sheets are closest first (a refined cell adds at most
    # (K+1)^3 - 8 values, fewer where refined cells share faces)
    K = grid.refine
    most = min(max(int(budget * len(grid.active) / ((K + 1) ** 3 - 8)), REFINE_MIN_CELLS), REFINE_MAX_CELLS)
    if len(cells) < most:  # room left: then the neighbours worst interpolated, priorities in (gap, gap + 1]
        rough, error = rough_neighbours(grid, oracle, cells, REFINE_ROUGH)
        cells, sep = torch.cat([cells, rough]), torch.cat([sep, gap + 1.0 - error.clamp(max=1.0)])
    if len(cells) > most:
        cells = cells[torch.argsort(sep, stable=True)[:most]]
    cells = torch.sort(cells)[0]
    if len(cells) == 0:
        grid.set_refined(cells, torch.zeros(0, (grid.refine + 1) ** 3, grid.channels))
        return 0, 0
    K, R = grid.refine, grid.res
    P = (K + 1) ** 3
    ids = grid.sub_vertex_ids(cells)  # (M, P)
    corners = torch.zeros(P, dtype=torch.bool)
    corners[grid._corner_locals()] = True
    uniq, inv = torch.unique(ids[:, ~corners], return_inverse=True)
    pts = grid.sub_vertex_positions(uniq).numpy()
    res = oracle.query(pts)
    fine = torch.zeros(len(cells), P, grid.channels)
    fine[:, ~corners] = torch.as_tensor(res.points - pts, dtype=torch.float32)[inv]
    rows = grid.table()[corner_ids(cell_indices(cells, R), R)].long()
    fine[:, grid._corner_locals()] = grid.values.detach()[rows]
    grid.set_refined(cells, fine)
    if grid.source is not None:
        grid.source.face_ids["fine_values"] = res.face_ids
    return len(cells), int(len(uniq))


def rough_neighbours(grid: BandGrid, oracle, cells: torch.Tensor, rough: float) -> tuple[torch.Tensor, torch.Tensor]:
    """The cells around ``cells`` (lowest-corner flat ids; their 26 neighbours with all 8 corners
    active, not in ``cells``) whose corners' displacements, interpolated at the cell's centre, miss
    its exact closest point (``oracle``) by more than ``rough`` cells: ``(cells (M,), errors in cells
    (M,))``. Beside two close sheets the next cell out often sees one sheet bend sharply (a fold's
    crest, a seam where layers meet) that its corners cannot follow (tee_sim: 21% of the close-sheet
    samples, p90 0.18 cells there)."""
    if len(cells) == 0:
        return cells, torch.zeros(0)
    R = grid.res
    flat = cells_around(cells, R)
    flat = flat[~torch.isin(flat, cells)]
    ijk = cell_indices(flat, R)
    rows = grid.table()[corner_ids(ijk, R)].long()
    active = (rows >= 0).all(1)
    flat, ijk, rows = flat[active], ijk[active], rows[active]
    centre = (ijk.double() + 0.5) * grid.h - grid.half
    guess = centre + grid.values.detach()[rows].double().mean(1)  # trilinear weights at the centre: 1/8 each
    exact = torch.as_tensor(oracle.query(centre.numpy()).points)
    error = (guess - exact).norm(dim=1) / grid.h
    keep = error > rough
    return flat[keep], error[keep].float()


def outside_bits(
    vertices: np.ndarray,
    faces: np.ndarray,
    points: np.ndarray,
    closest: np.ndarray,
    face_ids: np.ndarray,
    check: int = 2000,
) -> np.ndarray:
    """``(N,)`` bool: which ``points`` lie outside the closed mesh, given their exact closest
    points and faces.

    Where the closest point lies inside its face (the offset is parallel to the face normal;
    85-90% of band vertices on the dev meshes) the side is the sign of the offset along the
    normal; elsewhere (closest point on an edge or vertex, where a face normal can mislead) the
    generalised winding number decides. The face-normal rule is checked against winding numbers
    on ``check`` random points and abandoned for winding numbers everywhere if they disagree
    (inconsistently oriented components)."""
    from deepcsp.geometry.inside import outside_mask

    fn = face_normals(vertices, faces[face_ids])
    d = points - closest
    u = np.linalg.norm(d, axis=1)
    along = (d * fn).sum(1)
    interior = np.abs(along) > 0.9999 * u
    interior &= u > 0
    out = along > 0
    rest = np.flatnonzero(~interior)
    out[rest] = outside_mask(vertices, faces, points[rest])
    idx = np.flatnonzero(interior)
    if len(idx):
        probe = np.random.default_rng(0).choice(idx, size=min(check, len(idx)), replace=False)
        agree = outside_mask(vertices, faces, points[probe]) == out[probe]
        if agree.mean() < 0.999:
            flipped = (~agree).mean() > 0.999  # every face wound inward
            out[idx] = ~out[idx] if flipped else outside_mask(vertices, faces, points[idx])
    return out
