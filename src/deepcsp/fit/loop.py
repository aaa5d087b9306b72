"""``fit_surface``: fit a field to one surface within a time budget, resumable."""

from __future__ import annotations

import dataclasses
import hashlib
import json
import logging
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import numpy as np
import torch

from deepcsp._checkpoint import load_checkpoint, load_optimizer, optimizer_tensors, save_checkpoint
from deepcsp.fields.modules import FieldConfig, build_module
from deepcsp.fields.query import NeuralField
from deepcsp.fit.band import BandStats, collocate
from deepcsp.fit.config import FitConfig
from deepcsp.fit.evaluate import FieldErrors, evaluate_field
from deepcsp.fit.losses import cosine_scale, csp_loss, udf_loss
from deepcsp.geometry.closest import CloudOracle, MeshOracle
from deepcsp.geometry.inside import is_watertight
from deepcsp.geometry.pointset import CloudSummary, PointSetSurface
from deepcsp.geometry.sampling import cached_training_samples, sample_surface

log = logging.getLogger(__name__)


@dataclass
class FitResult:
    """A fitted field with what happened: per-step ``history`` (step, seconds, loss, error),
    timings, collocation statistics and (if asked) final errors."""

    field: NeuralField
    history: list[dict] = field(default_factory=list)
    steps: int = 0
    seconds_total: float = 0.0
    seconds_ground_truth: float = 0.0
    band: BandStats | None = None
    errors: FieldErrors | None = None
    resumed_from_step: int = 0
    cloud: CloudSummary | None = None
    """Point-cloud inputs: what the point-set surface found (outliers, spacing, noise; lengths in normalised
    units, like ``surface``: divide by ``field.normalization.scale`` for the input's)."""
    surface: PointSetSurface | None = None
    """Point-cloud inputs: the point-set surface the field was collocated from (normalised units)."""


def _config_hash(config: FitConfig, surface_hash: str) -> str:
    d = config.to_dict()
    for volatile in ("time_budget", "max_steps", "checkpoint_every", "device", "threads", "eval_points"):
        d.pop(volatile, None)
    return hashlib.sha1((json.dumps(d, sort_keys=True) + surface_hash).encode()).hexdigest()[:16]


def _band(config: FitConfig, faces, diag: float) -> float:
    """Half-width of the fine band in normalised units: a fraction of the bbox diagonal for meshes,
    a number of fine cells for clouds (their fields are only as fine as their samples)."""
    if faces is None:
        return config.cloud.band_cells * 2 * config.field.half / (config.field.resolution - 1)
    return config.band * diag


def _cloud_resolution(config: FitConfig, spacing: float, close_layers: float = 0.0) -> FitConfig:
    """``config`` with the fine grid of a cloud's field chosen from its sample spacing (normalised
    units) when ``config.cloud.resolution`` is 0 (:func:`auto_cloud_resolution`), and without a
    refined level."""
    res = config.cloud.resolution or auto_cloud_resolution(config, spacing, close_layers)
    # no refined level: the point-set surface cannot tell sheets apart finer than its samples, and
    # its open boundaries and noise would mark many cells as close sheets (measured: a 2,500-point
    # hemisphere took 85 s instead of 9, with a spurious hole at its rim)
    return dataclasses.replace(config, field=dataclasses.replace(config.field, resolution=res, refine_factor=0))


def auto_cloud_resolution(config: FitConfig, spacing: float, close_layers: float = 0.0) -> int:
    """Fine vertices per axis of a cloud's grid: ``config.cloud.vertices_per_spacing`` per sample
    spacing (normalised units), ``layered_vertices_per_spacing`` when the cloud is layered
    (``close_layers``, :class:`~deepcsp.fit.config.CloudConfig`), within 192-512, a multiple of 16."""
    cloud = config.cloud
    per = cloud.layered_vertices_per_spacing if cloud.is_layered(close_layers) else cloud.vertices_per_spacing
    return int(np.clip(np.ceil(per * 2 * config.field.half / spacing / 16) * 16, 192, 512))


