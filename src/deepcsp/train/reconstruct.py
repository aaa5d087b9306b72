"""Inference: encode a sparse, unoriented point cloud once, then project many points near it
onto the predicted surface with the conditional CSP field (a dense, oriented-free point set with
normals from the CSP direction)."""

from __future__ import annotations

import time
from dataclasses import dataclass

import numpy as np
import torch

from deepcsp.fields.batched import as_points, map_rows
from deepcsp.fields.conditional import ConditionalField, ConditionalModel


@dataclass(frozen=True)
class ReconstructConfig:
    """Inference settings (sizes in normalised units)."""

    n_input: int = 3000
    """Points fed to the encoder (a seeded subsample when the cloud has more; all when fewer)."""
    n_dense: int = 100_000
    """Projected output points (0: only build the field, e.g. for mesh extraction)."""
    spread: float = 0.02
    """Standard deviation of the Gaussian offsets of the starting points around input points."""
    iterations: int = 2
    """Projection steps ``x <- CSP(x)`` (one is exact for a perfect field)."""
    max_residual: float = 0.0
    """Keep projected points whose last step moved them at most this far (a perfect field's
    surface points are fixed points of ``CSP``); 0 keeps all. At least half are always kept."""
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


def reconstruct_points(
    model: ConditionalModel, points, config: ReconstructConfig = ReconstructConfig()
) -> Reconstruction:
    """Reconstruct the surface sampled by ``points : (N, 3)`` (input units)."""
    t0 = time.perf_counter()
    arr = as_points(points).astype(np.float64)
    rng = np.random.default_rng(config.seed)
    if len(arr) > config.n_input:
        arr = arr[rng.choice(len(arr), config.n_input, replace=False)]
    fld = ConditionalField(model, arr, device=config.device)
    if config.n_dense <= 0:
        return Reconstruction(
            field=fld, points=np.zeros((0, 3)), normals=np.zeros((0, 3)), seconds=time.perf_counter() - t0
        )
    xin = fld.normalization.to_normalized(arr)
    start = xin[rng.integers(0, len(xin), config.n_dense)] + rng.normal(size=(config.n_dense, 3)) * config.spread
    x = torch.as_tensor(start, dtype=torch.float32, device=fld.device)
    normals = None
    residual = None
    for _ in range(max(1, config.iterations)):
        prev = x
        x = map_rows(fld.closest_points_normalized, x, fld.chunk)
        step = (prev - x).cpu().double().numpy()
        residual = np.linalg.norm(step, axis=1)
        if normals is None:  # the first, long step gives the best direction
            normals = step / np.maximum(residual[:, None], 1e-12)
    xn = x.cpu().double().numpy()
    if config.max_residual > 0 and config.iterations > 1:
        keep = residual <= max(config.max_residual, float(np.median(residual)))
        xn, normals = xn[keep], normals[keep]
    n = normals
    pts = fld.normalization.to_input(xn)
    return Reconstruction(field=fld, points=pts, normals=n, seconds=time.perf_counter() - t0)
