"""Training of point-cloud-conditioned fields with plain PyTorch and DistributedDataParallel.

One process by default. Under ``torchrun`` (``RANK``/``WORLD_SIZE`` set) every process joins a
process group (gloo on CPU, nccl on CUDA), takes its share of each batch through a
:class:`~torch.utils.data.distributed.DistributedSampler` (per-rank batch = batch / world size,
so the effective batch and the examples of every step are the same for any world size) and DDP
averages the gradients. Rank 0 writes atomic checkpoints (model + optimizer + progress), the
history, a loss plot and the final model; rerunning the same command resumes from the checkpoint.
"""

from __future__ import annotations

import json
import math
import os
import time
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Iterator, Literal

import numpy as np
import torch

from deepcsp._checkpoint import load_checkpoint, load_optimizer, optimizer_tensors, save_checkpoint
from deepcsp._validate import Fields, OptionError
from deepcsp.errors import DeepCSPError
from deepcsp.fields.conditional import ConditionalConfig, ConditionalModel, save_model
from deepcsp.train.data import NO_AUGMENT, AugmentConfig, RecordDataset, list_records, make_example


@dataclass
class TrainConfig:
    """Training of a reconstruction model (sizes in normalised units)."""

    model: ConditionalConfig = field(default_factory=ConditionalConfig)
    augment: AugmentConfig = field(default_factory=AugmentConfig)
    epochs: int = 100
    """Passes over the training records."""
    max_steps: int = 0
    """Stop after this many optimizer steps in total (0: no limit)."""
    max_seconds: float = 0.0
    """Stop (with a checkpoint and a model) after this much training wall time in this run (0: no limit)."""
    batch: int = 8
    """Effective batch: shapes per optimizer step summed over all processes."""
    n_input: int = 3000
    """Points per input cloud."""
    n_query: int = 1024
    """Query points per shape and step."""
    lr: float = 1e-3
    """Adam learning rate (cosine decay to 10% over ``epochs``)."""
    csp_loss: Literal["mse", "relative"] = "relative"
    """``mse``: mean |CSP(x) - CSP*(x)|^2 (the paper); ``relative``: mean |CSP(x) - CSP*(x)| /
    (d*(x) + 0.01), which weights queries near the surface up (benchmarks/RESULTS.md compares them)."""
    val_count: int = 2
    """Records held out for validation (chosen by a seeded shuffle) unless ``val_names`` is set."""
    val_names: tuple[str, ...] = ()
    """Record names used for validation (overrides ``val_count``)."""
    checkpoint_every: int = 50
    """Optimizer steps between checkpoints (also written at every epoch end)."""
    seed: int = 0
    device: str = "auto"
    """``auto`` (cuda when available), ``cpu`` or ``cuda``."""
    threads: int = 0
    """torch CPU threads per process (0: leave torch's default)."""

    def __post_init__(self) -> None:
        f = Fields(self)
        for name, cls in (("model", ConditionalConfig), ("augment", AugmentConfig)):
            if not isinstance(getattr(self, name), cls):
                raise OptionError(
                    f"TrainConfig.{name}", f"must be a {cls.__name__}, got {type(getattr(self, name)).__name__}"
                )
        f.integer("epochs", 1, 10**7)
        f.integer("max_steps", 0, 10**9)
        f.number("max_seconds", 0.0, 1e8)
        f.integer("batch", 1, 4096)
        f.integer("n_input", 1, 10**6)
        f.integer("n_query", 1, 10**6)
        f.number("lr", 0.0, 10.0, min_open=True)
        f.literal("csp_loss")
        f.integer("val_count", 0, 10**6)
        if isinstance(self.val_names, str) or not all(isinstance(n, str) and n for n in self.val_names):
            raise OptionError("TrainConfig.val_names", f"must be record names, got {self.val_names!r}")
        f.integer("checkpoint_every", 1, 10**9)
        f.integer("seed", 0, 2**63 - 1)
        f.device("device", allow_auto=True)
        f.integer("threads", 0, 1024)

    def to_dict(self) -> dict:
        d = asdict(self)
        d["val_names"] = list(self.val_names)
        return d


@dataclass
class DistInfo:
    """Rank, world size and local rank of this process (1 process: 0, 1, 0)."""

    rank: int
    world: int
    local_rank: int

    @property
    def is_main(self) -> bool:
        return self.rank == 0