def layered_grid(config: FitConfig, spacing: float, close_layers: float) -> bool:
    """Whether a cloud's automatic grid was made finer than its spacing alone asks for because the
    cloud is layered (not where the 192-512 bounds make both the same)."""
    plain = auto_cloud_resolution(config, spacing)
    return not config.cloud.resolution and auto_cloud_resolution(config, spacing, close_layers) > plain


def _oracle(v: np.ndarray, faces, config: FitConfig, progress):
    """Exact closest points: a mesh's BVH, or the point-set surface a cloud samples."""
    if faces is not None:
        return MeshOracle(v, faces)
    if progress is not None:
        progress({"stage": f"building the point-set surface of {len(v)} points"})
    cloud = config.cloud
    project = None if cloud.projection == "off" else _learned_projection(cloud.model, config.device, progress)
    pss = PointSetSurface.build(
        v, cloud.surface, project, project_above=cloud.projection_above if cloud.projection == "auto" else 0.0
    )
    if progress is not None:
        pss.progress = lambda done, total: progress({"task": "closest points", "done": done, "total": total})
        s = pss.summary
        projection = (
            f", noise {s.noise:.3g}"
            if s.projection == "none"
            else f", projection {s.projection} (noise {s.input_noise:.3g} -> {s.noise:.3g}, "
            f"its offset {s.projection_offset:.2g} removed)"
        )
        progress(
            {
                "stage": f"point-set surface: {s.n_points} points ("
                + (f"{s.n_repeated} repeated samples merged, " if s.n_repeated else "")
                + f"{s.n_outliers} outliers dropped), "
                f"spacing {s.spacing:.3g}"
                f"{projection}, patches of {s.patch_neighbors} points (degree {s.patch_degree})"
                + (f", {s.local_patches:.0%} of them sized per point" if s.local_patches else "")
            }
        )
    return pss


def _learned_projection(model_path: str | None, device: str, progress):
    """A function projecting cloud points with the local CSP model (loaded on first use)."""

    def project(points: np.ndarray) -> np.ndarray:
        from deepcsp.fields.local import load_local_model, project_points, shipped_local_model_path

        model = load_local_model(model_path or shipped_local_model_path(), device=device)
        if progress is not None:
            progress({"stage": f"projecting {len(points)} points with the local CSP model"})
        bar = (
            None
            if progress is None
            else (lambda done, total: progress({"task": "learned projection", "done": done, "total": total}))
        )
        return project_points(model, points, points, progress=bar)

    return project


def _wants_sides(config: FitConfig, fcfg, faces) -> bool:
    return (
        config.inside_outside == "auto" and faces is not None and fcfg.kind == "csp" and fcfg.output == "displacement"
    )


def _param_groups(module: torch.nn.Module, config: FitConfig):
    grid, other = [], []
    for name, p in module.named_parameters():
        (grid if name.startswith("encoder.values") else other).append(p)
    groups = []
    if other:
        groups.append({"params": other, "lr": config.lr})
    if grid:
        groups.append({"params": grid, "lr": config.grid_lr})
    return groups


@dataclass
class _Start:
    """Where a fit begins: a fresh (collocated) module, or the state of a compatible checkpoint."""

    module: torch.nn.Module
    field_config: FieldConfig
    band: BandStats | None
    checkpoint: tuple[dict, dict] | None


