"""Benchmark: normals and curvatures from fitted CSP fields vs truth (issue 4).

For each shape (analytic sphere and torus meshed finely, plus dev meshes) fit the default band-grid
CSP field (``FitConfig(max_steps=0)``: collocation only) and the UDF baseline on the same grid, then
at area-uniform surface samples:

* normals: unsigned angle to the exact face normal (median, p95) for CSP corners (the default for
  band grids) / Jacobian / direction and UDF gradient; a signed check at off-surface queries
  ``q +- t n`` (normals towards the query side);
* orientation (closed shapes): share of outward normals with ``orient="outward"`` (the default for
  closed fields) at surface samples and at ``q +- t n``, against the exact outward face normals;
* truth roughness (dev meshes): the exact face normal against its area-weighted (sign-free) average
  within 0.5 and 1 fine cell, i.e. what no field smoother than the mesh could reproduce; and where
  the errors above 10 degrees sit (creases, open boundaries, folds / thin parts);
* finer grids (``--resolutions``): corners and Jacobian normals of band grids at other resolutions;
* curvature: median relative error of mean curvature against the analytic sphere and torus (signs
  aligned with the true normals); on dev meshes, Pearson/Spearman correlation of mean curvature at
  the mesh vertices with libigl's quadric-fit ``principal_curvature`` on the ground-truth mesh;
* cost: points per second of normals and curvatures relative to plain closest-point queries.

Run: ``python benchmarks/bm_diffgeo.py [--quick] [--n 4000] [--threads 1] [--cache DIR] [--resolutions 256 320]``
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np
import torch
from _common import meshes_dir

from deepcsp.fields import FieldConfig
from deepcsp.fields import diffgeo as fdg
from deepcsp.fields.query import load_field
from deepcsp.fit import fit_surface
from deepcsp.fit.config import FitConfig
from deepcsp.fit.presets import udf_baseline
from deepcsp.geometry import analytic
from deepcsp.geometry.closest import MeshOracle
from deepcsp.geometry.sampling import sample_surface
from deepcsp.io import load_surface
from deepcsp.io.surface import surface_from_arrays

MESHES = meshes_dir()  # $DEEPCSP_MESHES or ../shared/data/meshes
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


def shapes(quick: bool, meshes: list[str]):
    out = [
        (
            "sphere (analytic)",
            surface_from_arrays(*analytic.Sphere().mesh(5 if quick else 6), name="sphere"),
            analytic.Sphere(),
        ),
        (
            "torus (analytic)",
            surface_from_arrays(
                *(analytic.Torus().mesh(192, 96) if quick else analytic.Torus().mesh(384, 192)), name="torus"
            ),
            analytic.Torus(),
        ),
    ]
    for rel in meshes[:2] if quick else meshes:
        out.append((rel, load_surface(MESHES / rel), None))
    return out


def fit_cached(name: str, surf, cfg: FitConfig, kind: str, cache: str, tag: str):
    """Fit (or load from ``cache``) one field; returns (field, fit seconds or NaN)."""
    path = Path(cache) / f"{name.split()[0].replace('/', '_')}_{kind}{tag}.safetensors" if cache else None
    if path is not None and path.exists():
        return load_field(path), float("nan")
    r, secs = timed(fit_surface, surf, cfg)
    if path is not None:
        path.parent.mkdir(parents=True, exist_ok=True)
        r.field.save(path)
    return r.field, secs


def input_diagonal(surf) -> float:
    """Bounding-box diagonal in input units (``Surface.bbox_diagonal`` is in normalised units)."""
    v = surf.vertices
    return float(np.linalg.norm(v.max(0) - v.min(0)))


def off_surface_queries(surf, q, nt, rng):
    """``q + side t n`` with t in [0.5%, 2%] of the diagonal, kept where q is still the exact closest
    point (within 0.1% of the diagonal); returns (points, side, unit normals, kept share)."""
    diag = input_diagonal(surf)
    tq = rng.uniform(0.005, 0.02, len(q)) * diag
    side = rng.choice([-1.0, 1.0], len(q))
    nu = nt / np.linalg.norm(nt, axis=1, keepdims=True)
    p = q + (side * tq)[:, None] * nu
    exact = MeshOracle(surf.vertices, surf.faces).query(p)
    keep = (np.abs(exact.distances - tq) < 1e-3 * diag) & (np.linalg.norm(exact.points - q, axis=1) < 1e-3 * diag)
    return p[keep], side[keep], nu[keep], keep.mean()


def smoothed_normals(surf, q, radius: float, n_dense: int = 3_000_000) -> np.ndarray:
    """Dominant axis of the face normals of the surface within ``radius`` of each of ``q`` (an
    area-weighted, sign-free average from ``n_dense`` uniform samples)."""
    from scipy.spatial import cKDTree

    d = sample_surface(surf.vertices, surf.faces, n_dense, np.random.default_rng(1))
    nd = d.normals / np.maximum(np.linalg.norm(d.normals, axis=1, keepdims=True), 1e-300)
    out = np.zeros_like(q)
    for i, ids in enumerate(cKDTree(d.points).query_ball_point(q, radius)):
        m = nd[ids].T @ nd[ids] if len(ids) else np.eye(3)
        out[i] = np.linalg.eigh(m)[1][:, -1]
    return out


def cell_size(field) -> float:
    """Fine band-grid cell in input units."""
    c = field.config
    return 2 * c.half / (c.resolution - 1) / float(field.normalization.scale)


def normal_rows(name, csp, udf, q, nt, p_off, side, nu_off, kept):
    rows = []
    res = {
        "CSP corners (default)": fdg.normals(csp, q, "corners", orient="query"),
        "CSP Jacobian (central, 1/4 cell)": fdg.normals(csp, q, "jacobian", orient="query"),
        "CSP direction (back-off)": fdg.normals(csp, q, "direction", orient="query"),
        "CSP direction at p": fdg.normals(csp, q, "direction", offset=0.0, orient="query"),
        "UDF gradient (back-off)": fdg.normals(udf, q, "udf_gradient", orient="query"),
        "UDF gradient at p": fdg.normals(udf, q, "udf_gradient", offset=0.0, orient="query"),
        "UDF Jacobian of its CSP": fdg.normals(udf, q, "jacobian", orient="query"),
    }
    for k, n in res.items():
        rows.append((name, k, stats(angles(n, nt)), "-"))
    for k, fld, m in [
        ("CSP corners", csp, "corners"),
        ("CSP Jacobian", csp, "jacobian"),
        ("CSP direction", csp, "direction"),
        ("UDF gradient", udf, "udf_gradient"),
    ]:
        n = fdg.normals(fld, p_off, m, orient="query")
        rows.append(
            (
                name,
                k + " @ q+-t n (signed)",
                stats(angles(n, side[:, None] * nu_off, signed=True)),
                f"{kept * 100:.0f}% of queries kept",
            )
        )
    return rows, res


def orientation_rows(name, csp, q, nt, p_off, nu_off):
    rows = []
    for m in ("corners", "jacobian", "direction"):
        a_s = angles(fdg.normals(csp, q, m, orient="outward"), nt, signed=True)
        a_p = angles(fdg.normals(csp, p_off, m, orient="outward"), nu_off, signed=True)
        rows.append((name, m, f"{(a_s < 90).mean() * 100:.2f}%", f"{(a_p < 90).mean() * 100:.2f}%", stats(a_s)))
    return rows


def roughness_rows(name, surf, csp, q, nt, res):
    """Truth roughness rows and, from the same 0.5-cell average, where the tails sit."""
    h = cell_size(csp)
    sm = {r: smoothed_normals(surf, q, r * h) for r in (0.5, 1.0)}
    rows = [(name, "exact face normal", stats(angles(sm[0.5], nt)), stats(angles(sm[1.0], nt)))]
    for k in ("CSP corners (default)", "CSP Jacobian (central, 1/4 cell)"):
        rows.append((name, k, stats(angles(res[k], sm[0.5])), stats(angles(res[k], sm[1.0]))))
    return rows, tail_rows(name, surf, q, nt / np.linalg.norm(nt, axis=1, keepdims=True), sm[0.5], h, res)


def tail_rows(name, surf, q, nt, sm05, h, res):
    """Share of samples with errors > 10 deg, and which of them lie at a crease (the face normals
    turn by > 5 deg within half a cell), within 2 cells of an open boundary, or where another sheet
    lies within 2 cells along the normal (folds, thin parts; concave creases count here too)."""
    import igl
    from scipy.spatial import cKDTree

    crease = angles(sm05, nt) > 5
    edges = igl.boundary_facets(surf.faces)
    edges = edges[0] if isinstance(edges, tuple) else edges
    boundary = np.zeros(len(q), bool)
    if len(edges):
        a, b = surf.vertices[edges[:, 0]], surf.vertices[edges[:, 1]]
        pts = (a[:, None] + np.linspace(0, 1, 50)[None, :, None] * (b - a)[:, None]).reshape(-1, 3)
        boundary = cKDTree(pts).query(q)[0] < 2 * h
    oracle = MeshOracle(surf.vertices, surf.faces)
    sheet = np.zeros(len(q), bool)
    for sg in (1.0, -1.0):
        sheet |= oracle.query(q + sg * 2 * h * nt).distances < 0.9 * 2 * h
    rows = []
    for k in ("CSP corners (default)", "CSP Jacobian (central, 1/4 cell)"):
        out = angles(res[k], nt) > 10
        share = lambda m: f"{(m & out).sum() / max(out.sum(), 1) * 100:.0f}%"  # noqa: E731
        rows.append(
            (
                name,
                k,
                f"{out.mean() * 100:.1f}%",
                share(crease),
                share(boundary),
                share(sheet),
                share(~(crease | boundary | sheet)),
            )
        )
    return rows


def resolution_rows(name, surf, q, nt, resolutions, cache):
    rows = []
    for r in resolutions:
        cfg = FitConfig(max_steps=0, eval_points=0, field=FieldConfig(resolution=r))
        fld, secs = fit_cached(name, surf, cfg, "csp", cache, f"_r{r}")
        row = [name, str(r)]
        for m in ("corners", "jacobian"):
            row.append(stats(angles(fdg.normals(fld, q, m, orient="query"), nt)))
        rows.append(tuple(row + [f"{secs:.1f}"]))
    return rows


def curvature_rows(name, csp, udf, q, shape):
    rows = []
    qa = shape.closest_points(q)  # analytic surface point nearest to each sample (mesh within ~1e-4)
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
        rows.append(
            (
                name,
                label,
                f"{np.median(rel) * 100:.1f}% / {np.percentile(rel, 95) * 100:.1f}%",
                f"{np.median(rk1) * 100:.1f}%",
            )
        )
    return rows


def igl_rows(name, csp, udf, v, f):
    import igl
    from scipy.stats import pearsonr, spearmanr

    pv1, pv2 = igl.principal_curvature(v, f)[2:4]
    Hi = (pv1 + pv2) / 2
    vn = igl.per_vertex_normals(v, f)
    ok = np.isfinite(Hi) & np.isfinite(vn).all(1)
    rows = []
    for label, fld in [("CSP Jacobian (default)", csp), ("UDF Hessian (default)", udf)]:
        c = fdg.curvatures(fld, v, orient="query")
        Hm = c.mean * np.sign((c.normals * vn).sum(1))
        m = ok & np.isfinite(Hm)
        lo, hi = np.percentile(Hi[m], [1, 99])
        rows.append(
            (
                name,
                label,
                f"{pearsonr(np.clip(Hm[m], lo, hi), np.clip(Hi[m], lo, hi))[0]:.3f}",
                f"{spearmanr(Hm[m], Hi[m])[0]:.3f}",
            )
        )
    return rows


def cost_row(name, csp, udf, pc):
    _, tq0 = timed(csp.query, pc)  # warm-up (first touch of a freshly loaded field)
    _, tq0 = timed(csp.query, pc)
    rate0 = len(pc) / tq0
    row = [name, f"{rate0 / 1e3:.0f}k"]
    for fn in [
        lambda: fdg.normals(csp, pc, "corners", orient="query"),
        lambda: fdg.normals(csp, pc, "corners"),
        lambda: fdg.normals(csp, pc, "jacobian", orient="query"),
        lambda: fdg.normals(csp, pc, "direction", orient="query"),
        lambda: fdg.curvatures(csp, pc, orient="query"),
        lambda: fdg.normals(udf, pc, "udf_gradient"),
        lambda: fdg.curvatures(udf, pc),
    ]:
        _, dt = timed(fn)
        row.append(f"{len(pc) / dt / 1e3:.0f}k ({len(pc) / dt / rate0:.2f})")
    return tuple(row)


def table(title, header, rows):
    print(f"\n### {title}\n")
    print("| " + " | ".join(header) + " |")
    print("|" + "---|" * len(header))
    for r in rows:
        print("| " + " | ".join(r) + " |")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=4000, help="surface samples per shape")
    ap.add_argument("--n-cost", type=int, default=20000, help="points for the cost measurement")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--cache", default="", help="folder to keep fitted fields between runs")
    ap.add_argument("--quick", action="store_true", help="coarser analytic meshes, two dev meshes")
    ap.add_argument("--meshes", nargs="*", default=DEV, help="dev meshes relative to the meshes folder")
    ap.add_argument(
        "--resolutions", nargs="*", type=int, default=[], help="also fit dev meshes' band grids at these resolutions"
    )
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    rng = np.random.default_rng(0)
    R = {k: [] for k in ("normal", "orient", "rough", "tails", "res", "curv", "igl", "cost")}
    for name, surf, shape in shapes(args.quick, args.meshes):
        tag = "_quick" if args.quick and shape is not None else ""
        cfg = FitConfig(max_steps=0, eval_points=0)
        csp, t_csp = fit_cached(name, surf, cfg, "csp", args.cache, tag)
        udf, t_udf = fit_cached(name, surf, udf_baseline(cfg), "udf", args.cache, tag)
        s = sample_surface(surf.vertices, surf.faces, args.n, rng)
        q, nt = s.points, s.normals
        p_off, side, nu_off, kept = off_surface_queries(surf, q, nt, rng)
        rows, res = normal_rows(name, csp, udf, q, nt, p_off, side, nu_off, kept)
        R["normal"] += rows
        if csp.closed:
            R["orient"] += orientation_rows(name, csp, q, nt / np.linalg.norm(nt, axis=1, keepdims=True), p_off, nu_off)
        if shape is not None:
            R["curv"] += curvature_rows(name, csp, udf, q, shape)
        else:
            rough, tails = roughness_rows(name, surf, csp, q, nt, res)
            R["rough"] += rough
            R["tails"] += tails
            R["res"] += resolution_rows(name, surf, q, nt, args.resolutions, args.cache)
            R["igl"] += igl_rows(name, csp, udf, surf.vertices, surf.faces)
        pc = q[rng.integers(0, len(q), args.n_cost)] + rng.normal(
            scale=0.01 * input_diagonal(surf), size=(args.n_cost, 3)
        )
        R["cost"].append(cost_row(name, csp, udf, pc))
        print(f"# {name}: fit csp {t_csp:.1f}s udf {t_udf:.1f}s, closed={csp.closed}", flush=True)

    table(
        "Normals: angle error in degrees (median / p95), unsigned at surface samples",
        ["shape", "method", "median / p95 deg", ""],
        R["normal"],
    )
    table(
        "Orientation (closed fields, orient='outward', the default there): share of outward normals",
        ["shape", "method", "at surface samples", "at q +- t n", "signed angle at samples (median / p95 deg)"],
        R["orient"],
    )
    table(
        "Truth roughness: angle to the exact face normals' average within 0.5 / 1 fine cell (median / p95 deg)",
        ["mesh", "normals", "vs 0.5-cell average", "vs 1-cell average"],
        R["rough"],
    )
    table(
        "Where the tails are: samples with error > 10 deg and the share of them at each kind of place",
        [
            "mesh",
            "normals",
            "> 10 deg",
            "at creases",
            "near boundaries",
            "another sheet within 2 cells",
            "none of these",
        ],
        R["tails"],
    )
    if R["res"]:
        table(
            "Finer band grids: normals vs exact face normals (median / p95 deg)",
            ["mesh", "resolution", "corners", "Jacobian", "fit s"],
            R["res"],
        )
    table(
        "Curvature on fitted analytic shapes: relative error of mean curvature (median / p95), k1",
        ["shape", "method", "mean curv. rel. err", "k1 median rel. err"],
        R["curv"],
    )
    table(
        "Dev meshes: mean curvature at vertices vs libigl principal_curvature",
        ["mesh", "method", "Pearson (1-99% clipped)", "Spearman"],
        R["igl"],
    )
    table(
        "Cost: points/s (ratio to plain closest-point queries)",
        [
            "shape",
            "query",
            "CSP corners normals",
            "CSP corners normals, outward",
            "CSP Jacobian normals",
            "CSP dir normals",
            "CSP curvatures",
            "UDF grad normals",
            "UDF Hessian curvatures",
        ],
        R["cost"],
    )


if __name__ == "__main__":
    main()
