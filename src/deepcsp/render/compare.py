"""Agreement of two renders of the same camera (e.g. a traced field against the exact ray cast)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class RenderAgreement:
    """``iou``: ``|hit_a & hit_b| / |hit_a | hit_b|`` of the hit masks (0 when neither hits);
    ``median_depth_error``: ``median |depth_a - depth_b|`` over pixels both hit, normalised units
    along the unit ray (NaN when none)."""

    iou: float
    median_depth_error: float


def compare_renders(result, reference) -> RenderAgreement:
    """IoU of the hit masks and median depth difference of two
    :class:`~deepcsp.render.render.RenderResult` s of the same camera (H x W pixels each)."""
    if result.hit.shape != reference.hit.shape:
        raise ValueError(f"renders differ in size: {result.hit.shape} and {reference.hit.shape}")
    union = (result.hit | reference.hit).sum()
    both = result.hit & reference.hit
    iou = float(both.sum() / max(union, 1))
    depth = float(np.median(np.abs(result.depth[both] - reference.depth[both]))) if both.any() else float("nan")
    return RenderAgreement(iou=iou, median_depth_error=depth)
