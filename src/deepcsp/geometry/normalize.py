"""An invertible similarity that maps an input into the normalised cube."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from deepcsp.constants import FILL, HALF_SIDE


@dataclass(frozen=True)
class Normalization:
    """``x_norm = (x - center) * scale``; the input's longest bounding-box side becomes
    ``2 * HALF_SIDE * FILL`` and its centre the origin.

    Attributes
    ----------
    center : (3,) float
        Bounding-box centre of the input, in input units.
    scale : float
        Multiplier from input units to normalised units.
    """

    center: tuple[float, float, float]
    scale: float

    @classmethod
    def from_points(cls, points: np.ndarray) -> "Normalization":
        """Fit to ``points : (N, 3)`` so they fill ``FILL`` of the cube along the longest axis."""
        lo, hi = points.min(axis=0), points.max(axis=0)
        extent = float((hi - lo).max())
        if not np.isfinite(extent) or extent <= 0.0:
            raise ValueError(f"cannot normalise points with extent {extent!r}")
        center = (lo + hi) / 2.0
        return cls(center=tuple(float(c) for c in center), scale=2.0 * HALF_SIDE * FILL / extent)

    @classmethod
    def identity(cls) -> "Normalization":
        return cls(center=(0.0, 0.0, 0.0), scale=1.0)

    def to_normalized(self, points):
        """Map ``points : (..., 3)`` (NumPy or torch) from input to normalised coordinates."""
        return (points - _like(self.center, points)) * self.scale

    def to_input(self, points):
        """Inverse of :meth:`to_normalized`."""
        return points / self.scale + _like(self.center, points)

    def distance_to_input(self, distances):
        """Scale distances from normalised to input units."""
        return distances / self.scale

    def to_dict(self) -> dict:
        return {"center": list(self.center), "scale": self.scale}

    @classmethod
    def from_dict(cls, d: dict) -> "Normalization":
        return cls(center=tuple(float(c) for c in d["center"]), scale=float(d["scale"]))


def _like(values, ref):
    if isinstance(ref, np.ndarray):
        return np.asarray(values, dtype=ref.dtype)
    import torch

    return torch.as_tensor(values, dtype=ref.dtype, device=ref.device)