def dist_info() -> DistInfo:
    """Read torchrun's environment (``RANK``, ``WORLD_SIZE``, ``LOCAL_RANK``)."""
    return DistInfo(
        int(os.environ.get("RANK", 0)), int(os.environ.get("WORLD_SIZE", 1)), int(os.environ.get("LOCAL_RANK", 0))
    )


@dataclass
class TrainResult:
    """What a run did: ``steps`` (total, including resumed ones), ``epochs`` completed, the
    per-epoch ``history``, throughput in shapes (``samples_per_s``) and queries per second of
    this run's training time, the ``model`` path (rank 0), whether it ``resumed`` and
    ``finished`` all epochs, and the trained ``module`` (on every rank)."""

    steps: int
    epochs: int
    history: list[dict]
    samples_per_s: float
    queries_per_s: float
    seconds: float
    world: int
    model: Path | None
    resumed: bool
    finished: bool
    module: ConditionalModel | None = None


def split_records(paths: list[Path], config: TrainConfig) -> tuple[list[Path], list[Path]]:
    """Train and validation record paths."""
    if config.val_names:
        names = set(config.val_names)
        missing = names - {p.stem for p in paths}
        if missing:
            raise DeepCSPError(f"validation records not found: {sorted(missing)}")
        return [p for p in paths if p.stem not in names], [p for p in paths if p.stem in names]
    order = np.random.default_rng(config.seed).permutation(len(paths))
    k = min(config.val_count, max(0, len(paths) - 1))
    val = sorted(paths[i] for i in order[:k])
    return [p for p in paths if p not in val], val


def loss_fn(
    model_kind: str,
    pred: torch.Tensor,
    closest: torch.Tensor,
    distances: torch.Tensor,
    clamp: float,
    csp_loss: str = "mse",
) -> torch.Tensor:
    """csp: mean squared error of the closest point ``|CSP(x) - CSP*(x)|^2`` (the paper's MSE) or
    the ``relative`` error ``|CSP(x) - CSP*(x)| / (d*(x) + 0.01)``;
    udf: L1 to the distance clamped at ``clamp`` (NDF clamps both sides; clamping the prediction
    too leaves no gradient once it overshoots, which stalled training here)."""
    if model_kind == "csp":
        if csp_loss == "relative":
            return ((pred - closest).norm(dim=-1) / (distances + 0.01)).mean()
        return ((pred - closest) ** 2).sum(-1).mean()
    return (pred - distances.clamp(max=clamp)).abs().mean()


def validate(
    model: ConditionalModel, records: list[dict], config: TrainConfig, device: torch.device, n_query: int = 4096
) -> dict:
    """Closest-point errors (normalised units) on fixed, unaugmented examples of ``records``:
    ``val_csp_mean`` over all queries, ``val_csp_near`` over near-surface queries (distance < 0.05),
    ``val_csp_median``."""
    if not records:
        return {}
    errs, near = [], []
    model.eval()
    for k, rec in enumerate(records):
        ex = make_example(rec, config.n_input, n_query, NO_AUGMENT, np.random.default_rng([config.seed, 10**6, k]))
        cloud = torch.from_numpy(ex.cloud).to(device)[None]
        q = torch.from_numpy(ex.queries).to(device)[None]
        with torch.no_grad():
            latent = model.encode(cloud)
        cp = model.closest_points(latent, q)[0].detach().cpu().numpy()
        e = np.linalg.norm(cp - ex.closest, axis=1)
        errs.append(e)
        near.append(e[ex.distances < 0.05])
    model.train()
    allv, nearv = np.concatenate(errs), np.concatenate(near)
    return {
        "val_csp_mean": float(allv.mean()),
        "val_csp_median": float(np.median(allv)),
        "val_csp_near": float(nearv.mean()) if len(nearv) else float("nan"),
    }


def plot_history(history: list[dict], path: Path) -> None:
    """Loss (per epoch) and validation errors against optimizer steps, as a PNG (atomic)."""
    import matplotlib

    matplotlib.use("Agg", force=False)
    from matplotlib.figure import Figure

    from deepcsp._atomic import atomic_path

    fig = Figure(figsize=(6, 3.5), dpi=100)
    ax = fig.add_subplot(111)
    steps = [h["step"] for h in history]
    ax.semilogy(steps, [h["train_loss"] for h in history], label="train loss")
    for key in ("val_csp_mean", "val_csp_near"):
        if history and key in history[0]:
            ax.semilogy(steps, [h[key] for h in history], label=key)
    ax.set_xlabel("step")
    ax.legend()
    ax.grid(True, alpha=0.3)
    fig.tight_layout()
    with atomic_path(path) as tmp:
        fig.savefig(tmp, format="png")


