"""Training data for point-cloud-conditioned fields.

* :func:`prepare` turns a folder of meshes (and optional procedural shapes) into one ``.npz``
  record per shape: the normalised mesh, surface samples (input clouds are drawn from them) and
  query points (near the surface at several scales and uniform in the cube) with their exact
  closest points. Work runs in parallel (``concurrent.futures``); records are written atomically
  and existing ones are skipped, so an interrupted run resumes; bad files are skipped and reported.
* :class:`RecordDataset` serves augmented examples: random rotations and scales, partial crops
  and noise on the input cloud; the example is renormalised from its input cloud exactly as at
  inference time.
"""

from __future__ import annotations

import fnmatch
import io
import json
from concurrent.futures import Future, ProcessPoolExecutor, ThreadPoolExecutor
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Callable

import numpy as np
import torch

from deepcsp._validate import Fields, OptionError
from deepcsp.errors import DeepCSPError
from deepcsp.train.procedural import _random_rotation

MESH_SUFFIXES = (".obj", ".ply", ".off", ".stl", ".glb", ".gltf")
RECORD_KEYS = (
    "vertices",
    "faces",
    "surface_points",
    "surface_normals",
    "queries",
    "closest",
    "distances",
    "query_kind",
)


@dataclass(frozen=True)
class PrepareConfig:
    """How records are made (normalised units: the longest side fills ``constants.FILL`` of the cube [-0.5, 0.5]^3)."""

    n_surface: int = 10_000
    """Surface samples per shape (input clouds are drawn from them)."""
    near_scales: tuple[float, ...] = (0.005, 0.02, 0.06)
    """Standard deviations of Gaussian offsets of near-surface queries."""
    n_near_per_scale: int = 10_000
    """Near-surface queries per scale."""
    n_uniform: int = 10_000
    """Uniform queries in the cube."""
    seed: int = 0
    """Seed of the samples (per record it is mixed with the record's index)."""

    def __post_init__(self) -> None:
        f = Fields(self)
        f.integer("n_surface", 1, 10**7)
        f.numbers("near_scales", 0.0, 10.0, min_open=True, min_len=0, max_len=64)
        f.integer("n_near_per_scale", 0, 10**7)
        f.integer("n_uniform", 0, 10**7)
        f.integer("seed", 0, 2**63 - 1)
        if len(self.near_scales) * self.n_near_per_scale + self.n_uniform == 0:
            raise OptionError("PrepareConfig.n_uniform", "and n_near_per_scale give no query points; ask for some")


@dataclass
class PrepareReport:
    """What :func:`prepare` did: records ``written``, ``skipped`` (already there) and ``failed``
    (``(source, message)`` pairs), plus the ``index`` path."""

    written: list[str] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)
    failed: list[tuple[str, str]] = field(default_factory=list)
    index: Path | None = None


@dataclass(frozen=True)
class _Job:
    name: str
    source: str  # a mesh path, or "procedural:<seed>:<i>"
    seed: int


def record_name(root: Path, path: Path) -> str:
    """Record name of a mesh file: its path below ``root`` with ``/`` as ``__``, suffix dropped."""
    rel = path.relative_to(root).with_suffix("")
    return "__".join(rel.parts)


def list_meshes(mesh_dir: str | Path, exclude: tuple[str, ...] = ()) -> list[Path]:
    """Mesh files below ``mesh_dir`` (recursive, sorted), leaving out relative paths matching ``exclude`` globs."""
    root = Path(mesh_dir)
    if not root.is_dir():
        raise DeepCSPError("mesh folder not found", root)
    out = []
    for p in sorted(root.rglob("*")):
        rel = str(p.relative_to(root))
        if p.is_file() and p.suffix.lower() in MESH_SUFFIXES and not any(fnmatch.fnmatch(rel, g) for g in exclude):
            out.append(p)
    return out


def make_record(vertices: np.ndarray, faces: np.ndarray, config: PrepareConfig, seed: int) -> dict[str, np.ndarray]:
    """One record (arrays named as in :data:`RECORD_KEYS`) of a mesh ``vertices : (V, 3)``,
    ``faces : (F, 3)`` given in any units; everything is stored normalised."""
    from deepcsp.geometry.closest import MeshOracle
    from deepcsp.geometry.normalize import Normalization
    from deepcsp.geometry.sampling import sample_surface

    v = np.asarray(vertices, np.float64)
    f = np.asarray(faces, np.int64)
    if v.ndim != 2 or v.shape[1] != 3 or f.ndim != 2 or f.shape[1] != 3 or len(f) == 0:
        raise ValueError(f"need vertices (V, 3) and faces (F, 3), got {v.shape} and {f.shape}")
    v = Normalization.from_points(v).to_normalized(v)
    rng = np.random.default_rng([config.seed, seed])
    surf = sample_surface(v, f, config.n_surface, rng)
    base = sample_surface(v, f, config.n_near_per_scale * len(config.near_scales), rng).points
    sig = np.repeat(np.asarray(config.near_scales, np.float64), config.n_near_per_scale)
    near = base + rng.normal(size=base.shape) * sig[:, None]
    uni = rng.uniform(-0.5, 0.5, (config.n_uniform, 3))
    q = np.concatenate([near, uni])
    cp = MeshOracle(v, f).query(q)
    kind = np.concatenate([np.ones(len(near)), np.full(len(uni), 2)]).astype(np.int8)
    return {
        "vertices": v.astype(np.float32),
        "faces": f.astype(np.int32),
        "surface_points": surf.points.astype(np.float32),
        "surface_normals": surf.normals.astype(np.float32),
        "queries": q.astype(np.float32),
        "closest": cp.points.astype(np.float32),
        "distances": cp.distances.astype(np.float32),
        "query_kind": kind,
    }


