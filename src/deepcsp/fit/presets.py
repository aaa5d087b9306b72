"""Named configurations: the deepcsp default, the official CSP recipe and the UDF baseline."""

from __future__ import annotations

import dataclasses

from deepcsp.fields.modules import FieldConfig
from deepcsp.fit.config import FitConfig


def paper_recipe(base: FitConfig | None = None) -> FitConfig:
    """The official CSP single-shape setup: ReLU MLP 3-120-512-1024-2048-2048-1024-512-256-128-3,
    Xavier init, MSE on the closest point (predicted directly), Adam lr 1e-4, batch 1024, no decay.
    Ground truth = nearest of 250k surface samples (pass ``ground_truth='surface_samples'``)."""
    base = base or FitConfig()
    return dataclasses.replace(
        base,
        field=FieldConfig(kind="csp", encoding="paper", output="point"),
        lr=1e-4,
        lr_decay=1.0,
        batch_size=1024,
        max_steps=1_000_000,
    )


def udf_baseline(base: FitConfig | None = None) -> FitConfig:
    """NDF-style UDF with the same encoding, budget and samples as ``base``."""
    base = base or FitConfig()
    return dataclasses.replace(base, field=dataclasses.replace(base.field, kind="udf"))


def apply_preset(config: FitConfig, preset: str) -> FitConfig:
    if preset == "default":
        return config
    if preset == "paper":
        return paper_recipe(config)
    if preset == "udf":
        return udf_baseline(config)
    raise ValueError(f"unknown preset {preset!r}")