def training_device(want: str, info: DistInfo) -> torch.device:
    """The device of this process for a training run asked to run on ``want`` (``auto``, ``cpu``,
    ``cuda`` or ``cuda:N``): ``auto`` takes CUDA when it is available; under torchrun each process
    takes ``cuda:LOCAL_RANK``, so ``cuda:N`` names a device only for a single process, and there
    must be a GPU per process."""
    if want == "auto":
        want = "cuda" if torch.cuda.is_available() else "cpu"
    if want == "cpu":
        return torch.device("cpu")
    if not torch.cuda.is_available():
        raise DeepCSPError(f"device {want!r} requested but CUDA is not available")
    _, _, index = want.partition(":")
    if index and info.world > 1:
        raise DeepCSPError(
            f"device {want!r} names one GPU but {info.world} processes run; use 'cuda' (each process takes "
            "cuda:LOCAL_RANK)"
        )
    n = torch.cuda.device_count()
    gpu = int(index) if index else info.local_rank
    if gpu >= n:
        raise DeepCSPError(
            f"process {info.rank} (LOCAL_RANK {info.local_rank}) needs CUDA device {gpu} but {n} are visible; "
            "run at most one process per GPU (torchrun --nproc_per_node) or use --config.device cpu"
        )
    torch.cuda.set_device(gpu)
    return torch.device("cuda", gpu)


@contextmanager
def training_process(batch: int, threads: int, device: str) -> Iterator[tuple[DistInfo, torch.device]]:
    """This process's part of a training run (``deepcsp train`` and ``train-local``): torchrun's
    ranks (:func:`dist_info`), with ``batch`` checked to split evenly over them, torch's CPU
    ``threads`` (0: its default), the device (:func:`training_device`) and, when several processes
    run and no process group exists yet, the group (nccl on CUDA, gloo otherwise), destroyed on exit."""
    import torch.distributed as dist

    info = dist_info()
    if batch % info.world != 0:
        raise DeepCSPError(f"batch {batch} is not divisible by the number of processes {info.world}")
    if threads > 0:
        torch.set_num_threads(threads)
    dev = training_device(device, info)
    owns = info.world > 1 and not dist.is_initialized()
    if owns:
        dist.init_process_group(backend="nccl" if dev.type == "cuda" else "gloo")
    try:
        yield info, dev
    finally:
        if owns:
            dist.destroy_process_group()


def train(
    data_dir: str | Path, run_dir: str | Path, config: TrainConfig = TrainConfig(), progress: bool = False
) -> TrainResult:
    """Train (or resume training) a reconstruction model on the records in ``data_dir``; outputs in
    ``run_dir``: ``checkpoint.safetensors``, ``history.json``, ``loss.png``, ``model.safetensors``.

    Runs distributed when launched by torchrun (see module docstring)."""
    with training_process(config.batch, config.threads, config.device) as (info, device):
        return _train(data_dir, Path(run_dir), config, progress, info, device)


@dataclass
class _Run:
    """The fixed parts of one training run."""

    config: TrainConfig
    info: DistInfo
    device: torch.device
    run_dir: Path
    train_paths: list[Path]
    val_paths: list[Path]
    dataset: RecordDataset
    val_records: list[dict]
    """Validation records (rank 0 only)."""
    model: ConditionalModel
    net: torch.nn.Module
    """``model`` wrapped in DDP when there are several processes, ``model`` itself otherwise."""
    opt: torch.optim.Optimizer
    sampler: object
    """The DistributedSampler that shares each epoch's examples out among the processes."""
    steps_per_epoch: int

    @property
    def checkpoint_path(self) -> Path:
        return self.run_dir / "checkpoint.safetensors"

    def lr_at(self, step: int) -> float:
        """Cosine decay from ``lr`` to 10% of it over all epochs."""
        t = min(1.0, step / max(1, self.config.epochs * self.steps_per_epoch))
        return self.config.lr * (0.1 + 0.9 * 0.5 * (1 + math.cos(math.pi * t)))


@dataclass
class _Progress:
    """Where training stands (what a checkpoint stores) and this run's counters."""

    epoch: int = 0
    step_in_epoch: int = 0
    global_step: int = 0
    history: list[dict] = field(default_factory=list)
    resumed: bool = False
    shapes_done: int = 0
    """Shapes trained on in this run (all processes)."""
    train_seconds: float = 0.0
    """Wall time of this run's optimisation steps."""
    stop: bool = False
    """``max_steps`` or ``max_seconds`` reached."""
    t_start: float = 0.0


