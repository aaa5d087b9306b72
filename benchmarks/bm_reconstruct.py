"""Learned reconstruction from 3,000 points on held-out dev meshes (issue 7).

For each held-out mesh: 3,000 area-uniform points (seed 0) are the only input. Compared against
the exact ground-truth mesh (``deepcsp.geometry.metrics.compare_surfaces``: Chamfer-L1 =
mean d(pred, GT) + mean d(GT, pred), divided by the GT bbox diagonal; normal consistency =
mean |n_pred . n_gt| both ways; F-score at tau = 1% of the diagonal):

* ``learned CSP``: the conditional CSP model; ``points``: dense projection (normals from the CSP
  direction), ``mesh``: ``deepcsp.extract.extract_mesh`` of its field;
* ``UDF baseline``: the conditional UDF model of the same size and step budget, same outputs;
* ``per-shape fit``: ``deepcsp.fit.fit_surface`` on the 3,000 points (band-grid field), same outputs;
* ``input points``: the 3,000 points themselves (no normals: normal consistency n/a).

Usage::

    python benchmarks/bm_reconstruct.py [--csp MODEL] [--udf MODEL] [--resolution 128] [--json OUT]
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np
from _common import meshes_dir

HELD_OUT = ("closed/spot.obj", "closed/teddy.obj", "open/skirt_sim.obj", "open/demosthenes_scan.obj")
MESHES = meshes_dir()  # $DEEPCSP_MESHES or ../shared/data/meshes


def point_metrics(points: np.ndarray, normals: np.ndarray | None, gt, diag: float, n_samples: int) -> dict:
    """Chamfer-L1 / diag, normal consistency and F-score@1% of an oriented-free point set
    ``points : (N, 3)`` (with unsigned ``normals : (N, 3)`` or None) against the GT mesh:
    pred->GT by exact point-to-mesh distance, GT->pred by nearest neighbour from ``n_samples``
    GT samples; NC = mean |n . n_gt| both ways (same conventions as compare_surfaces)."""
    from scipy.spatial import cKDTree

    from deepcsp.geometry.closest import MeshOracle
    from deepcsp.geometry.metrics import fscore
    from deepcsp.geometry.sampling import sample_surface

    rng = np.random.default_rng(1)
    if len(points) > n_samples:
        idx = rng.choice(len(points), n_samples, replace=False)
        points = points[idx]
        normals = None if normals is None else normals[idx]
    gs = sample_surface(gt.vertices, gt.faces, n_samples, rng)
    oracle = MeshOracle(gt.vertices, gt.faces)
    r = oracle.query(points)
    d_gp, i = cKDTree(points).query(gs.points)
    nc = float("nan")
    if normals is not None:
        fn = oracle.face_normals()[r.face_ids]
        nc = 0.5 * (np.abs((normals * fn).sum(1)).mean() + np.abs((gs.normals * normals[i]).sum(1)).mean())
    return {
        "chamfer_l1_rel": (r.distances.mean() + d_gp.mean()) / diag,
        "normal_consistency": float(nc),
        "fscore_1pct": fscore(r.distances, d_gp, 0.01 * diag),
    }


def project_with(field, pts: np.ndarray, n: int, spread: float = 0.02, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Dense projection with any field (as reconstruct_points does): ``(points, unsigned normals)``."""
    rng = np.random.default_rng(seed)
    start = pts[rng.integers(0, len(pts), n)] + rng.normal(size=(n, 3)) * spread / field.normalization.scale
    p1 = field.closest_points(start)
    d = start - p1
    nrm = d / np.maximum(np.linalg.norm(d, axis=1, keepdims=True), 1e-12)
    return field.closest_points(p1), nrm


