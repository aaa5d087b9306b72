"""Sampling grid edges near a sheet: where an edge straddles a sheet, and the tangent planes there.

Both extraction paths use it: the pseudo-sign path to tell an edge crossing one sheet from one
passing beside a sheet or between two (the sheet rule, and every flipped edge when the distances
are noisy), and both paths to place vertices by averaging tangent planes when one distance query
is too noisy to snap with.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np

from deepcsp.extract.grid import Queries, unit


@dataclass
class EdgeSamples:
    """Edges sampled by :func:`straddles`."""

    straddle: np.ndarray
    """(M, k-1) bool: consecutive samples that straddle a sheet."""
    tcross: np.ndarray
    """(M, k-1): crossing parameter along the edge of each pair (between its two samples)."""
    feet: np.ndarray | None = None
    """``planes`` only: (M, k, 3) the samples' debiased closest points (their tangent planes' feet)."""
    normals: np.ndarray | None = None
    """``planes`` only: (M, k, 3) the samples' directions, turned to the edge's reference side."""
    segment: np.ndarray | None = None
    """``planes`` only: (M, k) number of side changes before each sample."""
    window: int = 0
    """``planes`` only: samples per side of a change that judge it."""

    def planes(self, rows: np.ndarray, j: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Tangent planes that judged the straddles ``(rows, j)``: ``(feet (R, 2w, 3), normals
        (R, 2w, 3), used (R, 2w) bool)``, the ``w`` samples either side of the change that lie in
        the segments next to it."""
        k = self.feet.shape[1]
        offs = np.arange(-self.window + 1, self.window + 1)
        idx = j[:, None] + offs[None, :]
        ok = (idx >= 0) & (idx < k)
        idc = idx.clip(0, k - 1)
        anchor = np.where(offs <= 0, j[:, None], j[:, None] + 1)
        used = ok & (self.segment[rows[:, None], idc] == self.segment[rows[:, None], anchor])
        return self.feet[rows[:, None], idc], self.normals[rows[:, None], idc], used


def straddles(
    fq: Queries,
    pa: np.ndarray,
    pb: np.ndarray,
    na: np.ndarray,
    nb: np.ndarray,
    ua: np.ndarray,
    ub: np.ndarray,
    ref: np.ndarray,
    floor: np.ndarray,
    bias: float,
    noise: float,
    h: float,
    samples: int,
    slack: float,
    planes: bool = False,
) -> EdgeSamples:
    """Sample the edges ``pa -> pb (M, 3)`` (corner directions ``na, nb`` and distances ``ua, ub``
    known) at ``samples`` points and find where they straddle a sheet: two consecutive samples on
    opposite sides of the reference direction ``ref (M, 3)`` (the sheet's normal; directions of a
    fitted field may turn gradually near the surface rather than flip) whose debiased distances
    add up to no more than their spacing plus twice the field's local error ``floor (M,)`` (the
    distance the field reports at its own closest point near the edge: 0 for an exact field; a
    fitted field's distances near the surface may stay a tenth of a cell up where sheets are close),
    capped at ``slack`` cells, and 4 ``noise``. Between two sheets, across the medial axis, the
    side changes too, but the distances add up to the gap.

    ``planes`` (noisy distances): each side of a side change is judged by the tangent planes of
    the samples next to it (up to a quarter edge, not past another side change), evaluated at the
    change: the two sides' mean heights there agree for a sheet crossing and differ by the gap
    across a medial axis (or twice the distance past an open boundary). Averaging ``w`` samples a
    side divides the noise by ``sqrt(w)``; the allowance is 3 standard deviations of the
    difference plus the ``floor`` term.

    Returns the samples (:class:`EdgeSamples`)."""
    s = _sample_edges(fq, pa, pb, na, nb, ua, ub, ref, bias, samples)
    if not planes:
        return _distance_straddles(s, floor, bias, noise, h, slack)
    judged = _plane_straddles(s, pb - pa, floor, bias, noise, h, slack)
    return replace(judged, feet=_plane_feet(s, pa, pb, na, nb, ua, ub, bias))


