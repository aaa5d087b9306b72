"""Training of the local CSP operator (:mod:`deepcsp.fields.local`) on meshes and procedural shapes.

Examples are made, not stored: each training mesh is sampled to clouds of random density, noise
(from none to about three sample spacings) and outliers, cleaned as the reconstruction cleans
them (:func:`deepcsp.geometry.pointset.remove_outliers`), and queried at its own points (the
points to project) and at points offset from them; the target is the exact closest point on the
mesh (BVH). The model is selected on a validation set of other meshes (``val``), never on the
benchmark's evaluation meshes.

One process by default; under ``torchrun`` every process joins a process group (gloo on CPU,
nccl on CUDA), takes its share of each batch (``DistributedSampler``; the effective batch is the
same for any world size) and DDP averages the gradients. Rank 0 writes atomic checkpoints (model,
optimizer, progress, best model so far) and the final model; rerunning resumes.
"""

from __future__ import annotations

import json
import math
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Callable

import numpy as np
import torch

from deepcsp._atomic import write_text
from deepcsp._checkpoint import load_checkpoint, load_optimizer, optimizer_tensors, save_checkpoint
from deepcsp._validate import Fields, OptionError
from deepcsp.fields.local import LocalCSPConfig, LocalCSPNet, save_local_model
from deepcsp.geometry.cleanup import weld_and_clean
from deepcsp.geometry.closest import MeshOracle
from deepcsp.geometry.neighborhoods import local_neighborhoods
from deepcsp.geometry.pointset import remove_outliers
from deepcsp.geometry.sampling import sample_surface
from deepcsp.train.loop import training_process


@dataclass
class LocalDataConfig:
    """How training clouds are drawn from a mesh scaled to a unit bounding-box diagonal."""

    clouds_per_mesh: int = 12
    """Clouds drawn from each training mesh per dataset (procedural shapes: a third of it)."""
    queries_per_cloud: int = 1024
    """Queries per cloud."""
    points: tuple[int, int] = (2000, 60000)
    """Range of cloud sizes (log-uniform)."""
    noise: tuple[float, float] = (0.0005, 0.012)
    """Range of the Gaussian noise's standard deviation, fraction of the diagonal (log-uniform)."""
    clean_fraction: float = 0.25
    """Share of clouds without noise."""
    outlier_fraction: float = 0.3
    """Share of clouds with 0.5-2% uniform outliers."""
    offset_fraction: float = 0.25
    """Share of queries moved off their point by a Gaussian of 1.5 local spacings (the rest are
    cloud points, the queries of denoising)."""

    def __post_init__(self) -> None:
        f = Fields(self)
        f.integer("clouds_per_mesh", 1, 10**5)
        f.integer("queries_per_cloud", 1, 10**6)
        f.integer_range("points", 100, 10**7)
        f.number_range("noise", 0.0, 1.0, min_open=True)
        for name in ("clean_fraction", "outlier_fraction", "offset_fraction"):
            f.number(name, 0.0, 1.0)


@dataclass
class LocalTrainConfig:
    """Training of a local CSP model."""

    model: LocalCSPConfig = field(default_factory=LocalCSPConfig)
    data: LocalDataConfig = field(default_factory=LocalDataConfig)
    epochs: int = 12
    """Passes over the training examples."""
    batch: int = 512
    """Effective batch (examples per optimizer step, summed over processes)."""
    lr: float = 1e-3
    """Adam learning rate (cosine decay to 5%)."""
    seed: int = 0
    device: str = "auto"
    """``auto`` (cuda when available), ``cpu`` or ``cuda``."""
    threads: int = 0
    """torch CPU threads per process (0: torch's default)."""
    checkpoint_every: int = 200
    """Optimizer steps between checkpoints (also at every epoch end)."""

    def __post_init__(self) -> None:
        for name, cls in (("model", LocalCSPConfig), ("data", LocalDataConfig)):
            if not isinstance(getattr(self, name), cls):
                raise OptionError(
                    f"LocalTrainConfig.{name}", f"must be a {cls.__name__}, got {type(getattr(self, name)).__name__}"
                )
        f = Fields(self)
        f.integer("epochs", 1, 10**6)
        f.integer("batch", 1, 2**20)
        f.number("lr", 0.0, 10.0, min_open=True)
        f.integer("seed", 0, 2**63 - 1)
        f.device("device", allow_auto=True)
        f.integer("threads", 0, 1024)
        f.integer("checkpoint_every", 1, 10**9)


