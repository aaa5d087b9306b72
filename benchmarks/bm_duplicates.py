"""Clouds that repeat their samples (issue 12): a cloud given twice, exactly or a small shift apart.

Merged scans, clouds taken from a triangle soup's corners and tiles stitched at their seams repeat
samples. Each mesh is sampled as ``bm_pointcloud.py`` samples its clouds (5,000 area-uniform points,
seed 0), then given once, twice, and twice with the copy moved by Gaussian noise of ``--shifts``
(fractions of the bbox diagonal; 0 = an exact repeat). Every method reconstructs each cloud in this
process; columns: Chamfer-L1 (% of the diagonal) and NC against the exact mesh, boundary loops (the
truth's after the slash), area ratio, whether the mesh is watertight, seconds. Run it in a worktree of
an earlier commit for the "before" figures. The copies' shifts are drawn in turn from one generator, so
a shift's cloud depends on the shifts before it (RESULTS' rows: the default list).

Usage::

    python benchmarks/bm_duplicates.py [--meshes spot armadillo_29k tee_sim airplane_holes]
        [--shifts 0 1e-5 1e-4 3e-4 1e-3] [--methods deepcsp bpa poisson] [--out rows.jsonl]
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np
from _common import all_meshes, machine, print_table
from bm_pointcloud import RUNNERS, check_methods, ground_truth, score, table_row

from deepcsp.geometry.sampling import sample_surface


def clouds(v: np.ndarray, f: np.ndarray, diag: float, shifts: list[float], n: int = 5000) -> dict[str, np.ndarray]:
    """The mesh's cloud once, and twice with the copy shifted by each of ``shifts`` x ``diag``."""
    rng = np.random.default_rng(0)
    once = sample_surface(v, f, n, rng).points
    out = {"once": once}
    for s in shifts:
        out[f"twice, shift {s:g}"] = np.concatenate([once, once + rng.normal(size=once.shape) * s * diag])
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--meshes", nargs="*", default=["spot", "armadillo_29k", "tee_sim", "airplane_holes"])
    ap.add_argument("--shifts", nargs="*", type=float, default=[0.0, 1e-5, 1e-4, 3e-4, 1e-3])
    ap.add_argument("--methods", nargs="*", default=["deepcsp", "bpa", "poisson"])
    ap.add_argument("--out", type=Path, default=None, help="also append the rows to this JSONL file")
    args = ap.parse_args()
    check_methods(args.methods)
    if any(s < 0 for s in args.shifts):
        raise SystemExit("--shifts must be at least 0")
    paths = [p for p in all_meshes() if p.stem in args.meshes]
    print(f"## Clouds given twice ({machine()})\n")
    rows = []
    for path in paths:
        v, f, diag = ground_truth(path)
        for cloud_name, cloud in clouds(v, f, diag, args.shifts).items():
            for method in args.methods:
                t0 = time.perf_counter()
                try:
                    rv, rf = RUNNERS[method](cloud)
                    s = score(rv, rf, v, f, diag)
                    row = {**table_row(s), "watertight": bool(s["watertight"]), "s": time.perf_counter() - t0}
                except Exception as exc:  # a peer that fails on the cloud is a row, not the end of the run
                    row = {"error": repr(exc)[:60]}
                rows.append({"mesh": path.stem, "cloud": cloud_name, "method": method, **row})
                print(json.dumps(rows[-1]), flush=True)
                if args.out is not None:
                    with open(args.out, "a") as fh:
                        fh.write(
                            json.dumps({k: None if x != x else x for k, x in rows[-1].items()}) + "\n"
                        )  # NaN: null
    print()
    cols = ["mesh", "cloud", "method", "CD-L1 %", "NC", "loops", "area", "watertight", "s", "error"]
    print_table(rows, cols, {"CD-L1 %": "{:.4f}", "NC": "{:.4f}", "area": "{:.3f}", "s": "{:.1f}"})


if __name__ == "__main__":
    main()