@dataclass
class _Samples:
    """The field at ``k`` evenly spaced samples along ``M`` edges, both corners included."""

    ts: np.ndarray
    """(k,) the samples' parameters along the edge."""
    inner: np.ndarray
    """(M, k-2, 3) the inner samples as the field saw them (float32 rounding)."""
    directions: np.ndarray
    """(M, k, 3) the samples' directions ``n``."""
    distances: np.ndarray
    """(M, k) the samples' distances ``u``."""
    heights: np.ndarray
    """(M, k) debiased distances ``u - bias``."""
    side: np.ndarray
    """(M, k) bool: the direction lies on ``ref``'s side."""
    change: np.ndarray
    """(M, k-1) bool: consecutive samples on opposite sides."""


def _sample_edges(
    fq: Queries,
    pa: np.ndarray,
    pb: np.ndarray,
    na: np.ndarray,
    nb: np.ndarray,
    ua: np.ndarray,
    ub: np.ndarray,
    ref: np.ndarray,
    bias: float,
    samples: int,
) -> _Samples:
    """The field at ``max(samples, 3)`` points along each edge (the corners' values as given),
    and the side of ``ref`` each sample's direction lies on."""
    k = max(int(samples), 3)
    ts = np.linspace(0.0, 1.0, k)
    m = len(pa)
    xs = pa[:, None, :] + ts[None, 1:-1, None] * (pb - pa)[:, None, :]
    x32, qs = fq.closest(xs.reshape(-1, 3))
    ns, us = unit(x32 - qs)
    ns = np.concatenate([na[:, None], ns.reshape(m, k - 2, 3), nb[:, None]], 1)
    us = np.concatenate([ua[:, None], us.reshape(m, k - 2), ub[:, None]], 1)
    side = (ns * ref[:, None, :]).sum(-1) > 0.0
    return _Samples(ts, x32.reshape(m, k - 2, 3), ns, us, us - bias, side, side[:, :-1] != side[:, 1:])


def _distance_straddles(
    s: _Samples, floor: np.ndarray, bias: float, noise: float, h: float, slack: float
) -> EdgeSamples:
    """Straddles judged by the two samples' debiased distances; crossings interpolated between them."""
    spacing = h / (len(s.ts) - 1)
    hi = s.heights
    extra = np.minimum(2.0 * (floor - bias).clip(0.0), slack * h)
    total = hi[:, :-1] + hi[:, 1:]
    # allowance for the field's error at the surface
    allowed = 1.05 * spacing + 4.0 * noise + extra
    straddle = s.change & (total <= allowed[:, None])
    h0, h1 = hi[:, :-1].clip(0.0), hi[:, 1:].clip(0.0)
    f = np.where(h0 + h1 > 1e-15, h0 / np.maximum(h0 + h1, 1e-15), 0.5)
    return EdgeSamples(straddle, s.ts[None, :-1] + f * (s.ts[1] - s.ts[0]))


@dataclass
class _SidePlanes:
    """Sums over the tangent planes on one side of each sample pair (the pair's own segment only)."""

    count: np.ndarray
    """(M, k-1) planes summed."""
    height: np.ndarray
    """(M, k-1) sum of their heights at the pair's midpoint."""
    rate: np.ndarray
    """(M, k-1) sum of their heights' rates along the edge."""


def _side_planes(
    ts: np.ndarray, segment: np.ndarray, height: np.ndarray, rate: np.ndarray, w: int, right: bool
) -> _SidePlanes:
    """The ``w`` planes left of each pair (its first sample and before) or right of it (its second and after)."""
    m, k = height.shape
    tstar = 0.5 * (ts[:-1] + ts[1:])
    count, at, slope = np.zeros((m, k - 1)), np.zeros((m, k - 1)), np.zeros((m, k - 1))
    anchor = np.arange(k - 1) + (1 if right else 0)
    for o in range(1, w + 1) if right else range(0, -w, -1):
        idx = np.arange(k - 1) + o
        ok = (idx >= 0) & (idx < k)
        idc = idx.clip(0, k - 1)
        same = ok[None, :] & (segment[:, idc] == segment[:, anchor])
        count += same
        at += same * (height[:, idc] + (tstar[None, :] - ts[idc][None, :]) * rate[:, idc])
        slope += same * rate[:, idc]
    return _SidePlanes(count, at, slope)


