"""Inference: encode a sparse, unoriented point cloud once, then project many points near it
onto the predicted surface with the conditional CSP field (a dense, oriented-free point set with
normals from the CSP direction)."""

from __future__ import annotations

import time
from dataclasses import dataclass

import numpy as np
import torch

from deepcsp.fields.conditional import ConditionalField, ConditionalModel
from deepcsp.fields.query import _as_points


@dataclass(frozen=True)
class ReconstructConfig:
    """Inference settings (sizes in normalised units)."""

    n_input: int = 3000
    """Points fed to the encoder (a seeded subsample when the cloud has more; all when fewer)."""
    n_dense: int = 100_000
    """Projected output points."""
    spread: float = 0.02
    """Standard deviation of the Gaussian offsets of the starting points around input points."""
    iterations: int = 2
    """Projection steps ``x <- CSP(x)`` (one is exact for a perfect field)."""
    seed: int = 0
    device: str = "cpu"


@dataclass
class Reconstruction:
    """``field`` (the conditional field of the cloud), ``points : (N, 3)`` projected onto the
    predicted surface and ``normals : (N, 3)`` (unsigned, from the CSP direction), input units."""

    field: ConditionalField
    points: np.ndarray
    normals: np.ndarray
    seconds: float


def reconstruct_points(model: ConditionalModel, points, config: ReconstructConfig = ReconstructConfig()) -> Reconstruction:
    """Reconstruct the surface sampled by ``points : (N, 3)`` (input units)."""
    t0 = time.perf_counter()
    arr = _as_points(points).astype(np.float64)
    rng = np.random.default_rng(config.seed)
    if len(arr) > config.n_input:
        arr = arr[rng.choice(len(arr), config.n_input, replace=False)]
    fld = ConditionalField(model, arr, device=config.device)
    xin = fld.normalization.to_normalized(arr)
    start = xin[rng.integers(0, len(xin), config.n_dense)] + rng.normal(size=(config.n_dense, 3)) * config.spread
    x = torch.as_tensor(start, dtype=torch.float32, device=fld.device)
    prev = x
    for _ in range(max(1, config.iterations)):
        prev = x
        x = torch.cat([fld.closest_points_normalized(c) for c in torch.split(x, fld.chunk)])
    d = (prev - x).cpu().double().numpy()
    n = d / np.maximum(np.linalg.norm(d, axis=1, keepdims=True), 1e-12)
    pts = fld.normalization.to_input(x.cpu().double().numpy())
    return Reconstruction(field=fld, points=pts, normals=n, seconds=time.perf_counter() - t0)
