"""Sheets closer than the extraction grid resolves, merged into their mid-surface.

Pseudo-signs (CSP directions at grid corners) see two sheets less than about a cell apart only
where a corner happens to fall between them, so such a pair comes out shredded: patches of either
sheet, torn where the corners switch sides (two open rectangles a quarter of a field cell apart,
extracted on the automatic topology grid: 60 pieces for 2). :class:`MergedQueries` answers
closest-point queries with the closest point on the pair's mid-surface instead, so that the
extraction sees, and meshes, one clean sheet there.
"""

from __future__ import annotations

import numpy as np

from deepcsp.extract.grid import Queries, unit
from deepcsp.fields.query import Field

#: A probe's closest point belongs to another sheet when it lies at least this fraction of the
#: merge gap along the normal from the first one (the same sheet, re-found, lies ~0 away).
_MIN_SEPARATION = 0.05
#: ...and at most this far sideways, as a fraction of its distance along the normal (the other
#: sheet of a pair faces the first one; a sheet's own boundary or a crease lies sideways).
_MAX_SLANT = 0.5


class MergedQueries(Queries):
    """Closest points on a field's surface in which every two sheets closer than ``gap``
    (normalised units) are replaced by their mid-surface.

    For a point ``x`` with closest point ``q`` and direction ``n = (x - q) / |x - q|``, the field is
    asked at the probes ``q +- gap n / 2``; a probe whose closest point ``q'`` lies at most ``gap``
    from ``q`` along ``+-n`` (and not mainly sideways) has found the other sheet of a close pair,
    and ``x``'s closest point becomes ``(q + q') / 2``. ``n_merged`` counts the points so answered.
    Three field queries per point, four where a pair is found. Known weakness: on a sheet
    (``x = q``) the direction, and so the probes' aim, is arbitrary.
    """

    def __init__(self, field: Field, gap: float):
        super().__init__(field)
        self.gap = float(gap)
        self.n_merged = 0

    def closest(self, x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        x32, q = super().closest(x)
        if len(q) == 0 or self.gap <= 0:
            return x32, q
        n, _ = unit(x32 - q)
        other = self._other_sheet(q, n)
        found = np.isfinite(other[:, 0])
        self.n_merged += int(found.sum())
        q[found] = 0.5 * (q[found] + other[found])
        return x32, q

    def _other_sheet(self, q: np.ndarray, n: np.ndarray) -> np.ndarray:
        """``(N, 3)`` the closest point of the other sheet of a close pair through ``q`` (normal
        ``n``); NaN where there is none. Found by probes half the gap away on both sides (a sheet
        closer than the gap is nearer to one of them), then placed by a probe on the found side at
        the distance that first probe measured (near the other sheet, where a fitted field is more
        accurate than half the gap away)."""
        side, along, _ = self._probe(q, n, np.full(len(q), 0.5 * self.gap), slack=1.5)
        out = np.full(q.shape, np.nan)
        idx = np.nonzero(side != 0)[0]
        if len(idx):
            again, _, qp = self._probe(q[idx], side[idx, None] * n[idx], along[idx], slack=1.0, sides=(1.0,))
            out[idx[again != 0]] = qp[again != 0]
        return out

    def _probe(
        self, q: np.ndarray, n: np.ndarray, r: np.ndarray, slack: float, sides: tuple = (1.0, -1.0)
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Probes ``q + side r n`` (``r (N,)``): ``(side (N,), distance along n (N,), closest point
        (N, 3))`` of the nearest other sheet found within ``slack * gap`` (side 0: none)."""
        best = np.full(len(q), np.inf)
        found = np.zeros(len(q))
        point = np.full(q.shape, np.nan)
        for side in sides:
            _, qp = super().closest(q + side * r[:, None] * n)
            d = qp - q
            along = side * (d * n).sum(1)
            sideways = np.linalg.norm(d - (d * n).sum(1)[:, None] * n, axis=1)
            facing = (along >= _MIN_SEPARATION * self.gap) & (sideways <= _MAX_SLANT * along)
            ok = facing & (along <= slack * self.gap) & (along < best)
            best[ok], found[ok], point[ok] = along[ok], side, qp[ok]
        return found, best, point
