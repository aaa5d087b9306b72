"""Long narrow ribbons (issue 12): open sheets narrower than the closed test's coarse cells.

A ribbon ``--lengths`` times longer than wide (width 1), waving out of its plane (three periods of
amplitude 1), triangulated finely and sampled as ``bm_pointcloud.py`` samples its clouds (area-uniform,
seed 0) at each of ``--points``; every method reconstructs each cloud in this process. Columns:
Chamfer-L1 (% of the bbox diagonal) and NC against the exact ribbon, boundary loops (the truth has 1),
area ratio, seconds. Run it in a worktree of an earlier commit for the "before" figures.

Usage::

    python benchmarks/bm_ribbon.py [--lengths 10 30 50] [--points 3000 10000] [--methods deepcsp bpa poisson]
"""

from __future__ import annotations

import argparse
import time

import numpy as np
from _common import machine, print_table
from bm_pointcloud import RUNNERS, check_methods, score, table_row

from deepcsp.geometry.sampling import sample_surface


def ribbon(length: float, along: int = 1000, across: int = 20) -> tuple[np.ndarray, np.ndarray]:
    """A ribbon ``length`` x 1 with ``z = sin(6 pi x / length)``, as a grid of triangles."""
    x, y = np.meshgrid(np.linspace(0, length, along), np.linspace(0, 1, across))
    v = np.stack([x.ravel(), y.ravel(), np.sin(6 * np.pi * x.ravel() / length)], 1)
    ids = np.arange(along * across).reshape(across, along)
    a, b, c, d = ids[:-1, :-1].ravel(), ids[:-1, 1:].ravel(), ids[1:, :-1].ravel(), ids[1:, 1:].ravel()
    return v, np.concatenate([np.stack([a, b, d], 1), np.stack([a, d, c], 1)])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--lengths", nargs="*", type=float, default=[10.0, 30.0, 50.0])
    ap.add_argument("--points", nargs="*", type=int, default=[3000, 10000])
    ap.add_argument("--methods", nargs="*", default=["deepcsp", "bpa", "poisson"])
    args = ap.parse_args()
    check_methods(args.methods)
    if any(n < 100 for n in args.points) or any(length < 1 for length in args.lengths):
        raise SystemExit("--points must be at least 100 and --lengths at least 1")
    print(f"## Long narrow ribbons ({machine()})\n")
    rows = []
    for length in args.lengths:
        v, f = ribbon(length)
        diag = float(np.linalg.norm(v.max(0) - v.min(0)))
        for n in args.points:
            cloud = sample_surface(v, f, n, np.random.default_rng(0)).points
            for method in args.methods:
                t0 = time.perf_counter()
                rv, rf = RUNNERS[method](cloud)
                s = score(rv, rf, v, f, diag)
                row = {"ribbon": f"{length:g} x 1", "points": n, "method": method, **table_row(s)}
                rows.append({**row, "s": time.perf_counter() - t0})
                print(rows[-1], flush=True)
    print()
    cols = ["ribbon", "points", "method", "CD-L1 %", "NC", "loops", "area", "s"]
    print_table(rows, cols, {"CD-L1 %": "{:.4f}", "NC": "{:.4f}", "area": "{:.3f}", "s": "{:.1f}"})


if __name__ == "__main__":
    main()