def _load_source(source: str):
    if source.startswith("procedural:"):
        from deepcsp.train.procedural import KINDS, make_shape

        _, seed, i = source.split(":")
        return make_shape(KINDS[int(i) % len(KINDS)], np.random.default_rng([int(seed), int(i)]))
    from deepcsp.io import load_surface

    surface = load_surface(source)
    if surface.faces is None:
        raise DeepCSPError("is a point cloud; training records need a mesh", source)
    return surface.vertices, surface.faces


def _run_job(job: _Job, out_dir: str, config: PrepareConfig) -> tuple[str, str, str]:
    """Worker: ``(name, status, message)``, status in ok / failed. Never raises for bad input."""
    from deepcsp._atomic import write_bytes

    try:
        v, f = _load_source(job.source)
        rec = make_record(v, f, config, job.seed)
    except DeepCSPError as exc:
        return job.name, "failed", str(exc)
    except (ValueError, MemoryError) as exc:
        return job.name, "failed", f"{job.source}: {str(exc).splitlines()[0][:200]}"
    buf = io.BytesIO()
    np.savez(buf, **rec)
    write_bytes(Path(out_dir) / "records" / f"{job.name}.npz", buf.getvalue())
    return job.name, "ok", ""


def prepare(
    mesh_dir: str | Path | None,
    out_dir: str | Path,
    config: PrepareConfig = PrepareConfig(),
    n_procedural: int = 0,
    procedural_seed: int = 0,
    exclude: tuple[str, ...] = (),
    workers: int = 1,
    on_done: Callable[[str, str, str], None] | None = None,
) -> PrepareReport:
    """Write ``out_dir/records/<name>.npz`` for each mesh below ``mesh_dir`` and ``n_procedural``
    procedural shapes; skip records that exist; ``on_done(name, status, message)`` is called as
    each finishes (status: ok, skipped, failed). Writes ``out_dir/index.json``."""
    out = Path(out_dir)
    (out / "records").mkdir(parents=True, exist_ok=True)
    jobs: list[_Job] = []
    if mesh_dir is not None:
        root = Path(mesh_dir)
        for k, p in enumerate(list_meshes(root, exclude)):
            jobs.append(_Job(record_name(root, p), str(p), k))
    for i in range(n_procedural):
        from deepcsp.train.procedural import KINDS

        jobs.append(
            _Job(
                f"proc_{procedural_seed}_{i:04d}_{KINDS[i % len(KINDS)]}",
                f"procedural:{procedural_seed}:{i}",
                100_000 + i,
            )
        )
    names = [j.name for j in jobs]
    if len(set(names)) != len(names):
        raise DeepCSPError("two meshes map to the same record name (same path, different suffix?)", mesh_dir)
    report = PrepareReport()
    todo = []
    for j in jobs:
        if (out / "records" / f"{j.name}.npz").exists():
            report.skipped.append(j.name)
            if on_done:
                on_done(j.name, "skipped", "")
        else:
            todo.append(j)
    pool_cls = ProcessPoolExecutor if workers > 1 else ThreadPoolExecutor
    with pool_cls(max_workers=max(1, workers)) as pool:
        futures: list[Future] = [pool.submit(_run_job, j, str(out), config) for j in todo]
        for fut in futures:
            name, status, msg = fut.result()
            if status == "ok":
                report.written.append(name)
            else:
                report.failed.append((name, msg))
            if on_done:
                on_done(name, status, msg)
    existing = sorted(p.stem for p in (out / "records").glob("*.npz"))
    index = {"records": existing, "config": asdict(config), "failed": [list(x) for x in report.failed]}
    from deepcsp._atomic import write_text

    write_text(out / "index.json", json.dumps(index, indent=1))
    report.index = out / "index.json"
    return report


def list_records(data_dir: str | Path) -> list[Path]:
    """Record files of a prepared data folder (sorted); DeepCSPError when there are none."""
    d = Path(data_dir)
    recs = sorted((d / "records").glob("*.npz"))
    if not recs:
        raise DeepCSPError("holds no training records (run `deepcsp prepare` first)", d)
    return recs


