"""``deepcsp prepare`` and ``deepcsp train``: the global reconstruction model (data preparation and
DDP training); ``deepcsp reconstruct --method global`` uses it."""

from __future__ import annotations

from dataclasses import dataclass
from dataclasses import field as dc_field
from pathlib import Path
from typing import Annotated

import tyro

from deepcsp.train.data import PrepareConfig
from deepcsp.train.loop import TrainConfig


@dataclass
class PrepareCommand:
    """Turn a folder of meshes (and procedural shapes) into training records in DATA_DIR/records;
    resumable (existing records are skipped); bad files are reported and skipped."""

    mesh_dir: Annotated[Path | None, tyro.conf.Positional] = None
    """Folder searched recursively for meshes (.obj .ply .off .stl .glb .gltf); None: procedural shapes only."""
    output: Annotated[Path, tyro.conf.arg(aliases=["-o"])] = Path("data")
    """Output folder (DATA_DIR)."""
    config: PrepareConfig = dc_field(default_factory=PrepareConfig)
    procedural: int = 0
    """Procedurally generated shapes to add (primitives, CSG unions, sheets, cloth, tubes, caps)."""
    exclude: tuple[str, ...] = ()
    """Glob patterns of relative mesh paths to leave out (e.g. held-out evaluation meshes)."""
    workers: int = 1
    """Parallel worker processes."""
    quiet: bool = False
    """No progress bar."""

    def check(self) -> None:
        """Refuse bad options before any work (the config checked itself when it was built)."""
        from deepcsp._validate import OptionError, input_dir, integer, output_dir

        if self.mesh_dir is not None:
            input_dir(self.mesh_dir, "mesh")
        output_dir("--output", self.output, inputs=[self.mesh_dir])
        integer("--procedural", self.procedural, 0, 10**6)
        integer("--workers", self.workers, 1, 256)
        if self.mesh_dir is None and self.procedural == 0:
            raise OptionError("--procedural", "is 0 and no MESH_DIR is given: nothing to prepare")

    def run(self) -> int:
        from tqdm import tqdm

        from deepcsp.cli._common import echo, table
        from deepcsp.train.data import list_meshes, prepare

        self.check()
        total = (len(list_meshes(self.mesh_dir, self.exclude)) if self.mesh_dir is not None else 0) + self.procedural
        bar = tqdm(total=total, unit="shape", disable=self.quiet, dynamic_ncols=True)

        def on_done(name: str, status: str, msg: str) -> None:
            bar.update(1)
            if status == "failed":
                bar.write(f"skipped bad file: {msg}")

        report = prepare(
            self.mesh_dir,
            self.output,
            self.config,
            self.procedural,
            exclude=self.exclude,
            workers=self.workers,
            on_done=on_done,
        )
        bar.close()
        rows = [
            ("written", str(len(report.written))),
            ("already there", str(len(report.skipped))),
            ("failed", str(len(report.failed))),
            ("index", str(report.index)),
        ]
        echo(table(rows, f"prepared {self.output}"))
        for name, msg in report.failed:
            echo(f"  failed: {msg}")
        return 0


@dataclass
class TrainCommand:
    """Train a reconstruction model on DATA_DIR; writes RUN_DIR/model.safetensors, checkpoint,
    history.json and loss.png; rerun to resume. Multi-process: ``torchrun --nproc_per_node=K -m
    deepcsp train ...`` (gloo on CPU, nccl on CUDA; same effective batch)."""

    data_dir: Annotated[Path, tyro.conf.Positional]
    """Folder written by ``deepcsp prepare``."""
    output: Annotated[Path, tyro.conf.arg(aliases=["-o"])] = Path("run")
    """Run folder (RUN_DIR)."""
    config: TrainConfig = dc_field(default_factory=TrainConfig)
    quiet: bool = False
    """No progress bar."""

    def check(self) -> None:
        """Refuse bad options before any work (the config checked itself when it was built)."""
        from deepcsp._validate import input_dir, output_dir
        from deepcsp.train.data import list_records

        list_records(input_dir(self.data_dir, "data"))
        output_dir("--output", self.output, inputs=[self.data_dir])

    def run(self) -> int:
        from deepcsp.cli._common import echo, fmt, table
        from deepcsp.train.loop import dist_info, train

        self.check()
        result = train(self.data_dir, self.output, self.config, progress=not self.quiet)
        if dist_info().is_main:
            last = result.history[-1] if result.history else {}
            rows = [
                ("processes", str(result.world)),
                ("steps", str(result.steps)),
                ("epochs", f"{result.epochs}/{self.config.epochs}"),
                ("resumed", str(result.resumed)),
                ("samples/s", fmt(result.samples_per_s)),
                ("last train loss", fmt(last.get("train_loss", float("nan")))),
                ("val CSP error (mean)", fmt(last.get("val_csp_mean", float("nan")))),
                ("model", str(result.model)),
            ]
            echo(table(rows, f"trained {self.output}"))
        return 0
