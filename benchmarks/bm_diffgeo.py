"""Benchmark: normals and curvatures from fitted CSP fields vs truth (issue 4).

For each shape (analytic sphere and torus meshed finely, plus dev meshes) fit the default band-grid
CSP field (``FitConfig(max_steps=0)``: collocation only) and the UDF baseline on the same grid, then
at area-uniform surface samples:

* normals: unsigned angle to the exact face normal (median, p95) for CSP direction / Jacobian and
  UDF gradient, with and without back-off; a signed check at off-surface queries ``q + t n``;
* curvature: median relative error of mean curvature against the analytic sphere and torus (signs
  aligned with the true normals); on dev meshes, Pearson/Spearman correlation of mean curvature at
  the mesh vertices with libigl's quadric-fit ``principal_curvature`` on the ground-truth mesh;
* cost: points per second of normals and curvatures relative to plain closest-point queries.

Run: ``python benchmarks/bm_diffgeo.py [--quick] [--n 4000] [--threads 2]``
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np
import torch

from deepcsp.fields import diffgeo as fdg
from deepcsp.fields.query import load_field
from deepcsp.fit import fit_surface
from deepcsp.fit.config import FitConfig
from deepcsp.fit.presets import udf_baseline
from deepcsp.geometry import analytic
from deepcsp.geometry.sampling import sample_surface
from deepcsp.io import load_surface
from deepcsp.io.surface import surface_from_arrays

MESHES = Path("/work/shared/data/meshes")
DEV = ["closed/spot.obj", "closed/fish_blub.obj", "open/tee_sim.obj", "open/demosthenes_scan.obj"]


def angles(n: np.ndarray, ref: np.ndarray, signed: bool = False) -> np.ndarray:
    c = (n * ref).sum(1) / np.linalg.norm(ref, axis=1)
    return np.degrees(np.arccos(np.clip(c if signed else np.abs(c), -1, 1)))


def stats(a: np.ndarray) -> str:
    return f"{np.median(a):.2f} / {np.percentile(a, 95):.2f}"


def timed(fn, *a, **k):
    t0 = time.perf_counter()
    out = fn(*a, **k)
    return out, time.perf_counter() - t0


def shapes(quick: bool):
    out = [
        ("sphere (analytic)", surface_from_arrays(*analytic.Sphere().mesh(5 if quick else 6), name="sphere"), analytic.Sphere()),
        ("torus (analytic)", surface_from_arrays(*(analytic.Torus().mesh(192, 96) if quick else analytic.Torus().mesh(384, 192)), name="torus"), analytic.Torus()),
    ]
    for rel in DEV[:2] if quick else DEV:
        out.append((rel, load_surface(MESHES / rel), None))
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=4000, help="surface samples per shape")
    ap.add_argument("--n-cost", type=int, default=20000, help="points for the cost measurement")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--cache", default="", help="folder to keep fitted fields between runs")
    ap.add_argument("--quick", action="store_true", help="coarser analytic meshes, two dev meshes")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    rng = np.random.default_rng(0)
    normal_rows, curv_rows, igl_rows, cost_rows = [], [], [], []
    for name, surf, shape in shapes(args.quick):
        cfg = FitConfig(max_steps=0, eval_points=0)
        fields, secs = {}, {}
        tag = "_quick" if args.quick and shape is not None else ""
        for kind, c in [("csp", cfg), ("udf", udf_baseline(cfg))]:
            path = Path(args.cache) / f"{name.split()[0].replace('/', '_')}_{kind}{tag}.safetensors" if args.cache else None
            if path is not None and path.exists():
                fields[kind], secs[kind] = load_field(path), float("nan")
                continue
            r, secs[kind] = timed(fit_surface, surf, c)
            fields[kind] = r.field
            if path is not None:
                r.field.save(path)
        csp, udf, t_csp, t_udf = fields["csp"], fields["udf"], secs["csp"], secs["udf"]
        v, f = surf.vertices, surf.faces
        open_surface = name.startswith("open/")
        s = sample_surface(v, f, args.n, rng)
        q, nt = s.points, s.normals
        diag = surf.bbox_diagonal
        res = {
            "CSP direction (back-off)": fdg.normals(csp, q, "direction"),
            "CSP direction at p": fdg.normals(csp, q, "direction", offset=0.0),
            "CSP Jacobian (default: central for band grids)": fdg.normals(csp, q, "jacobian"),
            "CSP Jacobian (central, 2 cells)": fdg.normals(csp, q, "jacobian", jacobian="central"),
            "UDF gradient (back-off)": fdg.normals(udf, q, "udf_gradient"),
            "UDF gradient at p": fdg.normals(udf, q, "udf_gradient", offset=0.0),
            "UDF Jacobian of its CSP": fdg.normals(udf, q, "jacobian"),
        }
        # Signed check off the surface: p = q + t n_true, t in [0.5%, 2%] of the diagonal.
        tq = rng.uniform(0.005, 0.02, len(q)) * diag
        side = rng.choice([-1.0, 1.0], len(q))
        nu = nt / np.linalg.norm(nt, axis=1, keepdims=True)
        p_off = q + (side * tq)[:, None] * nu
        from deepcsp.geometry.closest import MeshOracle

        exact = MeshOracle(v, f).query(p_off)
        keep = np.abs(exact.distances - tq) < 1e-3 * diag  # q is still the closest point of p_off
        p_off, side, nu_off = p_off[keep], side[keep], nu[keep]
        signed = {
            "CSP direction": fdg.normals(csp, p_off, "direction"),
            "CSP Jacobian": fdg.normals(csp, p_off, "jacobian"),
            "UDF gradient": fdg.normals(udf, p_off, "udf_gradient"),
        }
        for k, n in res.items():
            normal_rows.append((name, k, stats(angles(n, nt)), "-"))
        for k, n in signed.items():
            normal_rows.append((name, k + " @ q+-t n (signed)", stats(angles(n, side[:, None] * nu_off, signed=True)), f"{keep.mean() * 100:.0f}% of queries kept"))

        if shape is not None:
            # Truth at the analytic surface point nearest to each sample (mesh is within ~1e-4).
            qa = shape.closest_points(q)
            k1, k2 = shape.curvatures(qa)
            H = (k1 + k2) / 2
            na = shape.normals(qa)
            for label, fld, kw in [
                ("CSP Jacobian (central, default)", csp, {}),
                ("CSP Jacobian (autograd)", csp, {"jacobian": "autograd"}),
                ("UDF Hessian (central, default)", udf, {}),
                ("UDF Jacobian of its CSP (central)", udf, {"method": "jacobian"}),
            ]:
                c = fdg.curvatures(fld, q, **kw)
                sgn = np.sign((c.normals * na).sum(1))
                rel = np.abs(c.mean * sgn - H) / np.abs(H)
                rk1 = np.abs(np.where(sgn > 0, c.k1, -c.k2) - k1) / np.abs(k1)
                curv_rows.append((name, label, f"{np.median(rel) * 100:.1f}% / {np.percentile(rel, 95) * 100:.1f}%", f"{np.median(rk1) * 100:.1f}%"))
        else:
            import igl
            from scipy.stats import pearsonr, spearmanr

            pd1, pd2, pv1, pv2 = igl.principal_curvature(v, f)[:4]
            Hi = (pv1 + pv2) / 2
            vn = igl.per_vertex_normals(v, f)
            ok = np.isfinite(Hi) & np.isfinite(vn).all(1)
            for label, fld, kw in [("CSP Jacobian (default)", csp, {}), ("UDF Hessian (default)", udf, {})]:
                c = fdg.curvatures(fld, v, **kw)
                Hm = c.mean * np.sign((c.normals * vn).sum(1))
                m = ok & np.isfinite(Hm)
                lo, hi = np.percentile(Hi[m], [1, 99])
                clip = lambda a: np.clip(a, lo, hi)  # noqa: E731  (robust to a few extreme vertices)
                igl_rows.append((name, label, f"{pearsonr(clip(Hm[m]), clip(Hi[m]))[0]:.3f}", f"{spearmanr(Hm[m], Hi[m])[0]:.3f}"))

        # Cost on points in a band around the surface.
        pc = q[rng.integers(0, len(q), args.n_cost)] + rng.normal(scale=0.01 * diag, size=(args.n_cost, 3))
        _, tq0 = timed(csp.query, pc)
        rate0 = args.n_cost / tq0
        row = [name, f"{rate0 / 1e3:.0f}k"]
        for fn in [
            lambda: fdg.normals(csp, pc, "direction"),
            lambda: fdg.normals(csp, pc, "jacobian"),
            lambda: fdg.curvatures(csp, pc),
            lambda: fdg.normals(udf, pc, "udf_gradient"),
            lambda: fdg.curvatures(udf, pc),
        ]:
            _, dt = timed(fn)
            row.append(f"{args.n_cost / dt / 1e3:.0f}k ({args.n_cost / dt / rate0:.2f})")
        cost_rows.append(tuple(row))
        print(f"# {name}: fit csp {t_csp:.1f}s udf {t_udf:.1f}s", flush=True)

    def table(title, header, rows):
        print(f"\n### {title}\n")
        print("| " + " | ".join(header) + " |")
        print("|" + "---|" * len(header))
        for r in rows:
            print("| " + " | ".join(r) + " |")

    table("Normals: angle error in degrees (median / p95), unsigned at surface samples", ["shape", "method", "median / p95 deg", ""], normal_rows)
    table("Curvature on fitted analytic shapes: relative error of mean curvature (median / p95), k1", ["shape", "method", "mean curv. rel. err", "k1 median rel. err"], curv_rows)
    table("Dev meshes: mean curvature at vertices vs libigl principal_curvature", ["mesh", "method", "Pearson (1-99% clipped)", "Spearman"], igl_rows)
    table("Cost: points/s (ratio to plain closest-point queries)", ["shape", "query", "CSP dir normals", "CSP Jacobian normals", "CSP curvatures", "UDF grad normals", "UDF Hessian curvatures"], cost_rows)


if __name__ == "__main__":
    main()
