"""``deepcsp fit INPUT -o FIELD``: fit a CSP field (or the UDF baseline) to a mesh or point cloud."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated, Literal

import tyro

from deepcsp.fit.config import FitConfig


@dataclass
class FitCommand:
    """Fit a field to one mesh or point cloud; writes FIELD (safetensors), FIELD.json (metrics,
    config) and FIELD.loss.png; resumes from FIELD.ckpt after an interruption."""

    input: Annotated[Path, tyro.conf.Positional]
    """Mesh (.obj .ply .off .stl .glb .gltf) or point cloud (.ply .xyz .npy .npz .las .laz)."""
    output: Annotated[Path, tyro.conf.arg(aliases=["-o"])] = Path("field.safetensors")
    """Where the field is written."""
    config: FitConfig = field(default_factory=FitConfig)
    preset: Literal["default", "paper", "udf"] = "default"
    """``paper``: the official CSP single-shape recipe; ``udf``: the NDF-style baseline."""
    cache: Path | None = Path(".cache/deepcsp")
    """Cache of training samples (by content hash); None to disable."""
    quiet: bool = False
    """No progress bar."""

    def check(self) -> None:
        """Refuse bad options before any work (the config checked itself when it was built)."""
        from deepcsp._validate import input_file, output_dir, output_path
        from deepcsp.io.surface import CLOUD_SUFFIXES, MESH_SUFFIXES

        input_file(self.input, "input", tuple(sorted(set(MESH_SUFFIXES + CLOUD_SUFFIXES))))
        output_path("--output", self.output, (".safetensors",), inputs=[self.input])
        for extra in (".json", ".loss.png", ".ckpt"):  # written beside the field
            output_path("--output", Path(str(self.output) + extra), inputs=[self.input])
        if self.cache is not None:
            output_dir("--cache", self.cache, inputs=[self.input, self.output])

    def run(self) -> int:
        from deepcsp.cli._common import echo, fmt, table
        from deepcsp.errors import DeepCSPError

        self.check()
        from deepcsp.fit.presets import apply_preset
        from deepcsp.fit.report import fit_with_progress, write_fit_outputs
        from deepcsp.io import load_surface

        surface = load_surface(self.input)
        config = apply_preset(self.config, self.preset)
        try:
            result = fit_with_progress(
                surface,
                config,
                self.output,
                cache_dir=self.cache,
                quiet=self.quiet,
                ground_truth="surface_samples" if self.preset == "paper" else "exact",
            )
        except ValueError as exc:  # a cloud that cannot define a surface (too few points, a line)
            raise DeepCSPError(str(exc), self.input) from None
        rows = []
        if result.cloud is not None and result.field.grid_cell is not None:
            from deepcsp.pipelines import close_if_closed

            closed = close_if_closed(result.field, spacing=result.cloud.spacing)
            rows.append(("closed surface", "yes (inside/outside stored)" if closed else "no"))
        files = write_fit_outputs(result, self.output, config)
        e = result.errors
        rows = [("steps", str(result.steps)), ("seconds", f"{result.seconds_total:.1f}")] + rows
        if e is not None:
            rows += [("mean error / diag", fmt(e.mean)), ("p95 error / diag", fmt(e.p95))]
        rows += [(k, str(v)) for k, v in files.items()]
        echo(table(rows, f"fitted {self.input.name}"))
        return 0
