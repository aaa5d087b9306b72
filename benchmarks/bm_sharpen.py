"""What crease sharpening (``ExtractConfig.sharpen``) costs in extraction time: each dev mesh's
field is fitted once with the defaults, then meshed at 256 with ``sharpen=0`` and with the default,
twice each in alternation; the faster of each pair counts. (Its effect on the meshes is in
``bm_thin.py --sharpen 0`` against the default.)

Run:  python benchmarks/bm_sharpen.py [--meshes closed/spot.obj ...] [--threads 1] [--json out.json]
"""

from __future__ import annotations

import argparse
import json
import statistics
from pathlib import Path

from _common import all_meshes, machine, meshes_dir, print_table


def run_mesh(path: Path) -> dict:
    from deepcsp.extract import ExtractConfig, extract_mesh
    from deepcsp.fit import FitConfig, fit_surface
    from deepcsp.io import load_surface

    field = fit_surface(load_surface(path), FitConfig(eval_points=0)).field
    seconds = {0.0: [], 1.0: []}
    for sharpen in (0.0, 1.0, 0.0, 1.0):
        res = extract_mesh(field, ExtractConfig(sharpen=sharpen))
        seconds[sharpen].append(res.seconds)
        if sharpen:
            sharpened = res
    plain, sharp = min(seconds[0.0]), min(seconds[1.0])
    return {
        "mesh": str(path.relative_to(meshes_dir())),
        "plain s": plain,
        "sharpened s": sharp,
        "ratio": sharp / plain,
        "sharpen s": sharpened.timings.get("sharpen", 0.0),
        "vertices": len(sharpened.vertices),
        "moved": sharpened.n_sharpened,
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--meshes", nargs="*", help="paths under the meshes folder (default: all dev meshes)")
    ap.add_argument("--threads", type=int, default=0, help="torch threads (0: torch's default)")
    ap.add_argument("--json", type=Path, help="write the rows here")
    args = ap.parse_args()
    if args.threads:
        import torch

        torch.set_num_threads(args.threads)
    paths = [meshes_dir() / m for m in args.meshes] if args.meshes else all_meshes()
    print(f"# bm_sharpen on {machine()}")
    rows = []
    for p in paths:
        rows.append(run_mesh(p))
        print(json.dumps(rows[-1]), flush=True)
    print_table(rows, list(rows[0]), {c: "{:.2f}" for c in ("plain s", "sharpened s", "ratio", "sharpen s")})
    ratios = [r["ratio"] for r in rows]
    print(
        f"extraction time with / without: median {statistics.median(ratios):.2f}x ({min(ratios):.2f}-{max(ratios):.2f})"
    )
    if args.json:
        args.json.write_text(json.dumps({"machine": machine(), "rows": rows}, indent=1))


if __name__ == "__main__":
    main()