def load_record(path: str | Path) -> dict[str, np.ndarray]:
    """Arrays of one record; DeepCSPError when unreadable or incomplete."""
    try:
        with np.load(path, allow_pickle=False) as z:
            rec = {k: z[k] for k in RECORD_KEYS}
    except Exception as exc:
        raise DeepCSPError(f"is not a readable training record ({str(exc).splitlines()[0][:120]})", path) from None
    return rec


@dataclass(frozen=True)
class AugmentConfig:
    """Augmentation of training examples (applied in this order)."""

    rotate: bool = True
    """Random rotation (uniform on SO(3))."""
    scale: tuple[float, float] = (0.8, 1.0)
    """After renormalising from the input cloud, a random extra scale in this range."""
    crop_probability: float = 0.3
    """Chance of a partial crop: input points in a random ball are removed (targets are not)."""
    crop_radius: tuple[float, float] = (0.08, 0.2)
    """Radius range of the crop ball (normalised units)."""
    noise: float = 0.003
    """Maximum standard deviation of Gaussian noise on the input points (drawn per example)."""

    def __post_init__(self) -> None:
        f = Fields(self)
        f.flag("rotate")
        f.number_range("scale", 0.0, 10.0, min_open=True)
        f.number("crop_probability", 0.0, 1.0)
        f.number_range("crop_radius", 0.0, 10.0)
        f.number("noise", 0.0, 1.0)


NO_AUGMENT = AugmentConfig(rotate=False, scale=(1.0, 1.0), crop_probability=0.0, noise=0.0)


def _rotation(rng: np.random.Generator) -> np.ndarray:
    return _random_rotation(rng)


@dataclass
class Example:
    """One training example (normalised from its input cloud): ``cloud : (N, 3)``,
    ``queries : (M, 3)``, ``closest : (M, 3)``, ``distances : (M,)``."""

    cloud: np.ndarray
    queries: np.ndarray
    closest: np.ndarray
    distances: np.ndarray


def make_example(
    rec: dict[str, np.ndarray], n_input: int, n_query: int, augment: AugmentConfig, rng: np.random.Generator
) -> Example:
    """Draw an input cloud of ``n_input`` points and ``n_query`` queries from a record, augmented."""
    from deepcsp.geometry.normalize import Normalization

    sp = rec["surface_points"].astype(np.float64)
    idx = rng.choice(len(sp), size=min(len(sp), max(n_input * 2, n_input)), replace=False)
    pts = sp[idx]
    if augment.crop_probability > 0 and rng.random() < augment.crop_probability:
        centre = pts[rng.integers(len(pts))]
        keep = np.linalg.norm(pts - centre, axis=1) > rng.uniform(*augment.crop_radius)
        if keep.sum() >= max(16, len(pts) // 3):
            pts = pts[keep]
    pts = pts[rng.choice(len(pts), size=n_input, replace=len(pts) < n_input)]
    qi = rng.choice(len(rec["queries"]), size=n_query, replace=len(rec["queries"]) < n_query)
    q, cp = rec["queries"][qi].astype(np.float64), rec["closest"][qi].astype(np.float64)
    if augment.rotate:
        r = _rotation(rng)
        pts, q, cp = pts @ r.T, q @ r.T, cp @ r.T
    if augment.noise > 0:
        pts = pts + rng.normal(size=pts.shape) * rng.uniform(0, augment.noise)
    norm = Normalization.from_points(pts)
    s = rng.uniform(*augment.scale)
    pts, q, cp = (norm.to_normalized(a) * s for a in (pts, q, cp))
    return Example(
        cloud=pts.astype(np.float32),
        queries=q.astype(np.float32),
        closest=cp.astype(np.float32),
        distances=np.linalg.norm(q - cp, axis=1).astype(np.float32),
    )


class RecordDataset(torch.utils.data.Dataset):
    """Records held in memory; item ``i`` of epoch ``e`` is augmented with a generator seeded by
    ``(seed, e, i)``, so every rank and every resumed run sees the same examples."""

    def __init__(self, paths: list[Path], n_input: int, n_query: int, augment: AugmentConfig, seed: int = 0):
        self.paths = list(paths)
        self.records = [load_record(p) for p in self.paths]
        self.n_input, self.n_query, self.augment, self.seed = n_input, n_query, augment, seed
        self.epoch = 0

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def __len__(self) -> int:
        return len(self.records)

    def __getitem__(self, i: int) -> dict[str, torch.Tensor]:
        ex = make_example(
            self.records[i], self.n_input, self.n_query, self.augment, np.random.default_rng([self.seed, self.epoch, i])
        )
        return {k: torch.from_numpy(getattr(ex, k)) for k in ("cloud", "queries", "closest", "distances")}
