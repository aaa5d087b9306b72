"""Fit benchmark (issue 3): default deepcsp fit vs the UDF baseline (same encoding and budget)
vs the official CSP "paper recipe", on the dev meshes, with exact ground truth.

Prints one table row per mesh and method; errors are |CSP_field(p) - CSP_exact(p)| / bbox diagonal
for 50k points uniform within 5% of the diagonal of the surface ("band"), and for the subset
within 1% of the diagonal ("near").

    python benchmarks/bm_fit.py                         # all dev meshes, default + udf + paper
    python benchmarks/bm_fit.py --meshes tee_sim --methods paper --paper-seconds 3600
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
from _common import all_meshes, machine, print_table

from deepcsp.fit import FitConfig, fit_surface
from deepcsp.fit.evaluate import evaluate_field
from deepcsp.fit.presets import paper_recipe, udf_baseline
from deepcsp.geometry.closest import MeshOracle, make_oracle
from deepcsp.geometry.sampling import sample_band
from deepcsp.io import load_surface


def near_error(field, v, f, oracle, n=20000, seed=7):
    """Mean error / diag for points uniform within 1% of the diagonal."""
    diag = float(np.linalg.norm(v.max(0) - v.min(0)))
    s = sample_band(v, f, oracle, n, 0.01 * diag, np.random.default_rng(seed))
    x = torch.as_tensor(s.points, dtype=torch.float32)
    pred = (
        torch.cat([field.closest_points_normalized(x[i : i + 65536]) for i in range(0, len(x), 65536)]).double().numpy()
    )
    return float((np.linalg.norm(pred - s.closest, axis=1) / diag).mean())


def query_rates(field, surface, n=1_000_000, seed=3):
    rng = np.random.default_rng(seed)
    v = surface.normalized_vertices
    lo, hi = v.min(0) - 0.02, v.max(0) + 0.02
    x = rng.uniform(lo, hi, (n, 3))
    xt = torch.as_tensor(x, dtype=torch.float32)
    field.closest_points_normalized(xt[:1000])
    t = time.perf_counter()
    field.closest_points_normalized(xt)
    t_field = time.perf_counter() - t
    oracle = make_oracle(v, surface.faces)
    m = 100_000
    t = time.perf_counter()
    oracle.query(x[:m])
    t_exact = (time.perf_counter() - t) * n / m
    return n / t_field, n / t_exact


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--meshes", nargs="*", default=None, help="name stems to run (default: all dev meshes)")
    ap.add_argument(
        "--methods",
        nargs="*",
        default=["default", "udf", "paper"],
        choices=["default", "udf", "paper", "multires", "fourier"],
    )
    ap.add_argument(
        "--paper-seconds", type=float, default=0.0, help="paper recipe budget (0 = same wall time as the default fit)"
    )
    ap.add_argument("--net-seconds", type=float, default=45.0, help="budget of multires/fourier MLP fits")
    ap.add_argument(
        "--net-output",
        default="displacement",
        choices=["displacement", "point", "dist_dir"],
        help="output parametrisation of multires/fourier fits",
    )
    ap.add_argument("--eval-points", type=int, default=50_000)
    ap.add_argument("--json", type=Path, default=None, help="append JSON lines here")
    args = ap.parse_args()
    paths = [p for p in all_meshes() if args.meshes is None or p.stem in args.meshes]
    print(f"# bm_fit on {machine()}, torch threads {torch.get_num_threads()}\n")
    rows = []
    for path in paths:
        surface = load_surface(path)
        v, f = surface.normalized_vertices, surface.faces
        oracle = MeshOracle(v, f)
        default_seconds = None
        for method in args.methods:
            base = FitConfig(eval_points=0)
            if method == "default":
                cfg, gt = base, "exact"
            elif method == "udf":
                cfg, gt = udf_baseline(base), "exact"
            elif method == "paper":
                secs = args.paper_seconds or default_seconds or 10.0
                cfg, gt = (
                    paper_recipe(FitConfig(eval_points=0, time_budget=secs, checkpoint_every=600)),
                    "surface_samples",
                )
            else:
                import dataclasses

                fc = dataclasses.replace(
                    base.field, encoding="multires_grid" if method == "multires" else "fourier", output=args.net_output
                )
                cfg, gt = FitConfig(eval_points=0, time_budget=args.net_seconds, field=fc), "exact"
            t0 = time.perf_counter()
            res = fit_surface(surface, cfg, ground_truth=gt)
            wall = time.perf_counter() - t0
            if method == "default":
                default_seconds = wall
            err = evaluate_field(res.field, v, f, oracle, n=args.eval_points)
            row = {
                "mesh": path.stem,
                "method": method if method in ("default", "udf", "paper") else f"{method}-{args.net_output}",
                "fit_s": wall,
                "sides_s": res.band.seconds_sides if res.band is not None else 0.0,
                "steps": res.steps,
                "mean_%": 100 * err.mean,
                "p95_%": 100 * err.p95,
                "near_mean_%": 100 * near_error(res.field, v, f, oracle),
                "bnd_mean_%": 100 * err.mean_boundary,
                "disc_mean_%": 100 * err.mean_discontinuous,
            }
            if method in ("default", "udf"):
                with tempfile.TemporaryDirectory() as td:
                    p = Path(td) / "f.safetensors"
                    res.field.save(p)
                    row["file_MB"] = p.stat().st_size / 1e6
                row["mesh_MB"] = path.stat().st_size / 1e6
            if method == "default":
                qf, qe = query_rates(res.field, surface)
                row["query_Mpts/s"] = qf / 1e6
                row["x_exact"] = qf / qe
            rows.append(row)
            print(json.dumps(row), flush=True)
            if args.json:
                with open(args.json, "a") as fh:
                    fh.write(json.dumps(row) + "\n")
    print()
    cols = [
        "mesh",
        "method",
        "fit_s",
        "sides_s",
        "steps",
        "mean_%",
        "p95_%",
        "near_mean_%",
        "bnd_mean_%",
        "disc_mean_%",
        "file_MB",
        "mesh_MB",
        "query_Mpts/s",
        "x_exact",
    ]
    print_table(rows, cols)
    # Ratios per mesh, measured in the same run.
    by = {}
    for r in rows:
        by.setdefault(r["mesh"], {})[r["method"]] = r
    ratio_rows = []
    for mesh, d in by.items():
        if "default" not in d:
            continue
        rr = {"mesh": mesh}
        for m in d:
            if m != "default":
                rr[f"{m}/default band"] = d[m]["mean_%"] / d["default"]["mean_%"]
                rr[f"{m}/default near"] = d[m]["near_mean_%"] / d["default"]["near_mean_%"]
        ratio_rows.append(rr)
    if any(len(r) > 1 for r in ratio_rows):
        print()
        print_table(ratio_rows, list(dict.fromkeys(k for r in ratio_rows for k in r)))


if __name__ == "__main__":
    main()