def _plane_straddles(
    s: _Samples,
    edge: np.ndarray,
    floor: np.ndarray,
    bias: float,
    noise: float,
    h: float,
    slack: float,
) -> EdgeSamples:
    """Straddles judged by the tangent planes either side of a side change (noisy distances);
    crossings where the mean of both sides' planes is zero. ``edge (M, 3)``: ``pb - pa``; no feet yet."""
    ts, hi, ns = s.ts, s.heights, s.directions
    m, k = hi.shape
    # a field whose distances do not reach zero at its surface (a floor: smoothed fields, e.g. a
    # UDF's gradient-based closest points) lifts both sides' heights by it: allow twice the typical
    # smallest distance along these edges (a median over all of them: one edge's own smallest
    # distance would also excuse an edge passing beside a sheet)
    extra = np.minimum(2.0 * np.maximum(floor - bias, float(np.median(hi.min(1))) - 0.25 * noise).clip(0.0), slack * h)
    # heights over the sheet, positive on ref's side, and their rate along the edge (the sample's
    # tangent plane: d(height)/dt = (pb - pa) . N)
    sgn = np.where(s.side, 1.0, -1.0)
    height = sgn * hi
    rate = sgn * (ns * edge[:, None, :]).sum(-1)
    seg = np.concatenate([np.zeros((m, 1), dtype=np.int64), np.cumsum(s.change, 1)], 1)
    w = min(4, (k - 1) // 2)
    left, right = (_side_planes(ts, seg, height, rate, w, r) for r in (False, True))
    gap = left.height / np.maximum(left.count, 1) - right.height / np.maximum(right.count, 1)
    sd = noise * np.sqrt(1.0 / np.maximum(left.count, 1) + 1.0 / np.maximum(right.count, 1))
    allowed = 3.0 * sd + h / (k - 1) + extra[:, None]
    straddle = s.change & (np.abs(gap) <= allowed)
    # crossing: where the mean of both sides' planes is zero, kept between the two samples
    a0, r0 = left.height + right.height, left.rate + right.rate
    dt = np.where(np.abs(r0) > 1e-15, -a0 / np.where(np.abs(r0) > 1e-15, r0, 1.0), 0.0)
    tc = (0.5 * (ts[:-1] + ts[1:])[None, :] + dt).clip(ts[None, :-1], ts[None, 1:])
    return EdgeSamples(straddle, tc, None, sgn[..., None] * ns, seg, w)


def _plane_feet(
    s: _Samples,
    pa: np.ndarray,
    pb: np.ndarray,
    na: np.ndarray,
    nb: np.ndarray,
    ua: np.ndarray,
    ub: np.ndarray,
    bias: float,
) -> np.ndarray:
    """(M, k, 3) the samples' debiased closest points (their tangent planes' feet)."""
    ns, us = s.directions, s.distances
    m, k = us.shape
    feet = (s.inner - us.reshape(m, k, 1)[:, 1:-1] * ns[:, 1:-1]) + bias * ns[:, 1:-1]
    return np.concatenate(
        [
            pa[:, None] - (ua - bias)[:, None, None] * na[:, None],
            feet,
            pb[:, None] - (ub - bias)[:, None, None] * nb[:, None],
        ],
        1,
    )


def flat_planes(
    smp: EdgeSamples, rows: np.ndarray, j: np.ndarray, owner: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The planes that judged the straddles ``(rows, j)`` of ``smp``, flattened, each tagged with
    ``owner`` (the id of the edge it belongs to)."""
    feet, nrm, used = smp.planes(rows, j)
    return feet[used], nrm[used], np.repeat(owner, used.shape[1])[used.reshape(-1)]


def no_planes() -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """No planes: ``(feet (0, 3), normals (0, 3), owner (0,))``."""
    return np.zeros((0, 3)), np.zeros((0, 3)), np.zeros(0, dtype=np.int64)
