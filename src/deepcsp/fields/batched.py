"""Chunked queries of a field in its normalised coordinates: the one place queries are split into
batches of bounded size, and the one check of query points at the public entry points.

Every field query (:class:`~deepcsp.fields.query.Field`, normals and curvatures, sphere tracing,
reconstruction, evaluation) batches through :func:`normalized_batches` (input points, NumPy) or
:func:`map_rows` (normalised points, torch), with :data:`QUERY_CHUNK` points per batch by default.
"""

from __future__ import annotations

from typing import Callable, Iterator

import numpy as np
import torch

QUERY_CHUNK = 1 << 16
"""Points per batch of a field query. Batches of 64k points keep the per-point temporaries in
cache (faster than one pass over a million points on CPU) and bound memory on any device."""


def as_points(points, name: str = "points") -> np.ndarray:
    """``points`` (array-like or tensor) as a finite numeric ``(N, 3)`` NumPy array; ValueError
    quoting what arrived otherwise."""
    if isinstance(points, torch.Tensor):
        points = points.detach().cpu().numpy()
    arr = np.asarray(points)
    if arr.ndim != 2 or arr.shape[-1] != 3:
        raise ValueError(f"{name} must have shape (N, 3), got {arr.shape}")
    if arr.dtype.kind not in "fiu":
        raise ValueError(f"{name} must be numeric, got dtype {arr.dtype}")
    if not np.isfinite(arr).all():
        raise ValueError(f"{name} contains NaN or inf in {int((~np.isfinite(arr)).any(1).sum())} rows")
    return arr


def normalized_batches(
    field, points: np.ndarray, chunk: int = QUERY_CHUNK, dtype: torch.dtype = torch.float32
) -> Iterator[torch.Tensor]:
    """Consecutive batches of ``points : (N, 3)`` (input coordinates) mapped to ``field``'s
    normalised coordinates (in float64, then cast): ``(n, 3)`` tensors of ``dtype`` on
    ``field.device``, ``n <= chunk``; nothing for N = 0."""
    for i in range(0, len(points), chunk):
        xn = field.normalization.to_normalized(np.asarray(points[i : i + chunk], dtype=np.float64))
        yield torch.as_tensor(xn, dtype=dtype, device=field.device)


def map_rows(fn: Callable[[torch.Tensor], torch.Tensor], x: torch.Tensor, chunk: int = QUERY_CHUNK) -> torch.Tensor:
    """``fn`` (a row-by-row map, e.g. a field's ``closest_points_normalized``) applied to
    ``x : (N, ...)`` in batches of at most ``chunk`` rows, concatenated; one call when N <= chunk."""
    if len(x) <= chunk:
        return fn(x)
    return torch.cat([fn(x[i : i + chunk]) for i in range(0, len(x), chunk)])
