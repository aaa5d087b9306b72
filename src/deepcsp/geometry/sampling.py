"""Training and evaluation samples with exact closest points.

All coordinates here are normalised (see :class:`deepcsp.geometry.normalize.Normalization`);
every function takes an explicit ``numpy.random.Generator`` or seed.
"""

from __future__ import annotations

import hashlib
import io
import json
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from deepcsp._validate import Fields, OptionError
from deepcsp.constants import MAX_SAMPLES
from deepcsp.geometry.closest import ClosestPoints


@dataclass
class SurfaceSamples:
    """Points on the surface. ``points : (N, 3)``, ``normals : (N, 3)`` (face normals; zeros for
    clouds), ``face_ids : (N,)``."""

    points: np.ndarray
    normals: np.ndarray
    face_ids: np.ndarray


def sample_surface(vertices: np.ndarray, faces: np.ndarray | None, n: int, rng: np.random.Generator) -> SurfaceSamples:
    """Area-weighted uniform samples on a mesh (or random input points of a cloud)."""
    if faces is None:
        idx = rng.integers(0, len(vertices), n)
        return SurfaceSamples(vertices[idx].copy(), np.zeros((n, 3)), idx)
    tri = vertices[faces]
    cross = np.cross(tri[:, 1] - tri[:, 0], tri[:, 2] - tri[:, 0])
    area = 0.5 * np.linalg.norm(cross, axis=1)
    fid = rng.choice(len(faces), size=n, p=area / area.sum())
    u, v = rng.random(n), rng.random(n)
    flip = u + v > 1
    u[flip], v[flip] = 1 - u[flip], 1 - v[flip]
    t = tri[fid]
    pts = t[:, 0] + u[:, None] * (t[:, 1] - t[:, 0]) + v[:, None] * (t[:, 2] - t[:, 0])
    nrm = cross[fid] / np.maximum(2 * area[fid, None], 1e-300)
    return SurfaceSamples(pts, nrm, fid)


@dataclass(frozen=True)
class SampleConfig:
    """How training samples are drawn (all sizes in normalised units)."""

    n_surface: int = 100_000
    """Points on the surface (their closest point is themselves)."""
    near_scales: tuple[float, ...] = (0.003, 0.01, 0.03)
    """Standard deviations of the Gaussian offsets of near-surface samples."""
    n_near_per_scale: int = 100_000
    """Near-surface samples per scale."""
    n_uniform: int = 50_000
    """Uniform samples in the normalised cube."""
    box_half: float = 0.5
    """Half side of the sampling cube."""
    seed: int = 0
    """Seed of the samples."""

    def __post_init__(self) -> None:
        f = Fields(self)
        n_surface = f.integer("n_surface", 1, MAX_SAMPLES)
        scales = f.numbers("near_scales", 0.0, 1e3, min_open=True, min_len=0, max_len=64)
        n_near = f.integer("n_near_per_scale", 0, MAX_SAMPLES)
        n_uniform = f.integer("n_uniform", 0, MAX_SAMPLES)
        f.number("box_half", 0.0, 1e3, min_open=True)
        f.integer("seed", 0, 2**63 - 1)
        total = n_surface + len(scales) * n_near + n_uniform
        if total > MAX_SAMPLES:
            raise OptionError("SampleConfig.n_near_per_scale", f"gives {total} samples in all, more than {MAX_SAMPLES}")


@dataclass
class TrainingSamples:
    """Query points with their exact closest points: ``points``, ``closest : (N, 3)``,
    ``distances : (N,)``, ``face_ids : (N,)``, ``kind : (N,)`` (0 surface, 1 near, 2 uniform)."""

    points: np.ndarray
    closest: np.ndarray
    distances: np.ndarray
    face_ids: np.ndarray
    kind: np.ndarray

    def __len__(self) -> int:
        return len(self.points)


