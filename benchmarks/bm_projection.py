"""Which projection makes the best point-set surface of a noisy cloud (issue 12)?

Before its patches are fitted, a noisy cloud is moved onto the surface it samples: by the learned
local CSP operator (``deepcsp.fields.local``) or onto its own point-set surface (self-projection,
``PointSetConfig.self_project``). This script measures the point-set surface each one gives, so
that the choice between them can be made on numbers: per mesh and setting (clouds as in
``bm_pointcloud.py``, seed 0), the surface's closest points of ``--samples`` points sampled on the
exact mesh, and their mean distance to it (% of the bbox diagonal; p90 too). Methods:

* ``auto``: what ``deepcsp reconstruct`` does (the learned projection from 0.35 sample spacings of
  noise, else self-projection of a noisy cloud, else none);
* ``learned``: the learned projection on every cloud;
* ``self``: self-projection on every cloud;
* ``avg``: the mean of the two projected positions;
* ``none``: no projection.

Each projection is followed by the pipeline's own steps (its offset along the normal removed, the
patches fitted again: ``PointSetSurface.build(..., project=...)``). The table gives each method's
error over ``auto``'s and the cloud's noise estimate (sample spacings) and patch size, which a rule
would have to read; the summary, per setting, the median ratio and on how many clouds a method is
lower. Defaults: the 12 meshes the shipped model was trained and selected on (choose rules there,
check them on the other 12).

Usage::

    python benchmarks/bm_projection.py [--meshes bob teddy] [--settings 3k-n0.5 10k-n0.5]
        [--methods auto learned self] [--out benchmarks/out/projection.jsonl] [--summary-only]
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
from _common import REPO, all_meshes, machine, print_table  # noqa: E402
from bm_pointcloud import ground_truth, make_cloud  # noqa: E402

METHODS = ("auto", "learned", "self", "avg", "none")


def projections(model_path: str | None = None) -> dict:
    """``method -> (PointSetConfig, project function or None, project_above)`` for ``PointSetSurface.build``."""
    from deepcsp.fit.loop import _learned_projection
    from deepcsp.geometry.pointset import PointSetConfig, PointSetSurface

    learned = _learned_projection(model_path, "cpu", None)  # what reconstruction calls
    plain = PointSetConfig(self_project=False)

    def own(p):
        return PointSetSurface.build(p, plain).project(p)

    def avg(p):
        return 0.5 * (learned(p) + own(p))

    return {
        "auto": (PointSetConfig(), learned, 0.35),
        "learned": (plain, learned, 0.0),
        "self": (plain, own, 0.0),
        "avg": (plain, avg, 0.0),
        "none": (plain, None, 0.0),
    }


def measure(mesh: Path, setting: str, methods: list[str], table: dict, samples: int) -> list[dict]:
    """One row per method: the point-set surface's error against the exact mesh."""
    from deepcsp.geometry.closest import MeshOracle
    from deepcsp.geometry.pointset import PointSetConfig, PointSetSurface, _cleaned, _scale_and_noise
    from deepcsp.geometry.sampling import sample_surface

    gv, gf, diag = ground_truth(mesh)
    cloud = make_cloud(gv, gf, diag, setting, 0)
    pts, _ = _cleaned(cloud, PointSetConfig())
    _, spacing, size = _scale_and_noise(pts, PointSetConfig())
    probes = sample_surface(gv, gf, samples, np.random.default_rng(1)).points
    oracle = MeshOracle(gv, gf)
    rows = []
    for method in methods:
        config, project, above = table[method]
        t0 = time.perf_counter()
        pss = PointSetSurface.build(cloud, config, project, project_above=above)
        seconds = time.perf_counter() - t0
        err = oracle.query(pss.project(probes)).distances / diag * 100
        rows.append(
            dict(
                mesh=f"{mesh.parent.name}/{mesh.stem}",
                setting=setting,
                method=method,
                noise_spacings=float(size.noise / np.median(spacing)),
                patch=int(size.neighbors),
                error=float(err.mean()),
                p90=float(np.quantile(err, 0.9)),
                moved=pss.summary.projection,
                build_s=seconds,
            )
        )
    return rows


def summarize(rows: list[dict], settings: list[str], methods: list[str]) -> None:
    by = {(r["mesh"], r["setting"], r["method"]): r for r in rows}
    for setting in settings:
        meshes = sorted({m for m, s, _ in by if s == setting})
        table, ratios = [], {m: [] for m in methods}
        for mesh in meshes:
            base = by.get((mesh, setting, "auto"))
            line = {"mesh": mesh}
            if base:
                line.update(noise=base["noise_spacings"], patch=base["patch"], auto=base["error"], moved=base["moved"])
            for method in methods:
                r = by.get((mesh, setting, method))
                if r and base and method != "auto":
                    line[method] = r["error"] / base["error"]
                    ratios[method].append(line[method])
            table.append(line)
        print(f"\n### {setting}: point-set surface error, % of the diagonal (auto), other methods / auto\n")
        cols = ["mesh", "noise", "patch", "moved", "auto"] + [m for m in methods if m != "auto"]
        print_table(table, cols, {**{m: "{:.3f}" for m in methods}, "noise": "{:.2f}", "auto": "{:.4f}"})
        for method in methods:
            if ratios[method]:
                r = ratios[method]
                lower = sum(x < 1 for x in r)
                print(f"- {method}: median {statistics.median(r):.3f}x auto, lower on {lower} of {len(r)}")


def main() -> None:
    from deepcsp.cli.train_local import TRAIN_MESHES, VAL_MESHES

    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--meshes", nargs="*", default=None, help="mesh stems (default: the model's train and val meshes)")
    ap.add_argument("--settings", nargs="+", default=["3k-n0.5", "10k-n0.25", "10k-n0.5"])
    ap.add_argument("--methods", nargs="+", default=list(METHODS), choices=METHODS)
    ap.add_argument("--samples", type=int, default=4000, help="points sampled on the exact mesh")
    ap.add_argument("--out", type=Path, default=REPO / "benchmarks" / "out" / "projection.jsonl")
    ap.add_argument("--summary-only", action="store_true", help="print the table of --out, compute nothing")
    a = ap.parse_args()
    if a.samples < 1:
        raise SystemExit("--samples must be at least 1")
    stems = a.meshes or [Path(m).stem for m in TRAIN_MESHES + VAL_MESHES]
    paths = [p for p in all_meshes() if p.stem in stems]
    missing = sorted(set(stems) - {p.stem for p in paths})
    if missing:
        raise SystemExit(f"meshes not found: {', '.join(missing)}")
    if not a.summary_only:
        import torch

        torch.set_num_threads(1)
        a.out.parent.mkdir(parents=True, exist_ok=True)
        table = projections()
        print(f"# {machine()}", flush=True)
        for setting in a.settings:
            for path in paths:
                for row in measure(path, setting, a.methods, table, a.samples):
                    with a.out.open("a") as f:
                        f.write(json.dumps(row) + "\n")
                    print(json.dumps(row), flush=True)
    rows = [json.loads(line) for line in a.out.read_text().splitlines() if line.strip()] if a.out.exists() else []
    summarize(rows, a.settings, a.methods)


if __name__ == "__main__":
    main()