def main() -> None:
    from deepcsp.extract import ExtractConfig, extract_mesh
    from deepcsp.fields.conditional import load_model, shipped_model_path
    from deepcsp.fit import fit_surface
    from deepcsp.fit.config import FitConfig
    from deepcsp.geometry.metrics import compare_surfaces
    from deepcsp.geometry.sampling import sample_surface
    from deepcsp.io import load_surface
    from deepcsp.io.surface import surface_from_arrays
    from deepcsp.train.reconstruct import ReconstructConfig, reconstruct_points

    ap = argparse.ArgumentParser()
    ap.add_argument("--csp", type=Path, default=shipped_model_path())
    ap.add_argument("--udf", type=Path, default=None)
    ap.add_argument("--resolution", type=int, default=128)
    ap.add_argument("--n-points", type=int, default=3000)
    ap.add_argument("--n-samples", type=int, default=50_000)
    ap.add_argument("--json", type=Path, default=None)
    args = ap.parse_args()

    models = {"learned CSP": load_model(args.csp).model}
    if args.udf is not None:
        models["UDF baseline"] = load_model(args.udf).model
    ecfg = ExtractConfig(resolution=args.resolution)
    rows = []
    for name in HELD_OUT:
        gt = load_surface(MESHES / name)
        pts = sample_surface(gt.vertices, gt.faces, args.n_points, np.random.default_rng(0)).points
        diag = float(np.linalg.norm(gt.vertices.max(0) - gt.vertices.min(0)))  # input units, as compare_surfaces

        def add(method: str, output: str, m: dict, seconds: float) -> None:
            rows.append({"mesh": name, "method": method, "output": output, **m, "seconds": seconds})
            print(
                f"{name:28s} {method:14s} {output:7s} CD-L1/diag {m['chamfer_l1_rel']:.5f}  "
                f"NC {m['normal_consistency']:.3f}  F@1% {m['fscore_1pct']:.3f}  {seconds:6.1f} s",
                flush=True,
            )

        def add_mesh(method: str, v, f, seconds: float) -> None:
            if len(f) == 0:
                add(
                    method,
                    "mesh",
                    {"chamfer_l1_rel": float("nan"), "normal_consistency": float("nan"), "fscore_1pct": 0.0},
                    seconds,
                )
                return
            m = compare_surfaces(v, f, gt.vertices, gt.faces, n_samples=args.n_samples, tau_rel=0.01)
            add(
                method,
                "mesh",
                {
                    "chamfer_l1_rel": m.chamfer_l1_rel,
                    "normal_consistency": m.normal_consistency,
                    "fscore_1pct": m.fscore,
                },
                seconds,
            )

        for method, model in models.items():
            t0 = time.perf_counter()
            rec = reconstruct_points(model, pts, ReconstructConfig(n_dense=args.n_samples))
            t1 = time.perf_counter()
            add(method, "points", point_metrics(rec.points, rec.normals, gt, diag, args.n_samples), t1 - t0)
            res = extract_mesh(rec.field, ecfg)
            add_mesh(method, res.vertices, res.faces, time.perf_counter() - t1)
        t0 = time.perf_counter()
        fit = fit_surface(surface_from_arrays(pts), FitConfig(eval_points=0))
        t1 = time.perf_counter()
        rec_fit = project_with(fit.field, pts, args.n_samples)
        add(
            "per-shape fit",
            "points",
            point_metrics(rec_fit[0], rec_fit[1], gt, diag, args.n_samples),
            time.perf_counter() - t0,
        )
        t2 = time.perf_counter()
        res = extract_mesh(fit.field, ecfg)
        add_mesh("per-shape fit", res.vertices, res.faces, time.perf_counter() - t2 + (t1 - t0))
        add("input points", "points", point_metrics(pts, None, gt, diag, args.n_samples), 0.0)

    print()
    print("| mesh | method | output | Chamfer-L1 / diag | normal consistency | F-score@1% | seconds |")
    print("|---|---|---|---|---|---|---|")
    for r in rows:
        nc = "n/a" if r["normal_consistency"] != r["normal_consistency"] else f"{r['normal_consistency']:.3f}"
        print(
            f"| {r['mesh']} | {r['method']} | {r['output']} | {r['chamfer_l1_rel']:.5f} | {nc} | "
            f"{r['fscore_1pct']:.3f} | {r['seconds']:.1f} |"
        )
    print()
    print("| method | output | mean Chamfer-L1 / diag | mean normal consistency | mean F-score@1% |")
    print("|---|---|---|---|---|")
    for key in dict.fromkeys((r["method"], r["output"]) for r in rows):
        method = f"{key[0]} | {key[1]}"
        sel = [r for r in rows if (r["method"], r["output"]) == key]
        ncs = [r["normal_consistency"] for r in sel if r["normal_consistency"] == r["normal_consistency"]]
        nc = f"{np.mean(ncs):.3f}" if ncs else "n/a"
        print(
            f"| {method} | {np.nanmean([r['chamfer_l1_rel'] for r in sel]):.5f} | {nc} | "
            f"{np.mean([r['fscore_1pct'] for r in sel]):.3f} |"
        )
    if args.json:
        args.json.write_text(json.dumps(rows, indent=1))


if __name__ == "__main__":
    main()
