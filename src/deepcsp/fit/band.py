"""Collocation of a band grid: exact closest points at grid vertices near the surface, found
coarse-to-fine so that far-away fine vertices are never queried."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from deepcsp.fields.encodings import BandGrid, grid_vertices


@dataclass
class BandStats:
    """What collocation did: active fine vertices, oracle queries, and their share of a dense grid."""

    n_active: int
    n_queried: int
    dense_vertices: int
    seconds: float
    seconds_sides: float = 0.0
    """Seconds spent on inside/outside bits (closed inputs only)."""


def _values(kind: str, output: str, v: np.ndarray, cp: np.ndarray, dist: np.ndarray) -> np.ndarray:
    if kind == "udf":
        return dist[:, None]
    if output == "displacement":
        return cp - v
    if output == "point":
        return cp
    raise ValueError("band_grid supports output 'displacement' or 'point' (trilinear interpolation of either is identical)")


def collocate(grid: BandGrid, oracle, band: float, kind: str = "csp", output: str = "displacement") -> BandStats:
    """Fill ``grid`` (in place) with exact values: every coarse vertex, and every fine vertex whose
    distance to the surface is at most ``band + sqrt(3) h`` (so any cell meeting the band has all
    8 corners active)."""
    import time

    t0 = time.perf_counter()
    half, rc, rf = grid.half, grid.coarse_res, grid.res
    hc, hf = 2 * half / (rc - 1), 2 * half / (rf - 1)
    cv = grid_vertices(rc, half).double().numpy()
    cres = oracle.query(cv)
    grid.coarse.values.data = torch.as_tensor(_values(kind, output, cv, cres.points, cres.distances), dtype=torch.float32)

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
    res = oracle.query(v)
    act = res.distances <= keep
    vals = _values(kind, output, v[act], res.points[act], res.distances[act])
    grid.set_active(torch.as_tensor(ids[act]), torch.as_tensor(vals, dtype=torch.float32))
    return BandStats(n_active=int(act.sum()), n_queried=len(ids) + rc**3, dense_vertices=rf**3, seconds=time.perf_counter() - t0)


def collocate_sides(grid: BandGrid, vertices: np.ndarray, faces: np.ndarray) -> float:
    """Store inside/outside bits (generalised winding numbers of the closed mesh ``vertices,
    faces`` in normalised coordinates) at the active fine and all coarse vertices of ``grid``;
    returns the seconds spent."""
    import time

    from deepcsp.geometry.inside import outside_mask

    t0 = time.perf_counter()
    coarse = outside_mask(vertices, faces, grid_vertices(grid.coarse_res, grid.half).double().numpy())
    fine = outside_mask(vertices, faces, grid_vertices(grid.res, grid.half, ids=grid.active.cpu()).double().numpy())
    grid.set_sides(torch.from_numpy(fine), torch.from_numpy(coarse))
    return time.perf_counter() - t0