@dataclass
class Examples:
    """Canonical neighbourhoods ``points : (M, k, 3)`` (float32) and the closest points of their
    queries in the same frames ``targets : (M, 3)``; ``noise : (M,)`` is the cloud's noise in
    local spacings (for reports)."""

    points: np.ndarray
    targets: np.ndarray
    noise: np.ndarray

    @staticmethod
    def concat(parts: list["Examples"]) -> "Examples":
        return Examples(*(np.concatenate([getattr(p, n) for p in parts]) for n in ("points", "targets", "noise")))


def load_training_mesh(path: str | Path) -> tuple[np.ndarray, np.ndarray]:
    """A training mesh ``(vertices (V, 3), faces (F, 3))`` read from ``path``, with vertices closer than
    1e-9 of its largest extent welded and degenerate, duplicate and unused elements dropped."""
    from deepcsp.io import load_surface

    s = load_surface(path)
    return weld_and_clean(s.vertices, s.faces, 1e-9 * float(np.ptp(s.vertices, axis=0).max()))


def make_examples(
    vertices: np.ndarray, faces: np.ndarray, config: LocalDataConfig, neighbors: int, rng: np.random.Generator
) -> Examples:
    """One cloud of the mesh ``(vertices, faces)`` (any scale) and its examples (see module docstring)."""
    from scipy.spatial import cKDTree

    v = np.asarray(vertices, np.float64)
    diag = float(np.linalg.norm(v.max(0) - v.min(0)))
    v = (v - v.min(0)) / diag
    n = int(np.exp(rng.uniform(*np.log(config.points))))
    pts = sample_surface(v, faces, n, rng).points
    sigma = 0.0 if rng.random() < config.clean_fraction else float(np.exp(rng.uniform(*np.log(config.noise))))
    pts = pts + rng.normal(size=pts.shape) * sigma
    if rng.random() < config.outlier_fraction:
        lo, hi = v.min(0) - 0.05, v.max(0) + 0.05
        pts = np.concatenate([pts, rng.uniform(lo, hi, (int(n * rng.uniform(0.005, 0.02)), 3))])
    pts = pts[remove_outliers(pts)]
    tree = cKDTree(pts)
    m = min(config.queries_per_cloud, len(pts))
    q = pts[rng.choice(len(pts), m, replace=False)]
    spacing = np.median(tree.query(q, k=9, workers=-1)[0][:, 1:], axis=1)
    moved = rng.random(m) < config.offset_fraction
    q[moved] += rng.normal(size=(int(moved.sum()), 3)) * 1.5 * spacing[moved, None]
    nb = local_neighborhoods(pts, tree, q, neighbors)
    target = nb.to_frame(MeshOracle(v, faces).query(q).points - q)
    return Examples(
        nb.points, target.astype(np.float32), np.full(m, sigma / max(float(np.median(spacing)), 1e-12), np.float32)
    )


def make_dataset(
    meshes: list[tuple[np.ndarray, np.ndarray]],
    clouds: list[int],
    config: LocalDataConfig,
    neighbors: int,
    seed: int,
    progress: Callable[[int, int], None] | None = None,
) -> Examples:
    """Examples of ``clouds[i]`` clouds of each mesh, reproducible from ``seed``."""
    parts, total, done = [], sum(clouds), 0
    for i, ((v, f), c) in enumerate(zip(meshes, clouds)):
        for j in range(c):
            parts.append(make_examples(v, f, config, neighbors, np.random.default_rng([seed, i, j])))
            done += 1
            if progress is not None:
                progress(done, total)
    return Examples.concat(parts)


