"""Losses of one-shape fitting, as plain functions of a batch."""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from torch.nn import functional as F


@dataclass
class BatchLoss:
    """``loss`` to minimise and the batch's mean error as a fraction of the bbox diagonal."""

    loss: torch.Tensor
    error: float


def csp_loss(
    module,
    x: torch.Tensor,
    target: torch.Tensor,
    diag: float,
    squared: bool = False,
    idempotence: float = 0.0,
    orthogonality: float = 0.0,
) -> BatchLoss:
    """Closest-point loss for ``x, target : (B, 3)``: mean Euclidean error (or mean squared error,
    the paper recipe's MSE, when ``squared``), plus optional terms that use CSP's structure:
    ``idempotence * |CSP(CSP(x)) - CSP(x)|`` (a closest point is its own closest point) and
    ``orthogonality * |tangential part of (x - CSP(x))|`` w.r.t. the true normal ``x - target``."""
    pred = module(x)
    e = (pred - target).norm(dim=1)
    loss = ((pred - target) ** 2).sum(1).mean() if squared else e.mean()
    if idempotence:
        loss = loss + idempotence * (module(pred) - pred).norm(dim=1).mean()
    if orthogonality:
        n = F.normalize(x - target, dim=1)
        r = x - pred
        loss = loss + orthogonality * (r - (r * n).sum(1, keepdim=True) * n).norm(dim=1).mean()
    return BatchLoss(loss, float(e.detach().mean()) / diag)


def udf_loss(module, x: torch.Tensor, distances: torch.Tensor, diag: float) -> BatchLoss:
    """L1 loss of the predicted unsigned distance against exact ``distances : (B,)``."""
    err = (module.distance(x) - distances).abs()
    return BatchLoss(err.mean(), float(err.detach().mean()) / diag)


def cosine_scale(fraction: float, final: float) -> float:
    """Learning-rate multiplier at ``fraction`` in [0, 1] of the run: cosine from 1 to ``final``."""
    return final + (1 - final) * 0.5 * (1 + math.cos(math.pi * min(max(fraction, 0.0), 1.0)))
