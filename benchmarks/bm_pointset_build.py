"""How long building a cloud's point-set surface takes, and whether two versions build the same one.

Per mesh and setting (clouds as in ``bm_pointcloud.py``, seed 0), the point-set surface is built
as ``deepcsp reconstruct`` builds it (the learned projection from ``CloudConfig.projection_above``
sample spacings of noise, self-projection, patch sizes chosen by cross-validation, the patches) on
one thread, timed, and its summary (patch size and degree, noise estimate, projection...) and the
closest points of 2,000 fixed queries are kept. ``--compare OTHER.jsonl`` reads another run's rows
(e.g. the same command in a worktree of an older commit, run beside this one so both see the same
machine): the table then gives this run's seconds over the other's per setting, and the clouds
whose summary or closest points differ are listed; ``--compared F`` writes one row per cloud of
that comparison (seconds both ways, summary, differences: no closest points, small enough for
``benchmarks/history``).

Usage::

    python benchmarks/bm_pointset_build.py --out new.jsonl [--meshes bob teddy] [--settings 3k 10k-n0.5]
        [--compare old.jsonl --compared benchmarks/history/F.jsonl]
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import all_meshes, machine, print_table  # noqa: E402
from bm_pointcloud import ground_truth, make_cloud  # noqa: E402

SETTINGS = ("3k", "10k", "10k-o1", "10k-n0.25", "10k-n0.5", "3k-n0.5")


def build_row(mesh: Path, setting: str, project) -> dict:
    """Build the surface of one cloud and describe it."""
    from deepcsp.fit.config import CloudConfig
    from deepcsp.geometry.pointset import PointSetSurface
    from deepcsp.io.surface import surface_from_arrays

    v, f, diag = ground_truth(mesh)
    points = surface_from_arrays(make_cloud(v, f, diag, setting, 0)).normalized_vertices
    config = CloudConfig()
    start = time.perf_counter()
    pss = PointSetSurface.build(points, config.surface, project, project_above=config.projection_above)
    seconds = time.perf_counter() - start
    queries = np.random.default_rng(1).normal(size=(2000, 3)) * 0.3
    summary = {k: v if isinstance(v, (bool, str)) else float(v) for k, v in vars(pss.summary).items()}
    return {
        "mesh": f"{mesh.parent.name}/{mesh.stem}",
        "setting": setting,
        "seconds": seconds,
        "summary": summary,
        "closest": pss.project(queries).tolist(),
    }


def differences(a: dict, b: dict, rel: float = 1e-9) -> list[str]:
    """What differs between two rows of one cloud: summary fields beyond ``rel``, closest points."""
    out = []
    for key, x in a["summary"].items():
        y = b["summary"].get(key)
        same = x == y if isinstance(x, (bool, str)) else abs(x - y) <= rel * max(abs(x), 1e-12)
        if not same:
            out.append(f"{key} {x:.6g} -> {y:.6g}" if isinstance(x, float) else f"{key} {x} -> {y}")
    moved = float(np.abs(np.asarray(a["closest"]) - np.asarray(b["closest"])).max())
    if moved > rel:
        out.append(f"closest points up to {moved:.2g} apart")
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--meshes", nargs="+", help="mesh names (default: all 24)")
    ap.add_argument("--settings", nargs="+", default=list(SETTINGS))
    ap.add_argument("--out", type=Path, required=True, help="JSON lines, one per cloud (appended, rows kept)")
    ap.add_argument("--compare", type=Path, help="another run's rows: seconds as ratios, differing clouds listed")
    ap.add_argument("--compared", type=Path, help="with --compare: write the per-cloud comparison here")
    args = ap.parse_args()

    import torch

    import deepcsp.geometry.pointset as pointset
    from deepcsp.fit.loop import _learned_projection

    torch.set_num_threads(1)
    pointset.PROJECT_THREADS = 1
    project = _learned_projection(None, "cpu", None)  # what reconstruction calls
    meshes = [m for m in all_meshes() if not args.meshes or m.stem in args.meshes]
    done = {(r["mesh"], r["setting"]) for r in map(json.loads, args.out.open())} if args.out.exists() else set()
    print(f"# point-set surface build ({machine()}, one thread)")
    with args.out.open("a") as f:
        for mesh in meshes:
            for setting in args.settings:
                if (f"{mesh.parent.name}/{mesh.stem}", setting) not in done:
                    row = build_row(mesh, setting, project)
                    f.write(json.dumps(row) + "\n")
                    f.flush()
                    print(f"{row['mesh']} {setting}: {row['seconds']:.2f} s", flush=True)
    summarize(args.out, args.compare, args.settings, args.compared)


def summarize(path: Path, compare: Path | None, settings: list[str], compared: Path | None = None) -> None:
    rows = {(r["mesh"], r["setting"]): r for r in map(json.loads, path.open())}
    other = {(r["mesh"], r["setting"]): r for r in map(json.loads, compare.open())} if compare else {}
    table, changed, per_cloud = [], [], []
    for setting in settings:
        keys = [k for k in rows if k[1] == setting and (not compare or k in other)]
        if not keys:
            continue
        line = {
            "setting": setting,
            "clouds": len(keys),
            "median s": statistics.median(rows[k]["seconds"] for k in keys),
        }
        if compare:
            ratios = [rows[k]["seconds"] / other[k]["seconds"] for k in keys]
            diffs = {k: differences(other[k], rows[k]) for k in keys}
            line |= {
                "other's median s": statistics.median(other[k]["seconds"] for k in keys),
                "this / other (median)": statistics.median(ratios),
                "range": f"{min(ratios):.2f}-{max(ratios):.2f}",
                "same surface": sum(not d for d in diffs.values()),
            }
            changed += [f"{k[0]} {k[1]}: " + "; ".join(d) for k, d in diffs.items() if d]
            per_cloud += [
                {
                    "mesh": k[0],
                    "setting": k[1],
                    "seconds": rows[k]["seconds"],
                    "other_seconds": other[k]["seconds"],
                    "summary": rows[k]["summary"],
                    "differences": d,
                }
                for k, d in diffs.items()
            ]
        table.append(line)
    if compared is not None:
        compared.write_text("".join(json.dumps(r) + "\n" for r in per_cloud))
    print_table(table, list(table[0]) if table else ["setting"], {"this / other (median)": "{:.3f}"})
    for line in changed:
        print(line)


if __name__ == "__main__":
    main()
