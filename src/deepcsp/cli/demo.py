"""``deepcsp demo``: fit the bundled default shape, render, extract and report in one folder."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Annotated

import tyro


@dataclass
class DemoCommand:
    """Fit the bundled T-shirt (or another shape), then write the field, metrics, renders, the
    extracted mesh and an index.html report into one folder."""

    output: Annotated[Path, tyro.conf.arg(aliases=["-o"])] = Path("demo_out")
    """Output folder."""
    shape: Path | None = None
    """Shape to use instead of the bundled tee_sim.obj."""
    time_budget: float = 45.0
    """Seconds for the fit."""
    field_resolution: int = 192
    """Fine band-grid vertices per axis."""
    mesh_resolution: int = 192
    """Extraction grid cells per axis."""
    image_size: int = 512
    """Render width and height in pixels."""

    def run(self) -> int:
        from deepcsp.cli.demo_run import run_demo

        return run_demo(self.output, self.shape, self.time_budget, field_resolution=self.field_resolution, resolution=self.mesh_resolution, image_size=self.image_size)
