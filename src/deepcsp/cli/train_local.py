"""``deepcsp train-local``: train the local CSP operator for point clouds on meshes (DDP with torchrun)."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated

import tyro

from deepcsp.train.local import LocalTrainConfig

#: The split of the dev meshes (``../shared/data/meshes``) behind the shipped model. Meshes under
#: research-only licences (Stanford armadillo and dragon) are never trained on; the evaluation
#: meshes are neither trained on nor used to select the model.
TRAIN_MESHES = (
    "closed/bob.obj",
    "closed/dragon_lowpoly_22k.obj",
    "closed/nefertiti_100k.obj",
    "closed/penguin.obj",
    "open/mountain_terrain.obj",
    "open/skirt_sim.obj",
    "open/lionstatue_scan.obj",
    "open/flatland_sheet.obj",
)
VAL_MESHES = ("closed/wingnut.obj", "closed/teddy.obj", "open/moebius_strip.obj", "open/demosthenes_scan.obj")
EVAL_MESHES = (
    "closed/spot.obj",
    "closed/fish_blub.obj",
    "closed/armadillo_29k.obj",
    "closed/dragon_stanford_20k.obj",
    "closed/skull_100k.obj",
    "closed/torus.obj",
    "closed/mobius_thick.obj",
    "open/tee_sim.obj",
    "open/airplane_holes.obj",
    "open/armor_jacket.obj",
    "open/cesium_milk_truck.glb",
    "open/cube_no_bottom.obj",
)


@dataclass
class TrainLocalCommand:
    """Train the local CSP model that projects noisy or sparse point clouds onto their surface;
    writes RUN_DIR/model.safetensors (best on the validation meshes), checkpoint and history.json;
    rerun to resume. Multi-process: ``torchrun --nproc_per_node=K -m deepcsp train-local ...``."""

    meshes: Annotated[Path | None, tyro.conf.Positional] = None
    """Folder of the dev meshes; default ``$DEEPCSP_MESHES`` or ``../shared/data/meshes``."""
    output: Annotated[Path, tyro.conf.arg(aliases=["-o"])] = Path("runs/local_csp")
    """Run folder (RUN_DIR)."""
    train: tuple[str, ...] = TRAIN_MESHES
    """Training meshes, relative to MESHES."""
    val: tuple[str, ...] = VAL_MESHES
    """Validation meshes (model selection), relative to MESHES."""
    procedural: int = 60
    """Procedural shapes added to the training meshes (primitives, unions, sheets, cloth, tubes)."""
    config: LocalTrainConfig = field(default_factory=LocalTrainConfig)
    quiet: bool = False
    """No progress bars."""

    def check(self) -> Path:
        """Refuse bad options before any work; returns the mesh folder."""
        import os

        from deepcsp._validate import OptionError, input_dir, integer, output_dir

        folder = self.meshes or Path(
            os.environ.get("DEEPCSP_MESHES") or Path.cwd().parent / "shared" / "data" / "meshes"
        )
        input_dir(folder, "mesh")
        output_dir("--output", self.output, inputs=[folder])
        integer("--procedural", self.procedural, 0, 10**5)
        for flag, names in (("--train", self.train), ("--val", self.val)):
            missing = [n for n in names if not (folder / n).is_file()]
            if missing:
                raise OptionError(flag, f"names meshes not in {folder}: {', '.join(missing[:5])}")
        overlap = set(self.train) & set(self.val)
        if overlap:
            raise OptionError("--val", f"shares meshes with --train: {', '.join(sorted(overlap))}")
        if not self.val:
            raise OptionError("--val", "is empty: the model is selected on validation meshes")
        return folder

    def run(self) -> int:
        from deepcsp.cli._common import echo, fmt, table
        from deepcsp.train.local import load_training_mesh, train_local
        from deepcsp.train.loop import dist_info
        from deepcsp.train.procedural import generate_shapes

        folder = self.check()
        train = [load_training_mesh(folder / n) for n in self.train]
        shapes = generate_shapes(self.procedural, seed=self.config.seed)
        clouds = [self.config.data.clouds_per_mesh] * len(train) + [
            max(1, self.config.data.clouds_per_mesh // 3)
        ] * len(shapes)
        train += [(s.vertices, s.faces) for s in shapes]
        val = [load_training_mesh(folder / n) for n in self.val]
        meta = {"train": list(self.train), "val": list(self.val), "procedural": self.procedural}
        result = train_local(train, val, self.output, self.config, clouds, progress=not self.quiet, meta=meta)
        if dist_info().is_main:
            last = result.history[-1] if result.history else {}
            best = min((h["val_csp_error"] for h in result.history), default=float("nan"))
            echo(
                table(
                    [
                        ("processes", str(result.world)),
                        ("steps", str(result.steps)),
                        ("resumed", str(result.resumed)),
                        ("last train error", fmt(last.get("train_error", float("nan")))),
                        ("best validation error", fmt(best)),
                        ("model", str(result.model)),
                    ],
                    f"trained {self.output}",
                )
            )
        return 0
