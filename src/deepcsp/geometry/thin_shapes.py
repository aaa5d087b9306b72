"""Synthetic thin parts and close sheets (for tests and benchmarks): closed plates, parallel open
sheets and a folded sheet, sized in cells of a grid.

Every shape's longest side is 1 (input units), so after :class:`~deepcsp.geometry.normalize.Normalization`
(longest side ``2 * HALF_SIDE * FILL`` = 0.8) one cell of a ``resolution``-vertex grid over the
normalised cube is :func:`cell_size` input units. Shapes are tilted (``tilt`` degrees about two
axes) so that their faces do not line up with grid planes.
"""

from __future__ import annotations

import numpy as np

from deepcsp.constants import FILL, HALF_SIDE
from deepcsp.geometry.analytic import box_mesh


def cell_size(resolution: int = 192) -> float:
    """Input-unit size of one cell of a ``resolution``-vertex grid over the normalised cube, for a
    shape whose longest side is 1."""
    return 2.0 * HALF_SIDE / (resolution - 1) / (2.0 * HALF_SIDE * FILL)


def _tilt(v: np.ndarray, degrees: float) -> np.ndarray:
    a, b = np.radians(degrees), np.radians(0.6 * degrees)
    rx = np.array([[1, 0, 0], [0, np.cos(a), -np.sin(a)], [0, np.sin(a), np.cos(a)]])
    ry = np.array([[np.cos(b), 0, np.sin(b)], [0, 1, 0], [-np.sin(b), 0, np.cos(b)]])
    return v @ (ry @ rx).T


def _grid(nu: int, nv: int) -> np.ndarray:
    """Faces ``(2 (nu-1)(nv-1), 3)`` of an ``nu x nv`` vertex grid (row-major), wound towards +z."""
    i, j = np.meshgrid(np.arange(nu - 1), np.arange(nv - 1), indexing="ij")
    a = (i * nv + j).ravel()
    b, c, d = a + nv, a + nv + 1, a + 1
    return np.concatenate([np.stack([a, b, c], 1), np.stack([a, c, d], 1)])


def sheet(size: tuple[float, float] = (1.0, 0.6), z: float = 0.0, n: int = 21) -> tuple[np.ndarray, np.ndarray]:
    """An open flat rectangle ``size`` at height ``z`` (``n`` vertices along its long side)."""
    nu, nv = n, max(2, int(round(n * size[1] / size[0])))
    u, w = np.meshgrid(
        np.linspace(-size[0] / 2, size[0] / 2, nu), np.linspace(-size[1] / 2, size[1] / 2, nv), indexing="ij"
    )
    v = np.stack([u.ravel(), w.ravel(), np.full(u.size, z)], 1)
    return v, _grid(nu, nv)


def _unit_extent(make, size: tuple[float, float], tilt: float) -> tuple[np.ndarray, np.ndarray]:
    """``make(size)`` tilted, with ``size`` shrunk so that the tilted shape's longest bounding-box
    side is 1 (thicknesses and gaps stay as given)."""
    v, f = make(size)
    ext = float(np.ptp(_tilt(v, tilt), 0).max())
    v, f = make((size[0] / ext, size[1] / ext))
    v = _tilt(v, tilt)
    return v * (1.0 / float(np.ptp(v, 0).max())) if abs(np.ptp(v, 0).max() - 1.0) > 1e-3 else v, f


def plate(thickness: float, size: tuple[float, float] = (1.0, 0.6), tilt: float = 7.0) -> tuple[np.ndarray, np.ndarray]:
    """A closed box ``size[0] x size[1] x thickness`` (outward winding), tilted; longest side 1."""
    return _unit_extent(lambda s: _box(s, thickness), size, tilt)


def _box(size: tuple[float, float], thickness: float) -> tuple[np.ndarray, np.ndarray]:
    return box_mesh((size[0], size[1], thickness))


def parallel_sheets(
    gap: float, size: tuple[float, float] = (1.0, 0.6), tilt: float = 7.0
) -> tuple[np.ndarray, np.ndarray]:
    """Two open rectangles ``size`` a distance ``gap`` apart, tilted; longest side 1."""

    def make(s):
        va, fa = sheet(s, -gap / 2)
        vb, fb = sheet(s, gap / 2)
        return np.concatenate([va, vb]), np.concatenate([fa, fb + len(va)])

    return _unit_extent(make, size, tilt)


def folded_sheet(
    gap: float, length: float = 1.0, width: float = 0.6, tilt: float = 7.0, n_bend: int = 24
) -> tuple[np.ndarray, np.ndarray]:
    """An open sheet folded back on itself: two flat parts ``gap`` apart (the longer reaching
    ``length``, the other 0.7 of it) joined by a half cylinder of diameter ``gap``; tilted; longest side 1."""
    return _unit_extent(lambda s: _fold(gap, s[0], s[1], n_bend), (length, width), tilt)


def _fold(gap: float, length: float, width: float, n_bend: int) -> tuple[np.ndarray, np.ndarray]:
    r = gap / 2
    lo, hi = -length / 2 + r, length / 2
    s_top = np.linspace(hi, lo, 21)
    phi = np.linspace(0.5 * np.pi, 1.5 * np.pi, n_bend)[1:-1]
    s_bot = np.linspace(lo, lo + 0.7 * (hi - lo), 15)
    xs = np.concatenate([s_top, lo + r * np.cos(phi), s_bot])
    zs = np.concatenate([np.full(len(s_top), r), r * np.sin(phi), np.full(len(s_bot), -r)])
    nv = 13
    w = np.linspace(-width / 2, width / 2, nv)
    v = np.stack([np.repeat(xs, nv), np.tile(w, len(xs)), np.repeat(zs, nv)], 1)
    return v, _grid(len(xs), nv)


def windowed_sheet(
    strip: float, window: float = 0.15, size: tuple[float, float] = (1.0, 0.6), tilt: float = 7.0
) -> tuple[np.ndarray, np.ndarray]:
    """An open rectangle with two round holes (``window`` across) side by side, ``strip`` apart where
    they come closest (like an airplane's cabin windows), tilted; longest side 1. The holes are cut
    from a grid of faces and the rim vertices inside a circle pushed out onto it."""
    return _unit_extent(lambda s: _windows(s, strip, window), size, tilt)


def _windows(size: tuple[float, float], strip: float, window: float, n: int = 241) -> tuple[np.ndarray, np.ndarray]:
    v, f = sheet(size, n=n)
    r, x = window / 2, (strip + window) / 2  # the holes' radius and centres (+-x, 0)
    step = size[0] / (n - 1)
    for cx in (-x, x):
        off = v[:, :2] - [cx, 0.0]
        d = np.hypot(off[:, 0], off[:, 1])
        f = f[(d[f] >= r - 0.5 * step).sum(1) == 3]  # faces with a corner well inside the hole go
        rim = np.isin(np.arange(len(v)), f) & (d < r)  # pushed out onto the circle
        v[rim, :2] = [cx, 0.0] + off[rim] * (r / np.maximum(d[rim], 1e-12))[:, None]
    return v, f
