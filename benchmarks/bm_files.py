"""Field file size (issue 16): a default ``deepcsp fit`` of each dev mesh saved with the mesh
codec (the mesh plus each band-grid value's triangle, :mod:`deepcsp.fields.meshcodec`, the
default for mesh fits) and with second differences (:mod:`deepcsp.fields.codec`, what point-cloud
fits and files before format 3 use), both from the same fit in the same run.

Columns: mesh file (the input as given: OBJ text, GLB binary), field files in MB and as a ratio to
the mesh file; save and load seconds; the band error of the field read back from each file
(``evaluate_field``: mean ``|CSP_field(p) - CSP_exact(p)|`` for 30k points uniform within 5% of
the diagonal, % of the diagonal) against the field in memory.

    python benchmarks/bm_files.py                        # all dev meshes
    python benchmarks/bm_files.py --meshes spot tee_sim --json out.json
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path

import numpy as np
from _common import all_meshes, machine, print_table

from deepcsp.fields import load_field
from deepcsp.fit import FitConfig, fit_surface
from deepcsp.fit.evaluate import evaluate_field
from deepcsp.geometry.closest import MeshOracle
from deepcsp.io import load_surface


def _timed(fn, *args):
    t = time.perf_counter()
    out = fn(*args)
    return out, time.perf_counter() - t


def measure(path: Path, tmp: Path) -> dict:
    surf = load_surface(path)
    v, f = surf.normalized_vertices, surf.faces
    field = fit_surface(surf, FitConfig(eval_points=0)).field
    oracle = MeshOracle(v, f)
    row = {"mesh": f"{path.parent.name}/{path.stem}", "mesh MB": path.stat().st_size / 1e6}
    row["band % memory"] = 100 * evaluate_field(field, v, f, oracle, n=30_000).mean
    mesh_file, row["save s"] = _timed(field.save, tmp / "mesh.safetensors")
    loaded, row["load s"] = _timed(load_field, mesh_file)
    row["band % mesh codec"] = 100 * evaluate_field(loaded, v, f, oracle, n=30_000).mean
    field.module.encoder.source = None  # the second-difference codec
    plain_file, row["save s (2nd diff)"] = _timed(field.save, tmp / "plain.safetensors")
    plain, row["load s (2nd diff)"] = _timed(load_field, plain_file)
    row["band % 2nd diff"] = 100 * evaluate_field(plain, v, f, oracle, n=30_000).mean
    row["field MB"] = mesh_file.stat().st_size / 1e6
    row["field MB (2nd diff)"] = plain_file.stat().st_size / 1e6
    row["file / mesh"] = row["field MB"] / row["mesh MB"]
    row["file / mesh (2nd diff)"] = row["field MB (2nd diff)"] / row["mesh MB"]
    return row


COLS = [
    "mesh",
    "mesh MB",
    "field MB",
    "file / mesh",
    "field MB (2nd diff)",
    "file / mesh (2nd diff)",
    "save s",
    "load s",
    "save s (2nd diff)",
    "load s (2nd diff)",
    "band % memory",
    "band % mesh codec",
    "band % 2nd diff",
]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--meshes", nargs="*", help="mesh names (stems) to run; default all dev meshes")
    ap.add_argument("--json", type=Path, help="write the rows here")
    args = ap.parse_args()
    paths = [p for p in all_meshes() if not args.meshes or p.stem in args.meshes]
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for p in paths:
            rows.append(measure(p, Path(tmp)))
            print(f"{rows[-1]['mesh']}: {rows[-1]['file / mesh']:.2f}x the mesh file", flush=True)
    print(f"\n{machine()}\n")
    print_table(rows, COLS, {c: "{:.3f}" for c in COLS[1:]} | {c: "{:.5f}" for c in COLS if c.startswith("band")})
    med = {c: float(np.median([r[c] for r in rows])) for c in COLS[1:]}
    print(
        f"\nmedian over {len(rows)} meshes: file / mesh {med['file / mesh']:.2f} (second differences "
        f"{med['file / mesh (2nd diff)']:.2f}); band error from the file {med['band % mesh codec']:.5f}% "
        f"(second differences {med['band % 2nd diff']:.5f}%, memory {med['band % memory']:.5f}%); "
        f"load {med['load s']:.2f} s ({med['load s (2nd diff)']:.2f} s)"
    )
    if args.json:
        args.json.write_text(json.dumps({"machine": machine(), "rows": rows}, indent=1))


if __name__ == "__main__":
    main()