def csp_error(pred: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Per-example distance ``(B,)`` between predicted and true closest points (frame units)."""
    return (pred - target).norm(dim=-1)


@dataclass
class LocalTrainResult:
    """``model`` (the best on validation, rank 0), per-epoch ``history``, steps and seconds."""

    model: Path | None
    history: list[dict]
    steps: int
    seconds: float
    world: int
    resumed: bool


def evaluate(model: LocalCSPNet, ex: Examples, device, batch: int = 8192) -> dict:
    """Mean CSP error (frame units) on ``ex``, beside two references: the query itself
    (``identity_error``) and its projection on the neighbourhood's principal plane (``plane_error``)."""
    model.eval()
    errs = []
    with torch.no_grad():
        for s in range(0, len(ex.points), batch):
            p = torch.from_numpy(ex.points[s : s + batch]).to(device)
            errs.append(csp_error(model.predict(p), torch.from_numpy(ex.targets[s : s + batch]).to(device)).cpu())
    e = torch.cat(errs).numpy() if errs else np.zeros(0)
    t = torch.from_numpy(ex.targets)
    plane = torch.zeros_like(t)
    plane[:, 2] = torch.from_numpy(ex.points[..., 2].mean(1))  # onto the neighbourhood's principal plane
    return {
        "csp_error": float(e.mean()) if len(e) else float("nan"),
        "identity_error": float(t.norm(dim=1).mean()),
        "plane_error": float(csp_error(plane, t).mean()),
    }


def train_local(
    train_meshes: list[tuple[np.ndarray, np.ndarray]],
    val_meshes: list[tuple[np.ndarray, np.ndarray]],
    run_dir: str | Path,
    config: LocalTrainConfig = LocalTrainConfig(),
    train_clouds: list[int] | None = None,
    progress: bool = False,
    meta: dict | None = None,
) -> LocalTrainResult:
    """Train (or resume) a local CSP model; writes ``run_dir/{checkpoint,model}.safetensors`` and
    ``history.json``. ``train_clouds[i]``: clouds of mesh i (default ``config.data.clouds_per_mesh``)."""
    import torch.distributed as dist
    from torch.nn.parallel import DistributedDataParallel as DDP

    with training_process(config.batch, config.threads, config.device) as (info, device):
        clouds = train_clouds or [config.data.clouds_per_mesh] * len(train_meshes)
        bar = _bar(progress and info.is_main, "examples")
        train = make_dataset(train_meshes, clouds, config.data, config.model.neighbors, config.seed, bar)
        val = make_dataset(
            val_meshes,
            [max(2, config.data.clouds_per_mesh // 2)] * len(val_meshes),
            config.data,
            config.model.neighbors,
            config.seed + 1,
        )
        return _fit(train, val, Path(run_dir), config, info, device, DDP, dist, progress, meta or {})


def _bar(enabled: bool, unit: str):
    if not enabled:
        return None
    from tqdm.auto import tqdm

    bar = tqdm(unit=unit, dynamic_ncols=True)

    def update(done: int, total: int) -> None:
        bar.total = total
        bar.n = done
        bar.refresh()
        if done >= total:
            bar.close()

    return update


def _fit(
    train: Examples,
    val: Examples,
    run_dir: Path,
    config: LocalTrainConfig,
    info,
    device,
    DDP,
    dist,
    progress: bool,
    meta: dict,
) -> LocalTrainResult:
    torch.manual_seed(config.seed)
    model = LocalCSPNet(config.model).to(device)
    opt = torch.optim.Adam(model.parameters(), lr=config.lr)
    steps_per_epoch = max(1, len(train.points) // config.batch)
    ckpt = run_dir / "checkpoint.safetensors"
    run = _resume(ckpt, model, opt)
    net = DDP(model) if info.world > 1 else model
    # seconds in the history count the whole run, resumed parts included (not the time lost to an interruption)
    t0 = time.perf_counter() - (run.history[-1]["seconds"] if run.history else 0.0)
    for epoch in range(run.step // steps_per_epoch, config.epochs):
        draws = _epoch_draws(config.seed, epoch, len(train.points))
        steps = range(run.step - epoch * steps_per_epoch, steps_per_epoch)
        bar = _bar(progress and info.is_main, "step")
        losses = _train_epoch(net, model, opt, train, draws, steps, run, ckpt, config, info, device, bar)
        rec = {
            "epoch": epoch + 1,
            "step": run.step,
            "train_error": float(np.mean(losses)) if losses else float("nan"),
            "seconds": time.perf_counter() - t0,
        }
        if info.is_main:
            _close_epoch(model, opt, val, rec, run, run_dir, ckpt, config, meta, device)
    return LocalTrainResult(
        run_dir / "model.safetensors" if info.is_main else None,
        run.history,
        run.step,
        time.perf_counter() - t0,
        info.world,
        run.resumed,
    )


@dataclass
class _Progress:
    """How far a training run got: what its checkpoint holds besides the model and optimizer."""

    history: list[dict] = field(default_factory=list)
    """Per-epoch records."""
    step: int = 0
    """Optimizer steps taken."""
    best: float = float("inf")
    """Best validation CSP error so far."""
    resumed: bool = False
    """Read from a checkpoint."""


def _resume(ckpt: Path, model: LocalCSPNet, opt) -> _Progress:
    """Load ``ckpt`` into ``model`` and ``opt`` when it exists; the progress it holds (none otherwise)."""
    if not ckpt.exists():
        return _Progress()
    tensors, m = load_checkpoint(ckpt)
    model.load_state_dict({k[6:]: t for k, t in tensors.items() if k.startswith("model.")})
    load_optimizer(opt, tensors, m["optimizer"])
    return _Progress(m["history"], int(m["step"]), float(m["best"]), True)


@dataclass
class _Draws:
    """One epoch's random draws, ``(N, ...)`` one per example."""

    order: torch.Tensor
    """(N,) the examples' order."""
    flips: torch.Tensor
    """(N, 1) mirror the normal (-1) or not (1)."""
    angles: torch.Tensor
    """(N,) turns about the normal, radians."""


def _epoch_draws(seed: int, epoch: int, n: int) -> _Draws:
    """Orders and flips seeded by ``(seed, epoch)``: the same on every rank and after a resume."""
    gen = torch.Generator().manual_seed(seed * 100_003 + epoch)
    order = torch.randperm(n, generator=gen)
    flips = torch.where(torch.rand(n, 1, generator=gen) < 0.5, -1.0, 1.0)
    angles = torch.rand(n, generator=gen) * (2 * math.pi)
    return _Draws(order, flips, angles)


def _train_epoch(
    net,
    model: LocalCSPNet,
    opt,
    train: Examples,
    draws: _Draws,
    steps: range,
    run: _Progress,
    ckpt: Path,
    config: LocalTrainConfig,
    info,
    device,
    bar,
) -> list[float]:
    """The epoch's optimizer ``steps`` (this rank's share of each batch); checkpoints every
    ``checkpoint_every`` steps. Returns the batches' losses."""
    per_rank = config.batch // info.world
    total = config.epochs * steps.stop
    model.train()
    losses = []
    for s in steps:
        idx = draws.order[s * config.batch + info.rank * per_rank : s * config.batch + (info.rank + 1) * per_rank]
        loss = _batch_loss(net, train, idx, draws, device)
        for g in opt.param_groups:
            g["lr"] = config.lr * (0.05 + 0.95 * 0.5 * (1 + math.cos(math.pi * min(1.0, run.step / total))))
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        run.step += 1
        losses.append(float(loss.detach()))
        if bar is not None:
            bar(s + 1, steps.stop)
        if info.is_main and run.step % config.checkpoint_every == 0:
            _checkpoint(ckpt, model, opt, run.history, run.step, run.best)
    return losses


def _batch_loss(net, train: Examples, idx: torch.Tensor, draws: _Draws, device) -> torch.Tensor:
    """Mean CSP error of the examples ``idx``, each turned and mirrored by its draws."""
    pts = torch.from_numpy(train.points[idx.numpy()]).to(device)
    tgt = torch.from_numpy(train.targets[idx.numpy()]).to(device)
    # the frame's tangents and the normal's sign are not well defined where the
    # neighbourhood is nearly symmetric: turn and mirror at random, so all are learned
    rot = _turn_and_mirror(draws.angles[idx], draws.flips[idx]).to(device)
    return csp_error(net(pts @ rot), (tgt[:, None] @ rot)[:, 0]).mean()


def _close_epoch(
    model: LocalCSPNet,
    opt,
    val: Examples,
    rec: dict,
    run: _Progress,
    run_dir: Path,
    ckpt: Path,
    config: LocalTrainConfig,
    meta: dict,
    device,
) -> None:
    """Rank 0 at an epoch's end: validate (into ``rec``), keep the model if it is the best so far,
    checkpoint and write the history."""
    rec.update({f"val_{k}": v for k, v in evaluate(model, val, device).items()})
    if rec["val_csp_error"] < run.best:
        run.best = rec["val_csp_error"]
        save_local_model(
            run_dir / "model.safetensors",
            model,
            {**meta, "epoch": rec["epoch"], "val_csp_error": run.best, "config": asdict(config)},
        )
    run.history.append(rec)
    _checkpoint(ckpt, model, opt, run.history, run.step, run.best)
    write_text(run_dir / "history.json", json.dumps(run.history, indent=1))


def _turn_and_mirror(angles: torch.Tensor, flips: torch.Tensor) -> torch.Tensor:
    """``(B, 3, 3)`` row-vector transforms: a turn by ``angles`` about the normal (z), then z times ``flips``."""
    c, s = torch.cos(angles), torch.sin(angles)
    rot = torch.zeros(len(angles), 3, 3)
    rot[:, 0, 0], rot[:, 0, 1], rot[:, 1, 0], rot[:, 1, 1] = c, s, -s, c
    rot[:, 2, 2] = flips[:, 0]
    return rot


def _checkpoint(path: Path, model: LocalCSPNet, opt, history: list, step: int, best: float) -> None:
    tensors = {f"model.{k}": v for k, v in model.state_dict().items()}
    ot, oinfo = optimizer_tensors(opt)
    tensors.update(ot)
    save_checkpoint(path, tensors, {"history": history, "step": step, "best": best, "optimizer": oinfo})
