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

from deepcsp.fields.modules import build_module
from deepcsp.fields.query import NeuralField
from deepcsp.fit.band import BandStats, collocate
from deepcsp._checkpoint import load_checkpoint, load_optimizer, optimizer_tensors, save_checkpoint
from deepcsp.fit.config import FitConfig
from deepcsp.fit.evaluate import FieldErrors, evaluate_field
from deepcsp.fit.losses import cosine_scale, csp_loss, udf_loss
from deepcsp.geometry.closest import CloudOracle, make_oracle
from deepcsp.geometry.inside import is_watertight
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


def _config_hash(config: FitConfig, surface_hash: str) -> str:
    d = config.to_dict()
    for volatile in ("time_budget", "max_steps", "checkpoint_every", "device", "threads", "eval_points"):
        d.pop(volatile, None)
    return hashlib.sha1((json.dumps(d, sort_keys=True) + surface_hash).encode()).hexdigest()[:16]


def _wants_sides(config: FitConfig, fcfg, faces) -> bool:
    return config.inside_outside == "auto" and faces is not None and fcfg.kind == "csp" and fcfg.output == "displacement"


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
        Called after each step with ``{"step", "seconds", "loss", "error"}``.
    ground_truth
        ``exact`` (BVH closest points) or ``surface_samples`` (nearest of 250k surface samples,
        as the official CSP code does; used by the paper recipe).
    """
    t_start = time.perf_counter()
    if config.threads:
        torch.set_num_threads(config.threads)
    torch.manual_seed(config.seed)
    device = torch.device(config.device)
    v = surface.normalized_vertices
    faces = surface.faces
    oracle = make_oracle(v, faces)
    if ground_truth == "surface_samples":
        train_oracle = CloudOracle(sample_surface(v, faces, 250_000, np.random.default_rng(config.seed)).points)
    elif ground_truth == "exact":
        train_oracle = oracle
    else:
        raise ValueError(f"ground_truth must be 'exact' or 'surface_samples', got {ground_truth!r}")
    diag = float(np.linalg.norm(v.max(0) - v.min(0)))
    fcfg = dataclasses.replace(config.field)  # n_active is set below; the caller's config stays as given
    chash = _config_hash(config, surface.content_hash() + ground_truth)

    ckpt = Path(checkpoint_path) if checkpoint_path else None
    resume = None
    if ckpt is not None and ckpt.exists():
        tensors, meta = load_checkpoint(ckpt)
        if meta.get("config_hash") == chash:
            resume = (tensors, meta)
        else:
            log.warning("checkpoint %s belongs to another input or config; starting over", ckpt)

    band_stats = None
    if resume is not None:
        from deepcsp.fields.modules import FieldConfig

        fcfg = FieldConfig.from_dict(resume[1]["field"])
        module = build_module(fcfg)
        module.load_state_dict({k[6:]: t for k, t in resume[0].items() if k.startswith("model.")})
    else:
        module = build_module(fcfg)
        if fcfg.encoding == "band_grid":
            if progress is not None:
                progress({"stage": "collocating exact closest points at band-grid vertices"})
            closed = (v, faces) if ground_truth == "exact" and _wants_sides(config, fcfg, faces) and is_watertight(v, faces) else None
            band_stats = collocate(module.encoder, train_oracle, config.band * diag, fcfg.kind, fcfg.output, closed_mesh=closed)
            fcfg.n_active = band_stats.n_active
            if progress is not None:
                sides = f" (closed input: inside/outside bits in {band_stats.seconds_sides:.1f} s)" if closed else ""
                progress({"stage": f"collocated {band_stats.n_active} vertices in {band_stats.seconds:.1f} s{sides}"})
    module.to(device)

    steps_wanted = config.resolved_steps()
    need_samples = steps_wanted > 0
    t_gt = time.perf_counter()
    samples = None
    if need_samples:
        samples = cached_training_samples(v, faces, train_oracle, config.samples, cache_dir)
        if fcfg.encoding == "band_grid":  # train the fine values where they are used
            inside = samples.distances <= config.band * diag
            pts, cps = samples.points[inside], samples.closest[inside]
        else:
            pts, cps = samples.points, samples.closest
        P = torch.as_tensor(pts, dtype=torch.float32, device=device)
        C = torch.as_tensor(cps, dtype=torch.float32, device=device)
        D = (P - C).norm(dim=1)
    seconds_gt = (time.perf_counter() - t_gt) + (band_stats.seconds if band_stats else 0.0)

    params = _param_groups(module, config)
    opt = torch.optim.Adam(params) if params else None
    base_lrs = [g["lr"] for g in params]  # before a resumed optimizer overwrites them with scheduled ones
    gen = torch.Generator(device="cpu").manual_seed(config.seed)
    history: list[dict] = []
    step, elapsed_before = 0, 0.0
    if resume is not None:
        tensors, meta = resume
        if opt is not None and meta.get("optimizer"):
            load_optimizer(opt, tensors, meta["optimizer"])
        gen.set_state(tensors["rng"])
        step, elapsed_before, history = int(meta["step"]), float(meta["elapsed"]), list(meta["history"])
    resumed_from = step

    def checkpoint():
        if ckpt is None:
            return
        tensors = {f"model.{k}": t for k, t in module.state_dict().items()}
        meta = {"config_hash": chash, "field": fcfg.to_dict(), "step": step, "elapsed": elapsed_before + time.perf_counter() - t_start, "history": history}
        if opt is not None:
            ot, info = optimizer_tensors(opt)
            tensors.update(ot)
            meta["optimizer"] = info
        tensors["rng"] = gen.get_state()
        save_checkpoint(ckpt, tensors, meta)

    budget = config.time_budget
    last_ckpt = time.perf_counter()
    module.train()
    try:
        while samples is not None and step < steps_wanted and len(P) > 0:
            now = elapsed_before + time.perf_counter() - t_start
            if budget and now >= budget:
                break
            frac = max(now / budget if budget else 0.0, step / max(steps_wanted, 1))
            for g, lr in zip(opt.param_groups, base_lrs):
                g["lr"] = lr * cosine_scale(frac, config.lr_decay)
            idx = torch.randint(0, len(P), (config.batch_size,), generator=gen).to(device)
            if fcfg.kind == "udf":
                batch = udf_loss(module, P[idx], D[idx], diag)
            else:
                batch = csp_loss(module, P[idx], C[idx], diag, squared=fcfg.encoding == "paper",
                                 idempotence=config.idempotence_weight, orthogonality=config.orthogonality_weight)
            loss, err = batch.loss, batch.error
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            step += 1
            rec = {"step": step, "seconds": round(elapsed_before + time.perf_counter() - t_start, 3), "loss": float(loss.detach()), "error": err}
            history.append(rec)
            if progress is not None:
                progress(rec)
            if time.perf_counter() - last_ckpt >= config.checkpoint_every:
                checkpoint()
                last_ckpt = time.perf_counter()
    except KeyboardInterrupt:
        checkpoint()  # Ctrl-C keeps the progress made since the last periodic checkpoint
        raise
    module.eval()
    if ckpt is not None:
        checkpoint()
    total = elapsed_before + time.perf_counter() - t_start
    meta = {"fit": {"steps": step, "seconds": round(total, 3), "source": str(surface.path) if surface.path else None}}
    result_field = NeuralField(module, fcfg, surface.normalization, device=device, meta=meta)
    errors = None
    if config.eval_points:
        if progress is not None:
            progress({"stage": f"measuring closest-point error at {config.eval_points} band points"})
        errors = evaluate_field(result_field, v, faces, oracle, n=config.eval_points)
    return FitResult(field=result_field, history=history, steps=step, seconds_total=total, seconds_ground_truth=seconds_gt, band=band_stats, errors=errors, resumed_from_step=resumed_from)
