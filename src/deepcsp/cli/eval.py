"""``deepcsp eval PRED GT``: compare a predicted surface with a ground-truth one."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated

import tyro


@dataclass
class EvalCommand:
    """Chamfer-L1/L2, Hausdorff, normal consistency and F-score of PRED against GT, with exact
    point-to-mesh distances (convention: see ``deepcsp.geometry.metrics``)."""

    pred: Annotated[Path, tyro.conf.Positional]
    """Predicted mesh or point cloud."""
    gt: Annotated[Path, tyro.conf.Positional]
    """Ground-truth mesh or point cloud."""
    samples: int = 100_000
    """Points sampled on each surface."""
    tau: float = 0.005
    """F-score threshold as a fraction of GT's bounding-box diagonal."""
    json: Path | None = None
    """Also write the metrics as JSON here."""
    seed: int = 0

    def check(self) -> None:
        """Refuse bad options before any work (the inputs' contents are checked as they are read)."""
        from deepcsp._validate import finite_float, input_file, integer, output_path

        input_file(self.pred, "")
        input_file(self.gt, "")
        integer("--samples", self.samples, 1, 10**8)
        finite_float("--tau", self.tau, 0.0, 1.0, min_open=True)
        integer("--seed", self.seed, 0, 2**63 - 1)
        if self.json is not None:
            output_path("--json", self.json, (".json",), inputs=[self.pred, self.gt])

    def run(self) -> int:
        from deepcsp._atomic import write_text
        from deepcsp.cli._common import echo, fmt, table
        from deepcsp.geometry.metrics import compare_surfaces
        from deepcsp.io import load_surface

        self.check()
        pred, gt = load_surface(self.pred), load_surface(self.gt)
        m = compare_surfaces(
            pred.vertices, pred.faces, gt.vertices, gt.faces, n_samples=self.samples, tau_rel=self.tau, seed=self.seed
        )
        d = m.to_dict()
        echo(
            table(
                [(k, fmt(v) if isinstance(v, float) else str(v)) for k, v in d.items()],
                f"{self.pred.name} vs {self.gt.name}",
            )
        )
        if self.json is not None:
            write_text(self.json, json.dumps({"pred": str(self.pred), "gt": str(self.gt), **d}, indent=2))
        return 0
