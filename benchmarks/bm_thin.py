"""Thin parts and close sheets (issue 16): fitted default fields and meshes extracted from them with
the default settings, on synthetic plates, parallel sheets and a fold, and on the dev meshes with
thin parts.

Run:  python benchmarks/bm_thin.py [--cases NAME ...] [--json out.json] [--render DIR] [--reload]
      python benchmarks/bm_thin.py --compare before.json after.json     # ratios after / before

Cases: ``plate T`` (closed box 1 x 0.6 x T fine cells, tilted), ``sheets G`` (two open rectangles
G cells apart), ``fold G`` (one open sheet folded back, its two layers G cells apart), ``windows W``
(an open rectangle with two round holes W cells apart where they come closest), and the dev
meshes airplane_holes, armor_jacket, tee_sim, skirt_sim, cesium_milk_truck, cube_no_bottom. A cell
is one cell of the default band grid (192 vertices per axis over the normalised cube).

Columns
* close p50 / p90: closest-point error ``|CSP_field(p) - CSP_exact(p)|`` in cells, for ``p = s + t n``
  (``s`` area-uniform surface samples, ``n`` their face normal, ``t`` uniform in [-1, 1] cells) at
  samples whose nearest other surface along ``+-n`` (exact ray cast) is at most 1 cell away (n: how
  many); else p50 / p90: the same where it is more than 3 cells away.
* band %: mean error for 30k points uniform within 5% of the bbox diagonal (``evaluate_field``), % of the diagonal.
* refined: fine cells refined (``FieldConfig.refine_factor``); file / mesh: field file over the
  input mesh file (synthetic cases: written as OBJ); fit s; Mq/s: field queries per second on 1M
  points uniform in the bounding box (+0.02).
* mesh: ``extract_mesh`` with the defaults (resolution 256): area ratio to the input, boundary loops
  ours/input, inconsistent edges, components ours/input, Chamfer-L1 (mean both ways) and Hausdorff
  as % of the diagonal, normal consistency (``compare_surfaces``, 50k samples), extraction path.
"""

from __future__ import annotations

import argparse
import json
import os
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
from _common import machine, meshes_dir, print_table

from deepcsp.extract import ExtractConfig, extract_mesh, mesh_stats
from deepcsp.fit import FitConfig, fit_surface
from deepcsp.fit.evaluate import evaluate_field
from deepcsp.geometry import thin_shapes
from deepcsp.geometry.closest import MeshOracle
from deepcsp.geometry.metrics import compare_surfaces
from deepcsp.geometry.sampling import sample_surface
from deepcsp.io import load_surface
from deepcsp.io.surface import save_mesh, surface_from_arrays
from deepcsp.render import exact_ray_cast

CELL = 1.0 / 191  # a default band-grid cell, normalised units
SYNTHETIC = (
    [f"plate {t}" for t in (0.05, 0.1, 0.25, 0.5, 1, 2)]
    + [f"sheets {g}" for g in (0.1, 0.25, 0.5, 1, 1.25, 1.5, 2)]
    + ["fold 0.5", "fold 1"]
    + [f"windows {w}" for w in (1, 1.5, 2)]
)
DEV = [
    "open/airplane_holes.obj",
    "open/armor_jacket.obj",
    "open/tee_sim.obj",
    "open/skirt_sim.obj",
    "open/cesium_milk_truck.glb",
    "open/cube_no_bottom.obj",
]


def load_case(name: str, tmp: Path):
    """``(surface, mesh file)`` of a case name (synthetic shapes are written as OBJ for the size ratio)."""
    if " " in name:
        kind, cells = name.split()
        make = {
            "plate": thin_shapes.plate,
            "sheets": thin_shapes.parallel_sheets,
            "fold": thin_shapes.folded_sheet,
            "windows": thin_shapes.windowed_sheet,
        }[kind]
        v, f = make(float(cells) * thin_shapes.cell_size())
        path = save_mesh(tmp / (name.replace(" ", "_") + ".obj"), v, f)
        return surface_from_arrays(v, f, name), path
    path = meshes_dir() / name
    return load_surface(path), path


