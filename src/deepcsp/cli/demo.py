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
    scan_resolution: int = 160
    """Pixels per side of each of the four simulated depth views whose points the point-cloud
    section reconstructs (160: about 20,000 points of the bundled shape)."""

    def check(self) -> None:
        """Refuse bad options before any work."""
        from deepcsp._validate import finite_float, input_file, integer, output_dir
        from deepcsp.constants import MAX_BAND_RESOLUTION, MAX_RESOLUTION, MAX_SIDE
        from deepcsp.io.surface import CLOUD_SUFFIXES, MESH_SUFFIXES

        if self.shape is not None:
            input_file(self.shape, "shape", tuple(sorted(set(MESH_SUFFIXES + CLOUD_SUFFIXES))))
        output_dir("--output", self.output, inputs=[self.shape])
        finite_float("--time-budget", self.time_budget, 0.0, 1e7)
        integer("--field-resolution", self.field_resolution, 2, MAX_BAND_RESOLUTION)
        integer("--mesh-resolution", self.mesh_resolution, 4, MAX_RESOLUTION)
        integer("--image-size", self.image_size, 1, MAX_SIDE)
        integer("--scan-resolution", self.scan_resolution, 16, MAX_SIDE)

    def run(self) -> int:
        from deepcsp.cli.demo_run import run_demo

        self.check()
        return run_demo(
            self.output,
            self.shape,
            self.time_budget,
            field_resolution=self.field_resolution,
            resolution=self.mesh_resolution,
            image_size=self.image_size,
            scan_resolution=self.scan_resolution,
        )