def _train(
    data_dir, run_dir: Path, config: TrainConfig, progress: bool, info: DistInfo, device: torch.device
) -> TrainResult:
    run, state = _open_run(data_dir, run_dir, config, info, device)
    bar = _progress_bar(run, state) if progress and info.is_main else None
    state.t_start = time.perf_counter()
    run.model.train()
    while state.epoch < config.epochs and not state.stop:
        _train_epoch(run, state, bar)
    if bar is not None:
        bar.close()
    return _finish(run, state)


def _open_run(
    data_dir, run_dir: Path, config: TrainConfig, info: DistInfo, device: torch.device
) -> tuple[_Run, _Progress]:
    """Records, dataset, model and optimizer (resumed from the checkpoint when there is one), the
    DDP wrapper and the sampler."""
    from torch.nn.parallel import DistributedDataParallel as DDP
    from torch.utils.data.distributed import DistributedSampler

    paths = list_records(data_dir)
    train_paths, val_paths = split_records(paths, config)
    if len(train_paths) < config.batch:
        raise DeepCSPError(f"has {len(train_paths)} training records, fewer than one batch of {config.batch}", data_dir)
    ds = RecordDataset(train_paths, config.n_input, config.n_query, config.augment, seed=config.seed)
    val_records = [ds_rec for ds_rec in RecordDataset(val_paths, 1, 1, NO_AUGMENT).records] if info.is_main else []
    torch.manual_seed(config.seed)
    model = ConditionalModel(config.model).to(device)
    opt = torch.optim.Adam(model.parameters(), lr=config.lr)
    state = _resume(run_dir / "checkpoint.safetensors", config, model, opt)
    net = DDP(model) if info.world > 1 else model
    sampler = DistributedSampler(
        ds, num_replicas=info.world, rank=info.rank, shuffle=True, seed=config.seed, drop_last=True
    )
    run = _Run(
        config,
        info,
        device,
        run_dir,
        train_paths,
        val_paths,
        ds,
        val_records,
        model,
        net,
        opt,
        sampler,
        len(ds) // config.batch,
    )
    return run, state


def _resume(ckpt_path: Path, config: TrainConfig, model: ConditionalModel, opt: torch.optim.Optimizer) -> _Progress:
    """Load the model and optimizer from the checkpoint, when there is one; where training stands."""
    if not ckpt_path.exists():
        return _Progress()
    tensors, meta = load_checkpoint(ckpt_path)
    if meta.get("model_config") != config.model.to_dict() or meta.get("batch") != config.batch:
        raise DeepCSPError(
            "checkpoint was written with a different model or batch; use another RUN_DIR or delete it", ckpt_path
        )
    model.load_state_dict({k[6:]: v for k, v in tensors.items() if k.startswith("model.")})
    load_optimizer(opt, tensors, meta["optimizer"])
    return _Progress(meta["epoch"], meta["step_in_epoch"], meta["global_step"], meta["history"], resumed=True)


def _progress_bar(run: _Run, state: _Progress):
    from tqdm import tqdm

    total = run.config.epochs * run.steps_per_epoch
    return tqdm(
        total=total if not run.config.max_steps else min(total, run.config.max_steps),
        initial=state.global_step,
        unit="step",
        dynamic_ncols=True,
    )


def _train_epoch(run: _Run, state: _Progress, bar) -> None:
    """The rest of the current epoch (all of it unless resumed mid-epoch or stopped), then, when
    it is complete, its history entry, a checkpoint and the outputs."""
    from torch.utils.data import DataLoader

    per_rank = run.config.batch // run.info.world
    run.sampler.set_epoch(state.epoch)
    run.dataset.set_epoch(state.epoch)
    order = list(run.sampler)
    batches = [order[i * per_rank : (i + 1) * per_rank] for i in range(run.steps_per_epoch)]
    loader = DataLoader(run.dataset, batch_sampler=batches[state.step_in_epoch :], num_workers=0)
    losses: list[float] = []
    t0 = time.perf_counter()
    for batch in loader:
        losses.append(_train_step(run, state, batch))
        if bar is not None:
            bar.update(1)
            bar.set_postfix(epoch=state.epoch, loss=f"{losses[-1]:.3g}")
        state.stop = _should_stop(run, state)
        if state.stop or state.global_step % run.config.checkpoint_every == 0:
            _write_checkpoint(run, state)
        if state.stop:
            break
    state.train_seconds += time.perf_counter() - t0
    if state.step_in_epoch >= run.steps_per_epoch:
        _end_epoch(run, state, losses)


