"""Surface-comparison metrics, with one stated convention.

Convention (the same as point-cloud-utils' ``chamfer_distance``): for point sets A and B with
``d(a, B) = min_b |a - b|_2``,

* Chamfer-L1 ``= mean_a d(a, B) + mean_b d(b, A)`` (sum of the two one-sided means, unsquared);
* Chamfer-L2 ``= mean_a d(a, B)^2 + mean_b d(b, A)^2``;
* Hausdorff ``= max(max_a d(a, B), max_b d(b, A))``;
* F-score at ``tau``: precision ``P = frac_a[d(a, B) < tau]``, recall ``R = frac_b[d(b, A) < tau]``,
  ``F = 2PR / (P + R)``;
* normal consistency ``= (mean_a |n_a . n_B(a)| + mean_b |n_b . n_A(b)|) / 2`` where ``n_B(a)`` is the
  normal at a's closest point in B (unsigned, so it is meaningful for open, unoriented surfaces);
* normal angle error: ``arccos |n . n_ref|`` in degrees (unsigned) or ``arccos(n . n_ref)`` (signed).

When a mesh is given, ``d`` is the exact point-to-mesh distance (BVH), not sample-to-sample.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np

from deepcsp.geometry.closest import MeshOracle, check_points
from deepcsp.geometry.sampling import sample_surface


@dataclass
class ChamferResult:
    """``l1``, ``l2`` (two-sided sums, see module docstring), the one-sided means
    ``a_to_b``/``b_to_a`` and ``hausdorff``."""

    l1: float
    l2: float
    a_to_b: float
    b_to_a: float
    hausdorff: float


def _nn(a: np.ndarray, b: np.ndarray):
    from scipy.spatial import cKDTree

    d, i = cKDTree(b).query(a, k=1, workers=-1)
    return d, i


def chamfer(a, b) -> ChamferResult:
    """Chamfer distances between point sets ``a : (N, 3)`` and ``b : (M, 3)`` (sample-to-sample)."""
    a, b = check_points(a, "a"), check_points(b, "b")
    dab, _ = _nn(a, b)
    dba, _ = _nn(b, a)
    return _chamfer_from(dab, dba)


def _chamfer_from(dab: np.ndarray, dba: np.ndarray) -> ChamferResult:
    return ChamferResult(
        l1=float(dab.mean() + dba.mean()),
        l2=float((dab**2).mean() + (dba**2).mean()),
        a_to_b=float(dab.mean()),
        b_to_a=float(dba.mean()),
        hausdorff=float(max(dab.max(), dba.max())),
    )


def fscore(dab: np.ndarray, dba: np.ndarray, tau: float) -> float:
    """F-score at ``tau`` from one-sided distances (see module docstring)."""
    p = float((dab < tau).mean())
    r = float((dba < tau).mean())
    return 0.0 if p + r == 0 else 2 * p * r / (p + r)


def normal_angle_error(normals, reference, unsigned: bool = True) -> np.ndarray:
    """Per-point angle in degrees between ``normals : (N, 3)`` and ``reference : (N, 3)``."""
    n = np.asarray(normals, np.float64)
    r = np.asarray(reference, np.float64)
    if n.shape != r.shape or n.ndim != 2 or n.shape[1] != 3:
        raise ValueError(f"normals and reference must both be (N, 3), got {n.shape} and {r.shape}")
    n = n / np.maximum(np.linalg.norm(n, axis=1, keepdims=True), 1e-300)
    r = r / np.maximum(np.linalg.norm(r, axis=1, keepdims=True), 1e-300)
    c = (n * r).sum(1)
    if unsigned:
        c = np.abs(c)
    return np.degrees(np.arccos(np.clip(c, -1.0, 1.0)))


@dataclass
class SurfaceMetrics:
    """Metrics of a predicted surface against a ground-truth mesh (see module docstring).
    Distances are in the units of the inputs; ``*_rel`` are divided by the GT bbox diagonal."""

    chamfer_l1: float
    chamfer_l2: float
    pred_to_gt: float
    gt_to_pred: float
    hausdorff: float
    normal_consistency: float
    fscore: float
    fscore_tau: float
    chamfer_l1_rel: float
    n_samples: int

    def to_dict(self) -> dict:
        return asdict(self)


def compare_surfaces(
    pred_vertices,
    pred_faces,
    gt_vertices,
    gt_faces,
    n_samples: int = 100_000,
    tau_rel: float = 0.005,
    seed: int = 0,
) -> SurfaceMetrics:
    """Compare a predicted mesh (or cloud when ``pred_faces`` is None) with a GT mesh (or cloud).

    Samples ``n_samples`` points on each (area-weighted) and measures exact point-to-mesh
    distances to the other where it is a mesh. ``tau_rel`` is the F-score threshold as a
    fraction of the GT bounding-box diagonal.
    """
    if n_samples < 1:
        raise ValueError(f"n_samples must be at least 1, got {n_samples}")
    rng = np.random.default_rng(seed)
    pv, gv = check_points(pred_vertices, "pred_vertices"), check_points(gt_vertices, "gt_vertices")
    ps = sample_surface(pv, pred_faces, n_samples, rng)
    gs = sample_surface(gv, gt_faces, n_samples, rng)
    diag = float(np.linalg.norm(gv.max(0) - gv.min(0)))

    def to_other(points, v, f, normals_of_samples, other_samples):
        if f is not None:
            oracle = MeshOracle(v, f)
            res = oracle.query(points)
            return res.distances, oracle.face_normals()[res.face_ids]
        d, i = _nn(points, other_samples.points)
        return d, other_samples.normals[i]

    dab, n_ab = to_other(ps.points, gv, gt_faces, ps.normals, gs)
    dba, n_ba = to_other(gs.points, pv, pred_faces, gs.normals, ps)
    ch = _chamfer_from(dab, dba)
    nc = np.nan
    if pred_faces is not None and gt_faces is not None:
        nc = 0.5 * (np.abs((ps.normals * n_ab).sum(1)).mean() + np.abs((gs.normals * n_ba).sum(1)).mean())
    tau = tau_rel * diag
    return SurfaceMetrics(
        chamfer_l1=ch.l1,
        chamfer_l2=ch.l2,
        pred_to_gt=ch.a_to_b,
        gt_to_pred=ch.b_to_a,
        hausdorff=ch.hausdorff,
        normal_consistency=float(nc),
        fscore=fscore(dab, dba, tau),
        fscore_tau=tau,
        chamfer_l1_rel=ch.l1 / diag,
        n_samples=n_samples,
    )
