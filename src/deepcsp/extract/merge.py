"""Sheets closer than the extraction grid resolves, merged into their mid-surface.

Pseudo-signs (CSP directions at grid corners) see two sheets less than about a cell apart only
where a corner happens to fall between them, so such a pair comes out shredded: patches of either
sheet, torn where the corners switch sides (two open rectangles a quarter of a field cell apart,
extracted on the automatic topology grid: 25 pieces for 2). :class:`MergedQueries` answers
closest-point queries with the closest point on the pair's mid-surface instead, so that the
extraction sees, and meshes, one clean sheet there.

Merging is only safe where the pair stays close up to where it ends (a boundary or a fold): where
two close sheets move apart (the two skins of a wing towards its trailing edge, two layers of cloth)
the merged strip meets the two separate sheets in a Y, which a single-layer mesh cannot follow
(measured: airplane_holes 25 -> 42 boundary loops and 74 inconsistent edges, tee_sim 5 -> 11 loops,
even with merging restricted to the field's close-sheet cells). So extraction
(:func:`deepcsp.extract.mesh.extract_mesh`) meshes such a field both ways and keeps the merged mesh
only where it has fewer defects (pieces + boundary loops + inconsistent edges).
"""

from __future__ import annotations

from typing import Callable

import numpy as np
import torch

from deepcsp.constants import (
    MERGE_AIM_COS,
    MERGE_AIM_ERRORS,
    MERGE_MAX_SLANT,
    MERGE_MIN_SEPARATION,
    REFINE_GAP,
    REFINE_NEAR,
    REFINE_OFFSET,
)
from deepcsp.extract.grid import Queries, unit
from deepcsp.fields.encodings import BandGrid, cell_coordinates, cells_around, close_sheet_cells
from deepcsp.fields.query import Field


