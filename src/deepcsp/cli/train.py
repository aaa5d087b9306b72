"""``deepcsp prepare``, ``deepcsp train`` and ``deepcsp reconstruct``: learned reconstruction from
sparse point clouds (data preparation, DDP training, inference + mesh extraction)."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from dataclasses import field as dc_field
from pathlib import Path
from typing import Annotated

import numpy as np
import tyro

from deepcsp.train.data import PrepareConfig
from deepcsp.train.loop import TrainConfig
from deepcsp.train.reconstruct import ReconstructConfig


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

        report = prepare(self.mesh_dir, self.output, self.config, self.procedural, exclude=self.exclude, workers=self.workers, on_done=on_done)
        bar.close()
        rows = [("written", str(len(report.written))), ("already there", str(len(report.skipped))), ("failed", str(len(report.failed))), ("index", str(report.index))]
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


class _FieldOracle:
    """Adapter: a Field queried in normalised NumPy coordinates, as ``fit.band.collocate`` wants."""

    def __init__(self, fld):
        self.fld = fld

    def query(self, points: np.ndarray):
        import torch

        from deepcsp.geometry.closest import ClosestPoints

        x = torch.as_tensor(points, dtype=torch.float32, device=self.fld.device)
        cp = torch.cat([self.fld.closest_points_normalized(c) for c in torch.split(x, self.fld.chunk)]).cpu().double().numpy()
        return ClosestPoints(cp, np.linalg.norm(points - cp, axis=1), np.zeros(len(cp), np.int64), None)


def collocated_field(fld, resolution: int = 128, coarse_resolution: int = 32, band: float = 0.06):
    """A band-grid :class:`~deepcsp.fields.query.NeuralField` collocated from any field (here the
    conditional model of one cloud), saveable and loadable like a fitted field."""
    from deepcsp.fields.modules import FieldConfig, build_module
    from deepcsp.fields.query import NeuralField
    from deepcsp.fit.band import collocate

    fcfg = FieldConfig(resolution=resolution, coarse_resolution=coarse_resolution)
    module = build_module(fcfg)
    stats = collocate(module.encoder, _FieldOracle(fld), band * np.sqrt(3.0), fcfg.kind, fcfg.output)
    fcfg.n_active = stats.n_active
    return NeuralField(module, fcfg, fld.normalization, meta={"source": "deepcsp reconstruct (collocated from the conditional model)"})


@dataclass
class ReconstructCommand:
    """Reconstruct a surface from a sparse, unoriented point cloud with a trained model (the
    shipped one by default): writes a mesh (OUT.ply), or the projected dense points when mesh
    extraction is off or unavailable."""

    input: Annotated[Path, tyro.conf.Positional]
    """Point cloud (.ply .xyz .npy .npz) or mesh (its vertices are used)."""
    output: Annotated[Path, tyro.conf.arg(aliases=["-o"])] = Path("reconstruction.ply")
    """Output mesh (or points with --no-mesh)."""
    model: Path | None = None
    """Model (safetensors) from ``deepcsp train``; default: the model shipped with deepcsp."""
    field: Path | None = None
    """Also save the reconstructed field here (a band-grid field usable by query/render/mesh)."""
    config: ReconstructConfig = dc_field(default_factory=ReconstructConfig)
    mesh: bool = True
    """Extract a mesh (deepcsp.extract); False writes the projected dense point cloud."""
    resolution: int = 128
    """Mesh extraction grid resolution."""
    field_resolution: int = 128
    """Fine resolution of the band-grid field written by --field."""

    def run(self) -> int:
        from deepcsp.cli._common import echo, need_file, table
        from deepcsp.fields.conditional import load_model, shipped_model_path
        from deepcsp.io import load_surface, save_mesh, save_points
        from deepcsp.train.reconstruct import reconstruct_points

        need_file(self.input)
        surface = load_surface(self.input)
        loaded = load_model(self.model or shipped_model_path(), device=self.config.device)
        try:
            from deepcsp.extract import ExtractConfig, extract_mesh
        except ImportError:  # extraction not installed: fall back to points
            extract_mesh = None
        use_mesh = self.mesh and extract_mesh is not None
        cfg = dataclasses.replace(self.config, n_dense=0) if use_mesh else self.config
        rec = reconstruct_points(loaded.model, surface.vertices, cfg)
        rows = [("input points", str(len(surface.vertices))), ("model", str(self.model or "shipped")), ("encode s" if use_mesh else "encode + project s", f"{rec.seconds:.2f}")]
        if use_mesh:
            res = extract_mesh(rec.field, ExtractConfig(resolution=self.resolution))
            save_mesh(self.output, res.vertices, res.faces)
            rows += [("mesh faces", str(len(res.faces))), ("extract s", f"{res.seconds:.2f}")]
        else:
            save_points(self.output, rec.points, rec.normals)
            rows += [("points", str(len(rec.points)))]
        rows.append(("output", str(self.output)))
        if self.field is not None:
            nf = collocated_field(rec.field, resolution=self.field_resolution)
            nf.save(self.field)
            rows.append(("field", str(self.field)))
        echo(table(rows, f"reconstructed {self.input.name}"))
        return 0