def _train_step(run: _Run, state: _Progress, batch: dict) -> float:
    """One optimizer step on ``batch``; returns its loss."""
    config, device = run.config, run.device
    for g in run.opt.param_groups:
        g["lr"] = run.lr_at(state.global_step)
    cloud, q = batch["cloud"].to(device), batch["queries"].to(device)
    pred = run.net(cloud, q)
    loss = loss_fn(
        config.model.kind,
        pred,
        batch["closest"].to(device),
        batch["distances"].to(device),
        config.model.udf_clamp,
        config.csp_loss,
    )
    run.opt.zero_grad(set_to_none=True)
    loss.backward()
    run.opt.step()
    state.global_step += 1
    state.step_in_epoch += 1
    state.shapes_done += config.batch
    return float(loss.detach())


def _should_stop(run: _Run, state: _Progress) -> bool:
    """``max_steps`` or ``max_seconds`` reached on any process (all processes stop together)."""
    config = run.config
    want_stop = (config.max_steps and state.global_step >= config.max_steps) or (
        config.max_seconds and time.perf_counter() - state.t_start >= config.max_seconds
    )
    flag = torch.tensor([1.0 if want_stop else 0.0], device=run.device)
    if run.info.world > 1:
        import torch.distributed as dist

        dist.all_reduce(flag, op=dist.ReduceOp.MAX)
    return flag.item() > 0


def _write_checkpoint(run: _Run, state: _Progress) -> None:
    """Model, optimizer and progress, atomically (rank 0 only)."""
    if not run.info.is_main:
        return
    config = run.config
    ot, oinfo = optimizer_tensors(run.opt)
    tensors = {f"model.{k}": v for k, v in run.model.state_dict().items()} | ot
    meta = {
        "epoch": state.epoch,
        "step_in_epoch": state.step_in_epoch,
        "global_step": state.global_step,
        "history": state.history,
        "optimizer": oinfo,
        "model_config": config.model.to_dict(),
        "batch": config.batch,
        "config": config.to_dict(),
    }
    save_checkpoint(run.checkpoint_path, tensors, meta)


def _end_epoch(run: _Run, state: _Progress, losses: list[float]) -> None:
    """History entry (mean loss, validation errors), checkpoint and outputs of a completed epoch."""
    info = run.info
    if info.is_main:
        loss_mean = float(np.mean(losses)) if losses else float("nan")
        entry = {
            "epoch": state.epoch,
            "step": state.global_step,
            "train_loss": loss_mean,
            "seconds": time.perf_counter() - state.t_start,
        }
        entry.update(validate(run.model, run.val_records, run.config, run.device))
        state.history.append(entry)
    state.epoch += 1
    state.step_in_epoch = 0
    _write_checkpoint(run, state)
    if info.is_main:
        _write_outputs(run.run_dir, state.history)
    if info.world > 1:
        import torch.distributed as dist

        dist.barrier()


def _finish(run: _Run, state: _Progress) -> TrainResult:
    """Outputs and the final model (rank 0), and what the run did."""
    config, info = run.config, run.info
    model_path = None
    if info.is_main:
        _write_outputs(run.run_dir, state.history)
        meta = {
            "train_config": config.to_dict(),
            "steps": state.global_step,
            "epochs": state.epoch,
            "world": info.world,
            "train_records": [p.stem for p in run.train_paths],
            "val_records": [p.stem for p in run.val_paths],
            "history": state.history[-3:],
        }
        model_path = save_model(run.run_dir / "model.safetensors", run.model, meta=meta)
    if info.world > 1:
        import torch.distributed as dist

        dist.barrier()
    seconds = state.train_seconds
    return TrainResult(
        steps=state.global_step,
        epochs=state.epoch,
        history=state.history,
        samples_per_s=state.shapes_done / seconds if seconds > 0 else float("nan"),
        queries_per_s=state.shapes_done * config.n_query / seconds if seconds > 0 else float("nan"),
        seconds=time.perf_counter() - state.t_start,
        world=info.world,
        model=model_path,
        resumed=state.resumed,
        finished=state.epoch >= config.epochs,
        module=run.model,
    )


def _write_outputs(run_dir: Path, history: list[dict]) -> None:
    from deepcsp._atomic import write_text

    write_text(run_dir / "history.json", json.dumps(history, indent=1))
    if history:
        plot_history(history, run_dir / "loss.png")