def _start(surface, config: FitConfig, oracle, ground_truth: str, chash: str, ckpt: Path | None, progress) -> _Start:
    """Resume from ``ckpt`` when it belongs to this input and config; otherwise build the module
    and, for band grids, collocate exact closest points (and side bits for closed meshes)."""

    if ckpt is not None and ckpt.exists():
        tensors, meta = load_checkpoint(ckpt)
        if meta.get("config_hash") == chash:
            fcfg = FieldConfig.from_dict(meta["field"])
            module = build_module(fcfg)
            module.load_state_dict({k[6:]: t for k, t in tensors.items() if k.startswith("model.")})
            return _Start(module, fcfg, None, (tensors, meta))
        log.warning("checkpoint %s belongs to another input or config; starting over", ckpt)
    fcfg = dataclasses.replace(config.field)  # n_active is set below; the caller's config stays as given
    module = build_module(fcfg)
    band = None
    if fcfg.encoding == "band_grid":
        v, faces = surface.normalized_vertices, surface.faces
        diag = float(np.linalg.norm(v.max(0) - v.min(0)))
        if progress is not None:
            progress({"stage": "collocating exact closest points at band-grid vertices"})
        closed = (
            (v, faces)
            if ground_truth == "exact" and _wants_sides(config, fcfg, faces) and is_watertight(v, faces)
            else None
        )
        band = collocate(module.encoder, oracle, _band(config, faces, diag), fcfg.kind, fcfg.output, closed_mesh=closed)
        fcfg.n_active = band.n_active
        if progress is not None:
            sides = f" (closed input: inside/outside bits in {band.seconds_sides:.1f} s)" if closed else ""
            progress({"stage": f"collocated {band.n_active} vertices in {band.seconds:.1f} s{sides}"})
    return _Start(module, fcfg, band, None)


