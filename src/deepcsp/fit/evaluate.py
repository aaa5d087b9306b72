"""Closest-point error of a field against exact ground truth, in the band where it is used."""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np
import torch

from deepcsp.constants import EVAL_BAND
from deepcsp.fields.batched import map_rows
from deepcsp.geometry.sampling import sample_band


@dataclass
class FieldErrors:
    """Closest-point errors ``|CSP_field(p) - CSP_exact(p)|`` as fractions of the bbox diagonal,
    for ``n`` points uniform within ``band`` (fraction of the diagonal) of the surface.
    ``*_boundary`` restricts to points whose closest point is within 1% of the diagonal of an
    open boundary; ``*_discontinuous`` to points within 0.5% of the diagonal of a jump of the
    exact closest-point map (the medial axis, e.g. between close sheets). NaN where empty."""

    mean: float
    median: float
    p95: float
    max: float
    mean_boundary: float
    p95_boundary: float
    n_boundary: int
    mean_discontinuous: float
    p95_discontinuous: float
    n_discontinuous: int
    n: int
    band: float

    def to_dict(self) -> dict:
        return asdict(self)


def boundary_edges(faces: np.ndarray) -> np.ndarray:
    """(E, 2) edges used by exactly one face."""
    e = np.sort(np.concatenate([faces[:, [0, 1]], faces[:, [1, 2]], faces[:, [2, 0]]]), axis=1)
    u, c = np.unique(e, axis=0, return_counts=True)
    return u[c == 1]


def distance_to_segments(points: np.ndarray, a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Distance of each point to the nearest of segments ``a[i]-b[i]`` (brute force in chunks
    through a KD-tree on segment samples for large inputs)."""
    from scipy.spatial import cKDTree

    if len(a) == 0:
        return np.full(len(points), np.inf)
    L = np.linalg.norm(b - a, axis=1)
    step = max(float(np.median(L)) / 4, 1e-9)
    n = np.maximum((L / step).astype(int), 1)
    t = np.concatenate([np.linspace(0, 1, k + 1) for k in n])
    seg = np.repeat(np.arange(len(a)), n + 1)
    samples = a[seg] + t[:, None] * (b - a)[seg]
    d, _ = cKDTree(samples).query(points, workers=-1)
    return d


def evaluate_field(
    field,
    vertices_n: np.ndarray,
    faces: np.ndarray | None,
    oracle,
    n: int = 50_000,
    band: float = EVAL_BAND,
    seed: int = 123,
) -> FieldErrors:
    """Errors of ``field`` (normalised queries) on ``n`` band points of the surface
    ``(vertices_n, faces)`` (normalised coordinates) with exact ``oracle``."""
    rng = np.random.default_rng(seed)
    diag = float(np.linalg.norm(vertices_n.max(0) - vertices_n.min(0)))
    s = sample_band(vertices_n, faces, oracle, n, band * diag, rng)
    x = torch.as_tensor(s.points, dtype=torch.float32, device=field.device)
    pred = map_rows(lambda c: field.closest_points_normalized(c).detach(), x).cpu().double().numpy()
    err = np.linalg.norm(pred - s.closest, axis=1) / diag

    nb = np.zeros(len(err), bool)
    if faces is not None:
        be = boundary_edges(faces)
        if len(be):
            nb = distance_to_segments(s.closest, vertices_n[be[:, 0]], vertices_n[be[:, 1]]) <= 0.01 * diag
    delta = 0.005 * diag
    u = rng.normal(size=s.points.shape)
    u /= np.linalg.norm(u, axis=1, keepdims=True)
    moved = oracle.query(np.clip(s.points + delta * u, -0.5, 0.5))
    disc = np.linalg.norm(moved.points - s.closest, axis=1) > 10 * delta

    def stat(mask, fn):
        return float(fn(err[mask])) if mask.any() else float("nan")

    return FieldErrors(
        mean=float(err.mean()),
        median=float(np.median(err)),
        p95=float(np.percentile(err, 95)),
        max=float(err.max()),
        mean_boundary=stat(nb, np.mean),
        p95_boundary=stat(nb, lambda e: np.percentile(e, 95)),
        n_boundary=int(nb.sum()),
        mean_discontinuous=stat(disc, np.mean),
        p95_discontinuous=stat(disc, lambda e: np.percentile(e, 95)),
        n_discontinuous=int(disc.sum()),
        n=len(err),
        band=band,
    )