class MergedQueries(Queries):
    """Closest points on a field's surface in which every two sheets closer than ``gap``
    (normalised units) are replaced by their mid-surface.

    For a point ``x`` with closest point ``q`` and direction ``n = (x - q) / |x - q|``, the field is
    asked at the probes ``q +- gap n / 2``; a probe whose closest point ``q'`` lies at most ``gap``
    from ``q`` along ``+-n`` (and not mainly sideways) has found the other sheet of a close pair,
    and ``x``'s closest point becomes ``(q + q') / 2``. ``where`` (closest points ``(N, 3)`` ->
    ``(N,)`` bool), when given, limits this to the points it marks (see :func:`close_sheet_gate`).
    ``n_merged`` counts the points so answered. Three field queries per point probed, four where a
    pair is found, two more where the probes are aimed again (fields read from a file, near the
    sheet: :meth:`_reaim`). Known weakness: on a sheet (``x = q``) of a field in memory the
    direction, and so the probes' aim, is arbitrary.
    """

    def __init__(self, field: Field, gap: float, where: Callable[[np.ndarray], np.ndarray] | None = None):
        super().__init__(field)
        self.gap = float(gap)
        self.where = where
        self.n_merged = 0

    def closest(self, x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        x32, q = super().closest(x)
        if len(q) == 0 or self.gap <= 0:
            return x32, q
        idx = np.arange(len(q)) if self.where is None else np.nonzero(self.where(q))[0]
        if len(idx) == 0:
            return x32, q
        n, u = unit(x32[idx] - q[idx])
        other = self._other_sheet(q[idx], n, u)
        found = np.isfinite(other[:, 0])
        self.n_merged += int(found.sum())
        q[idx[found]] = 0.5 * (q[idx[found]] + other[found])
        return x32, q

    def _other_sheet(self, q: np.ndarray, n: np.ndarray, u: np.ndarray) -> np.ndarray:
        """``(N, 3)`` the closest point of the other sheet of a close pair through ``q`` (normal
        ``n``, seen from ``u (N,)`` away); NaN where there is none. Found by probes half the gap
        away on both sides (a sheet closer than the gap is nearer to one of them), aimed again
        where ``n`` is mostly the field's error (:meth:`_reaim`), then placed by a probe on the
        found side at the distance that first probe measured (near the other sheet, where a fitted
        field is more accurate than half the gap away)."""
        r = np.full(len(q), 0.5 * self.gap)
        side, along, _, own = self._probe(q, n, r, slack=1.5)
        redo = self._reaim(n, u, own)
        if len(redo):
            n = n.copy()
            n[redo] = own[redo]
            side[redo], along[redo], _, _ = self._probe(q[redo], n[redo], r[redo], slack=1.5)
        out = np.full(q.shape, np.nan)
        idx = np.nonzero(side != 0)[0]
        if len(idx):
            again, _, qp, _ = self._probe(q[idx], side[idx, None] * n[idx], along[idx], slack=1.0, sides=(1.0,))
            out[idx[again != 0]] = qp[again != 0]
        return out

    def _reaim(self, n: np.ndarray, u: np.ndarray, own: np.ndarray) -> np.ndarray:
        """Rows whose probes are aimed again along ``own``, the normal a first probe saw where it
        re-found the point's own sheet (NaN where none did): where the field's values are known
        only to within ``field.value_error`` (a field file's quantised values: 1/256 cell per
        component) and the point lies within MERGE_AIM_ERRORS of those errors of the sheet, its
        own direction ``n`` is off by up to ``value_error / u`` radians (8 degrees 0.05 cells out),
        and a probe aimed a degree or so off the normal meets the other sheet sideways of ``q``,
        which reads as no pair; half the gap out the error is ten times smaller. Only where the two
        differ by more than MERGE_AIM_COS[1] and describe the same sheet (cosine at least
        MERGE_AIM_COS[0], or ``u`` below MERGE_MIN_SEPARATION of the gap: a point on the sheet has
        no direction of its own). Fields in memory (``value_error`` 0) keep their aim."""
        err = float(getattr(self.field, "value_error", 0.0))
        if err <= 0:
            return np.zeros(0, dtype=np.int64)
        cos = (own * n).sum(1)  # NaN where no probe re-found the own sheet
        on_sheet = u < MERGE_MIN_SEPARATION * self.gap
        same = (cos >= MERGE_AIM_COS[0]) | (on_sheet & np.isfinite(cos))
        return np.nonzero((u < MERGE_AIM_ERRORS * err) & same & (cos < MERGE_AIM_COS[1]))[0]

    def _probe(
        self, q: np.ndarray, n: np.ndarray, r: np.ndarray, slack: float, sides: tuple = (1.0, -1.0)
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """Probes ``q + side r n`` (``r (N,)``): ``(side (N,), distance along n (N,), closest point
        (N, 3))`` of the nearest other sheet found within ``slack * gap`` (side 0: none), and
        ``(N, 3)`` the normal at ``q`` (oriented like ``n``) seen from the first probe that re-found
        ``q``'s own sheet: its closest point lies on ``q``'s tangent plane and it stands at least
        half of ``r`` off it (NaN where no probe did)."""
        best = np.full(len(q), np.inf)
        found = np.zeros(len(q))
        point = np.full(q.shape, np.nan)
        own = np.full(q.shape, np.nan)
        for side in sides:
            p32, qp = super().closest(q + side * r[:, None] * n)
            d = qp - q
            along = side * (d * n).sum(1)
            sideways = np.linalg.norm(d - (d * n).sum(1)[:, None] * n, axis=1)
            facing = (along >= MERGE_MIN_SEPARATION * self.gap) & (sideways <= MERGE_MAX_SLANT * along)
            ok = facing & (along <= slack * self.gap) & (along < best)
            best[ok], found[ok], point[ok] = along[ok], side, qp[ok]
            m, up = unit(p32 - qp)
            level = np.abs((d * m).sum(1)) < MERGE_MIN_SEPARATION * self.gap
            same = np.isnan(own[:, 0]) & level & (up >= 0.5 * r)
            own[same] = side * m[same]
        return found, best, point, own


def close_sheet_gate(field: Field) -> Callable[[np.ndarray], np.ndarray] | None:
    """For a band-grid CSP field: ``where(q (N, 3)) -> (N,) bool``, True where ``q`` lies in or next
    to (one fine cell) a close-sheet cell of the field's fine grid, the only places where two
    sheets can be closer than the extraction resolves. None for other fields (exact fields,
    networks: no cheap test), for band grids without close sheets and for those without a refined
    level (point-cloud fields: their point-set surface does not split sheets finer than its
    samples, and merging made a cloud of tee_sim's mesh worse)."""
    module = getattr(field, "module", None)
    grid = getattr(module, "encoder", None)
    if (
        not isinstance(grid, BandGrid)
        or not grid.refine
        or getattr(field, "kind", None) != "csp"
        or module.config.output != "displacement"
    ):
        return None
    with torch.no_grad():
        cells, _ = close_sheet_cells(grid, REFINE_NEAR, REFINE_GAP, REFINE_OFFSET)
    if len(cells) == 0:
        return None
    R = grid.res
    marked = cells_around(cells, R).cpu().numpy()

    def where(q: np.ndarray) -> np.ndarray:
        i0, _ = cell_coordinates(torch.as_tensor(q, dtype=torch.float32), R, grid.half)
        lin = ((i0[:, 0] * R + i0[:, 1]) * R + i0[:, 2]).cpu().numpy()
        pos = np.searchsorted(marked, lin).clip(max=len(marked) - 1)
        return marked[pos] == lin

    return where