def make_training_samples(vertices, faces, oracle, config: SampleConfig = SampleConfig()) -> TrainingSamples:
    """Surface, near-surface (several Gaussian scales) and uniform samples with exact closest points."""
    rng = np.random.default_rng(config.seed)
    surf = sample_surface(vertices, faces, config.n_surface + config.n_near_per_scale * len(config.near_scales), rng)
    on = surf.points[: config.n_surface]
    base = surf.points[config.n_surface :]
    sig = np.repeat(np.asarray(config.near_scales, dtype=np.float64), config.n_near_per_scale)
    near = base + rng.normal(size=base.shape) * sig[:, None]
    uni = rng.uniform(-config.box_half, config.box_half, (config.n_uniform, 3))
    q = np.clip(np.concatenate([near, uni]), -config.box_half, config.box_half)
    cp = oracle.query(q)
    if faces is None:  # a cloud: its own samples are input points
        on_cp = oracle.query(on)
    else:
        on_cp = ClosestPoints(on, np.zeros(len(on)), surf.face_ids[: config.n_surface], None)
    kind = np.concatenate([np.zeros(len(on)), np.ones(len(near)), np.full(len(uni), 2)]).astype(np.int8)
    return TrainingSamples(
        points=np.concatenate([on, q]),
        closest=np.concatenate([on_cp.points, cp.points]),
        distances=np.concatenate([on_cp.distances, cp.distances]),
        face_ids=np.concatenate([on_cp.face_ids, cp.face_ids]),
        kind=kind,
    )


def cached_training_samples(
    vertices, faces, oracle, config: SampleConfig, cache_dir: str | Path | None
) -> TrainingSamples:
    """:func:`make_training_samples`, cached in ``cache_dir`` by a hash of geometry and config."""
    if cache_dir is None:
        return make_training_samples(vertices, faces, oracle, config)
    h = hashlib.sha1(np.ascontiguousarray(vertices, np.float64).tobytes())
    if faces is not None:
        h.update(np.ascontiguousarray(faces, np.int64).tobytes())
    h.update(json.dumps(asdict(config), sort_keys=True).encode())
    path = Path(cache_dir) / f"samples-{h.hexdigest()[:20]}.npz"
    if path.exists():
        try:
            with np.load(path, allow_pickle=False) as z:
                return TrainingSamples(**{k: z[k] for k in ("points", "closest", "distances", "face_ids", "kind")})
        except Exception:
            path.unlink(missing_ok=True)  # a corrupt cache is rebuilt, never trusted
    s = make_training_samples(vertices, faces, oracle, config)
    from deepcsp._atomic import write_bytes

    buf = io.BytesIO()
    np.savez(buf, points=s.points, closest=s.closest, distances=s.distances, face_ids=s.face_ids, kind=s.kind)
    write_bytes(path, buf.getvalue())
    return s


@dataclass
class BandSamples:
    """Uniform points within ``band`` of the surface, with exact closest points."""

    points: np.ndarray
    closest: np.ndarray
    distances: np.ndarray
    face_ids: np.ndarray
    band: float


def sample_band(
    vertices, faces, oracle, n: int, band: float, rng: np.random.Generator, box_half: float = 0.5
) -> BandSamples:
    """``n`` points uniformly distributed in ``{p : d(p, S) <= band}`` (clipped to the cube), by
    rejection sampling from the surface's bounding box grown by ``band``."""
    lo = np.maximum(vertices.min(0) - band, -box_half)
    hi = np.minimum(vertices.max(0) + band, box_half)
    out_p, out_c, out_d, out_f = [], [], [], []
    have, rate = 0, 0.25
    while have < n:
        m = int(min(max(1.2 * (n - have) / rate, 4096), 4_000_000))
        q = rng.uniform(lo, hi, (m, 3))
        cp = oracle.query(q)
        keep = cp.distances <= band
        rate = max(float(keep.mean()), 1e-3)
        out_p.append(q[keep])
        out_c.append(cp.points[keep])
        out_d.append(cp.distances[keep])
        out_f.append(cp.face_ids[keep])
        have += int(keep.sum())

    def cat(xs):
        return np.concatenate(xs)[:n]

    return BandSamples(cat(out_p), cat(out_c), cat(out_d), cat(out_f), band)