def gap_along_normals(v: np.ndarray, f: np.ndarray, points: np.ndarray, normals: np.ndarray) -> np.ndarray:
    """Distance from each surface point to the next surface along ``+n`` or ``-n`` (inf if none)."""
    out = np.full(len(points), np.inf)
    for s in (1.0, -1.0):
        hits = exact_ray_cast(v, f, points + s * 1e-6 * normals, s * normals)
        out = np.minimum(out, np.where(hits.hit, hits.depth, np.inf))
    return out


def close_sheet_errors(field, v: np.ndarray, f: np.ndarray, n: int, seed: int = 0) -> dict:
    """Closest-point errors in cells near close sheets and elsewhere (see the module docstring)."""
    rng = np.random.default_rng(seed)
    s = sample_surface(v, f, n, rng)
    gap = gap_along_normals(v, f, s.points, s.normals)
    p = s.points + rng.uniform(-1.0, 1.0, n)[:, None] * CELL * s.normals
    exact = MeshOracle(v, f).query(p).points
    pred = (
        torch.cat(
            [
                field.closest_points_normalized(torch.as_tensor(p[i : i + 65536], dtype=torch.float32))
                for i in range(0, n, 65536)
            ]
        )
        .double()
        .numpy()
    )
    err = np.linalg.norm(pred - exact, axis=1) / CELL
    out = {}
    for key, m in (("close", gap <= CELL), ("else", gap > 3 * CELL)):
        out[f"{key} n"] = int(m.sum())
        out[f"{key} p50"], out[f"{key} p90"] = (
            (float(np.percentile(err[m], q)) for q in (50, 90)) if m.any() else (float("nan"),) * 2
        )
    return out


def query_rate(field, v: np.ndarray, n: int = 1_000_000) -> float:
    x = torch.as_tensor(np.random.default_rng(3).uniform(v.min(0) - 0.02, v.max(0) + 0.02, (n, 3)), dtype=torch.float32)
    field.closest_points_normalized(x)  # caches (lookup tables) built once
    t = time.perf_counter()
    field.closest_points_normalized(x)
    return n / (time.perf_counter() - t) / 1e6


def run_case(
    name: str, tmp: Path, n_samples: int, render_dir: Path | None, reload: bool = False, sharpen: float | None = None
) -> dict:
    surf, mesh_path = load_case(name, tmp)
    v, f = surf.normalized_vertices, surf.faces
    t = time.perf_counter()
    fit = fit_surface(surf, FitConfig(eval_points=0))
    seconds = time.perf_counter() - t
    field = fit.field
    fpath = field.save(tmp / "field.safetensors")
    if reload:  # the field as `deepcsp mesh` reads it back (values quantised in the file)
        from deepcsp.fields import load_field

        field = load_field(fpath)
    row = {"case": name, "fit s": seconds, "refined": getattr(fit.band, "n_refined", 0)}
    row.update(close_sheet_errors(field, v, f, n_samples))
    row["band %"] = 100 * evaluate_field(field, v, f, MeshOracle(v, f), n=30_000).mean
    row["file / mesh"] = os.path.getsize(fpath) / os.path.getsize(mesh_path)
    row["Mq/s"] = query_rate(field, v)
    r = extract_mesh(field, ExtractConfig() if sharpen is None else ExtractConfig(sharpen=sharpen))
    gt = mesh_stats(surf.vertices, surf.faces)
    m = compare_surfaces(r.vertices, r.faces, surf.vertices, surf.faces, n_samples=50_000)
    diag = float(np.linalg.norm(surf.vertices.max(0) - surf.vertices.min(0)))
    s = r.stats
    row.update(
        {
            "area": s.area / gt.area,
            "loops": f"{s.n_boundary_loops}/{gt.n_boundary_loops}",
            "incons.": s.n_inconsistent_edges,
            "comps": f"{s.n_components}/{gt.n_components}",
            "CD %": 100 * m.chamfer_l1_rel,
            "Haus %": 100 * m.hausdorff / diag,
            "NC": m.normal_consistency,
            "path": ("signed" if r.signed else "pseudo")
            + (f" @{r.topology_resolution}+{r.refine_passes}" if r.refine_passes else ""),
        }
    )
    if render_dir is not None:
        render_pair(surf, field, r, render_dir / (name.replace(" ", "_").replace("/", "_") + ".png"))
    return row


