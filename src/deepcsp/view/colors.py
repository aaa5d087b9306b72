"""Colour maps for the viewer: scalars to RGB through matplotlib's maps, normals to RGB, colour-bar
images, robust ranges, and the sRGB to linear conversion that glTF vertex colours expect."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

#: Map per colour mode (matplotlib names): distances are sequential, curvature diverging around 0.
ERROR_CMAP = "viridis"
CURVATURE_CMAP = "coolwarm"
SLICE_CMAP = "magma"


@dataclass
class ColorRange:
    """Values ``vmin .. vmax`` spread over the colour map; ``label`` names the quantity and unit."""

    vmin: float
    vmax: float
    cmap: str
    label: str


def _cmap(name: str):
    import matplotlib

    return matplotlib.colormaps[name]


def scalar_colors(values: np.ndarray, vmin: float, vmax: float, cmap: str) -> np.ndarray:
    """``(N, 3)`` uint8 sRGB colours of ``values : (N,)`` through ``cmap``, clamped to ``[vmin, vmax]``
    (NaN values are grey)."""
    v = np.asarray(values, np.float64).reshape(-1)
    if not (np.isfinite(vmin) and np.isfinite(vmax)):
        raise ValueError(f"colour range must be finite, got [{vmin}, {vmax}]")
    span = vmax - vmin if vmax > vmin else 1.0
    t = np.clip((v - vmin) / span, 0.0, 1.0)
    rgb = _cmap(cmap)(np.nan_to_num(t, nan=0.0))[:, :3]
    out = np.round(rgb * 255.0).astype(np.uint8)
    out[~np.isfinite(v)] = 128
    return out


def normal_colors(normals: np.ndarray) -> np.ndarray:
    """``(N, 3)`` uint8 colours ``(n + 1) / 2`` of unit ``normals : (N, 3)`` (zero normals are grey)."""
    n = np.nan_to_num(np.asarray(normals, np.float64).reshape(-1, 3))
    return np.round(np.clip((n + 1.0) * 0.5, 0.0, 1.0) * 255.0).astype(np.uint8)


def robust_range(values: np.ndarray, symmetric: bool = False, percentile: float = 98.0) -> tuple[float, float]:
    """``(lo, hi)`` covering ``values`` up to ``percentile`` (ignoring NaN): ``(0, p)`` of the values
    for distances, ``(-p, p)`` of ``|values|`` when ``symmetric``; never an empty range."""
    v = np.asarray(values, np.float64).reshape(-1)
    v = v[np.isfinite(v)]
    if v.size == 0:
        return (-1.0, 1.0) if symmetric else (0.0, 1.0)
    if symmetric:
        hi = float(np.percentile(np.abs(v), percentile))
        hi = hi if hi > 0 else 1.0
        return -hi, hi
    hi = float(np.percentile(v, percentile))
    return 0.0, (hi if hi > 0 else max(float(v.max()), 1e-12))


def colorbar_image(cmap: str, width: int = 256, height: int = 16) -> np.ndarray:
    """``(height, width, 3)`` uint8 horizontal colour bar of ``cmap``, low values on the left."""
    ramp = np.linspace(0.0, 1.0, width)
    row = scalar_colors(ramp, 0.0, 1.0, cmap)
    return np.repeat(row[None], height, axis=0)


def srgb_to_linear(colors: np.ndarray) -> np.ndarray:
    """uint8 sRGB colours to uint8 linear ones (glTF ``COLOR_0`` is linear; three.js converts it
    back to sRGB for display, so the shown colour is the one asked for)."""
    c = np.asarray(colors, np.float64) / 255.0
    lin = np.where(c <= 0.04045, c / 12.92, ((c + 0.055) / 1.055) ** 2.4)
    return np.round(lin * 255.0).astype(np.uint8)