def _training_set(
    surface, config: FitConfig, fcfg: FieldConfig, oracle, cache_dir, device
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Training points, their exact closest points and distances (band grids train only where
    their fine values are used)."""
    v = surface.normalized_vertices
    samples = cached_training_samples(v, surface.faces, oracle, config.samples, cache_dir)
    pts, cps = samples.points, samples.closest
    if fcfg.encoding == "band_grid":
        inside = samples.distances <= _band(config, surface.faces, float(np.linalg.norm(v.max(0) - v.min(0))))
        pts, cps = pts[inside], cps[inside]
    P = torch.as_tensor(pts, dtype=torch.float32, device=device)
    C = torch.as_tensor(cps, dtype=torch.float32, device=device)
    return P, C, (P - C).norm(dim=1)


class _Optimisation:
    """The resumable Adam loop: state (step, history, RNG, optimiser) and atomic checkpoints."""

    def __init__(
        self,
        module: torch.nn.Module,
        fcfg: FieldConfig,
        config: FitConfig,
        chash: str,
        ckpt: Path | None,
        t_start: float,
        train: bool = True,
    ):
        """``train=False`` (no steps to take) makes no optimiser: building Adam imports torch's
        compiler stack, a second on CPU."""
        self.module, self.fcfg, self.config, self.chash, self.ckpt, self.t_start = (
            module,
            fcfg,
            config,
            chash,
            ckpt,
            t_start,
        )
        params = _param_groups(module, config)
        self.opt = torch.optim.Adam(params) if params and train else None
        self.base_lrs = [g["lr"] for g in params]  # before a resumed optimizer overwrites them with scheduled ones
        self.gen = torch.Generator(device="cpu").manual_seed(config.seed)
        self.history: list[dict] = []
        self.step, self.elapsed_before = 0, 0.0

    def resume(self, tensors: dict, meta: dict) -> None:
        if self.opt is not None and meta.get("optimizer"):
            load_optimizer(self.opt, tensors, meta["optimizer"])
        self.gen.set_state(tensors["rng"])
        self.step, self.elapsed_before, self.history = int(meta["step"]), float(meta["elapsed"]), list(meta["history"])

    def elapsed(self) -> float:
        return self.elapsed_before + time.perf_counter() - self.t_start

    def checkpoint(self) -> None:
        if self.ckpt is None:
            return
        tensors = {f"model.{k}": t for k, t in self.module.state_dict().items()}
        meta = {
            "config_hash": self.chash,
            "field": self.fcfg.to_dict(),
            "step": self.step,
            "elapsed": self.elapsed(),
            "history": self.history,
        }
        if self.opt is not None:
            ot, info = optimizer_tensors(self.opt)
            tensors.update(ot)
            meta["optimizer"] = info
        tensors["rng"] = self.gen.get_state()
        save_checkpoint(self.ckpt, tensors, meta)

    def run(self, P: torch.Tensor, C: torch.Tensor, D: torch.Tensor, steps_wanted: int, diag: float, progress) -> None:
        """Optimise until ``steps_wanted`` or the time budget; checkpoints every
        ``checkpoint_every`` seconds and on Ctrl-C."""
        config, fcfg, module = self.config, self.fcfg, self.module
        budget = config.time_budget
        last_ckpt = time.perf_counter()
        module.train()
        try:
            while self.step < steps_wanted and len(P) > 0:
                now = self.elapsed()
                if budget and now >= budget:
                    break
                frac = max(now / budget if budget else 0.0, self.step / max(steps_wanted, 1))
                for g, lr in zip(self.opt.param_groups, self.base_lrs):
                    g["lr"] = lr * cosine_scale(frac, config.lr_decay)
                idx = torch.randint(0, len(P), (config.batch_size,), generator=self.gen).to(P.device)
                if fcfg.kind == "udf":
                    batch = udf_loss(module, P[idx], D[idx], diag)
                else:
                    batch = csp_loss(
                        module,
                        P[idx],
                        C[idx],
                        diag,
                        squared=fcfg.encoding == "paper",
                        idempotence=config.idempotence_weight,
                        orthogonality=config.orthogonality_weight,
                    )
                self.opt.zero_grad(set_to_none=True)
                batch.loss.backward()
                self.opt.step()
                self.step += 1
                rec = {
                    "step": self.step,
                    "seconds": round(self.elapsed(), 3),
                    "loss": float(batch.loss.detach()),
                    "error": batch.error,
                }
                self.history.append(rec)
                if progress is not None:
                    progress(rec)
                if time.perf_counter() - last_ckpt >= config.checkpoint_every:
                    self.checkpoint()
                    last_ckpt = time.perf_counter()
        except KeyboardInterrupt:
            self.checkpoint()  # Ctrl-C keeps the progress made since the last periodic checkpoint
            raise
        module.eval()


def fit_surface(
    surface,
    config: FitConfig = FitConfig(),
    checkpoint_path: str | Path | None = None,
    cache_dir: str | Path | None = None,
    progress: Callable[[dict], None] | None = None,
    ground_truth: str = "exact",
) -> FitResult:
    """Fit a field to ``surface`` (a :class:`deepcsp.io.Surface`).

    Parameters
    ----------
    config
        Architecture, samples, budget and optimiser.
    checkpoint_path
        Where periodic checkpoints go; if a compatible one exists the fit resumes from it.
    cache_dir
        Where training samples are cached (by content hash); None disables the cache.
    progress
        Called after each step with ``{"step", "seconds", "loss", "error"}`` (and with
        ``{"stage"}`` messages before).
    ground_truth
        ``exact`` (BVH closest points) or ``surface_samples`` (nearest of 250k surface samples,
        as the official CSP code does; used by the paper recipe).
    """
    t_start = time.perf_counter()
    if config.threads:
        torch.set_num_threads(config.threads)
    torch.manual_seed(config.seed)
    device = torch.device(config.device)
    truth = _ground_truth(surface, config, ground_truth, progress)
    config = truth.config
    chash = _config_hash(config, surface.content_hash() + ground_truth)
    ckpt = Path(checkpoint_path) if checkpoint_path else None
    start = _start(surface, config, truth.training, ground_truth, chash, ckpt, progress)
    trained = _optimise(surface, config, start, truth.training, chash, ckpt, cache_dir, device, t_start, progress)
    return _fit_result(surface, config, start, trained, truth.exact, device, progress)


@dataclass
class _GroundTruth:
    """Where a fit's closest points come from."""

    exact: MeshOracle | PointSetSurface
    """Exact closest points: the mesh's BVH or the cloud's point-set surface (also measures the errors)."""
    training: MeshOracle | PointSetSurface | CloudOracle
    """Closest points of collocation and training (``exact``, or the nearest surface sample)."""
    config: FitConfig
    """The config, a cloud's fine grid resolved from its sample spacing."""


def _ground_truth(surface, config: FitConfig, ground_truth: str, progress) -> _GroundTruth:
    """The exact oracle, the training oracle ``ground_truth`` asks for, and the resolved config."""
    v, faces = surface.normalized_vertices, surface.faces
    oracle = _oracle(v, faces, config, progress)
    if faces is None and ground_truth == "exact" and config.field.encoding == "band_grid":
        config = _cloud_resolution(config, oracle.summary.spacing, oracle.summary.close_layers)
    if ground_truth == "surface_samples":
        train_oracle = CloudOracle(sample_surface(v, faces, 250_000, np.random.default_rng(config.seed)).points)
    elif ground_truth == "exact":
        train_oracle = oracle
    else:
        raise ValueError(f"ground_truth must be 'exact' or 'surface_samples', got {ground_truth!r}")
    return _GroundTruth(oracle, train_oracle, config)


@dataclass
class _Trained:
    """The optimisation's end state and what the ground truth cost."""

    run: _Optimisation
    resumed_from_step: int
    seconds_ground_truth: float
    """Collocation and training closest points."""


def _optimise(
    surface,
    config: FitConfig,
    start: _Start,
    oracle,
    chash: str,
    ckpt: Path | None,
    cache_dir,
    device,
    t_start: float,
    progress,
) -> _Trained:
    """Training points (when there are steps to take), then the resumable Adam loop from
    ``start``; a final checkpoint."""
    module, fcfg = start.module.to(device), start.field_config
    v = surface.normalized_vertices
    diag = float(np.linalg.norm(v.max(0) - v.min(0)))
    steps_wanted = config.resolved_steps()
    t_gt = time.perf_counter()
    data = _training_set(surface, config, fcfg, oracle, cache_dir, device) if steps_wanted > 0 else None
    seconds_gt = (time.perf_counter() - t_gt) + (start.band.seconds if start.band else 0.0)
    run = _Optimisation(module, fcfg, config, chash, ckpt, t_start, train=steps_wanted > 0)
    if start.checkpoint is not None:
        run.resume(*start.checkpoint)
    resumed_from = run.step
    if data is not None:
        run.run(*data, steps_wanted=steps_wanted, diag=diag, progress=progress)
        if hasattr(module, "encoder") and getattr(module.encoder, "source", None) is not None:
            module.encoder.source = None  # trained values are no longer the mesh's closest points
    module.eval()
    run.checkpoint()
    return _Trained(run, resumed_from, seconds_gt)


def _fit_result(surface, config: FitConfig, start: _Start, trained: _Trained, oracle, device, progress) -> FitResult:
    """The fitted field (its fit recorded in its metadata), measured against ``oracle`` when ``eval_points``."""
    run = trained.run
    total = run.elapsed()
    meta = {
        "fit": {"steps": run.step, "seconds": round(total, 3), "source": str(surface.path) if surface.path else None}
    }
    result_field = NeuralField(run.module, start.field_config, surface.normalization, device=device, meta=meta)
    errors = None
    if config.eval_points:
        if progress is not None:
            progress({"stage": f"measuring closest-point error at {config.eval_points} band points"})
        errors = evaluate_field(result_field, surface.normalized_vertices, surface.faces, oracle, n=config.eval_points)
    return FitResult(
        field=result_field,
        history=run.history,
        steps=run.step,
        seconds_total=total,
        seconds_ground_truth=trained.seconds_ground_truth,
        band=start.band,
        errors=errors,
        resumed_from_step=trained.resumed_from_step,
        cloud=getattr(oracle, "summary", None),
        surface=oracle if isinstance(oracle, PointSetSurface) else None,
    )