def render_pair(surf, field, mesh, out: Path) -> None:
    """The input (exact ray cast), the field (sphere-traced) and the extracted mesh, side by side."""
    from deepcsp.render import encode_png, orbit_camera, render_field, render_mesh_exact

    cam = orbit_camera(30, 35, 500, 500, fov=22, distance=2.2)
    imgs = [
        render_mesh_exact(surf.vertices, surf.faces, cam, surf.normalization).image,
        render_field(field, cam).image,
        render_mesh_exact(mesh.vertices, mesh.faces, cam, surf.normalization).image,
    ]
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_bytes(encode_png(np.concatenate(imgs, 1)))


FIELD_COLS = [
    "case",
    "close n",
    "close p50",
    "close p90",
    "else p50",
    "else p90",
    "band %",
    "refined",
    "file / mesh",
    "fit s",
    "Mq/s",
]
MESH_COLS = ["case", "area", "loops", "incons.", "comps", "CD %", "Haus %", "NC", "path"]
FMT = {
    "close p50": "{:.3f}",
    "close p90": "{:.3f}",
    "else p50": "{:.3f}",
    "else p90": "{:.3f}",
    "band %": "{:.4f}",
    "file / mesh": "{:.2f}",
    "fit s": "{:.1f}",
    "Mq/s": "{:.2f}",
    "area": "{:.3f}",
    "CD %": "{:.4f}",
    "Haus %": "{:.3f}",
    "NC": "{:.4f}",
}


def compare(before: Path, after: Path) -> None:
    """Ratios after / before of the numeric field columns, per case (same machine and run pair)."""
    a = {r["case"]: r for r in json.loads(before.read_text())["rows"]}
    b = {r["case"]: r for r in json.loads(after.read_text())["rows"]}
    rows = []
    for case in [c for c in b if c in a]:
        row = {"case": case}
        for col in ("close p90", "else p90", "band %", "file / mesh", "fit s", "Mq/s", "CD %", "Haus %", "1 - NC"):
            x, y = (1 - a[case]["NC"], 1 - b[case]["NC"]) if col == "1 - NC" else (a[case].get(col), b[case].get(col))
            row[col] = (
                y / x
                if isinstance(x, (int, float)) and isinstance(y, (int, float)) and x and np.isfinite(x)
                else float("nan")
            )
        rows.append(row)
    print_table(
        rows,
        list(rows[0]) if rows else ["case"],
        {
            c: "{:.2f}"
            for c in ("close p90", "else p90", "band %", "file / mesh", "fit s", "Mq/s", "CD %", "Haus %", "1 - NC")
        },
    )


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument(
        "--cases", nargs="*", default=SYNTHETIC + DEV, help="case names (quote the synthetic ones: 'plate 0.05')"
    )
    ap.add_argument("--samples", type=int, default=200_000, help="surface samples of the close-sheet error")
    ap.add_argument("--json", type=Path, help="write the rows here")
    ap.add_argument("--render", type=Path, help="folder for input | field | mesh renders of each case")
    ap.add_argument(
        "--reload",
        action="store_true",
        help="measure the field read back from its file (what `deepcsp fit` + `deepcsp mesh` give), not the fitted one",
    )
    ap.add_argument(
        "--sharpen",
        type=float,
        default=None,
        help="ExtractConfig.sharpen of the meshes (default: the extraction's default; 0: no crease sharpening)",
    )
    ap.add_argument(
        "--compare",
        type=Path,
        nargs=2,
        metavar=("BEFORE", "AFTER"),
        help="print after / before ratios of two --json files",
    )
    args = ap.parse_args()
    if args.compare:
        compare(*args.compare)
        return
    print(f"# bm_thin on {machine()}")
    rows = []
    with tempfile.TemporaryDirectory() as d:
        for name in args.cases:
            rows.append(run_case(name, Path(d), args.samples, args.render, args.reload, args.sharpen))
            print(
                json.dumps({k: (round(v, 5) if isinstance(v, float) else v) for k, v in rows[-1].items()}), flush=True
            )
    print_table(rows, FIELD_COLS, FMT)
    print()
    print_table(rows, MESH_COLS, FMT)
    if args.json:
        args.json.write_text(json.dumps({"machine": machine(), "rows": rows}, indent=1))


if __name__ == "__main__":
    main()
