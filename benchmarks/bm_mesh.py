"""Benchmark of mesh extraction (issue 6): quality, robustness and cost.

Run:  python benchmarks/bm_mesh.py [--resolution 128] [--sections exact robust nested cost fitted udf]
                                   [--meshes NAME ...] [--legacy] [--pseudo] [--no-sheets]

Sections
* exact:  exact oracle field of each dev mesh; Chamfer-L1 (``compare_surfaces``, input units) of our
  mesh and of a marching-cubes reference at the same resolution (MC of the exact signed distance:
  winding-number sign for closed meshes, pseudonormal sign for open meshes, where the spurious
  sign-jump faces, those whose centroid is more than h/4 from the surface, are dropped), area ratio
  to GT (ours and MC's), boundary loops vs GT, winding, evaluations.
* robust: the same with a +0.002 bias and with N(0, 0.001^2) noise on the distances (normalised units);
  Chamfer-L1 as a ratio to the exact field's MC reference and, for noise, to marching cubes of the
  same perturbed field.
* nested: an open hemisphere with an open tube inside it.
* cost:   wall time of sparse vs dense-grid extraction (same algorithm, every corner evaluated), same run.
* fitted: fitted band-grid CSP fields (default FitConfig): Chamfer-L1, normal consistency, F-score@0.5%;
  open fields twice: the default (topology from a coarse grid, refined by CSP projection: path
  ``pseudo @T+k``) and the topology on the full grid (and on each grid of ``--topologies``).
* udf:    the UDF baseline (band grid, ``FieldConfig(kind="udf")``, closest points from its gradient)
  through the same extractor, beside the CSP field of the same mesh (and, for closed meshes, the CSP
  field with ``use_signs=False``).

``--no-sheets`` turns the pseudo-sign path's sheet rule off (``cross_sheets=False``, earlier rounds).
``--pseudo`` forces the CSP pseudo-sign path on closed fields too (``use_signs=False``); the
"path" column says which path made each mesh (signed = true inside/outside signs of a closed field).
* fitted_ab (not in the default list): on each fitted field, legacy extraction (``--legacy``: one vertex
  per cell, no fin removal or hole filling) vs the default, at ``--resolution`` and 192.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np
from _common import meshes_dir

from deepcsp.extract import ExtractConfig, PerturbedField, extract_mesh, mesh_stats
from deepcsp.extract.mesh import topology_plan
from deepcsp.fields.query import ExactField
from deepcsp.geometry.metrics import compare_surfaces
from deepcsp.io import load_surface

MESHES = meshes_dir()  # $DEEPCSP_MESHES or ../shared/data/meshes
N_SAMPLES = 50_000
EXTRA: dict = {}  # extra ExtractConfig fields for every section (--legacy)
TOPOLOGIES: list[int] = []  # extra topology grids compared on open fitted fields (--topologies)
MC_WINDING = (
    True  # closed meshes: MC reference signed by the fast winding number (--mc-pseudonormal: the old reference)
)


def all_meshes() -> list[Path]:
    return sorted((MESHES / "closed").glob("*")) + sorted((MESHES / "open").glob("*"))


def mc_reference(
    v: np.ndarray,
    f: np.ndarray,
    resolution: int,
    closed: bool,
    winding: bool = False,
    noise: float = 0.0,
    seed: int = 0,
):
    """Marching cubes of the exact signed distance on the same grid, normalised coords: sign from the
    pseudonormal (open meshes, as in the first rounds) or, with ``winding`` (closed meshes), from the
    fast winding number (the pseudonormal sign fails on some closed CAD meshes, e.g. wingnut).
    ``noise``: the distances carry the robust section's noise (``|d + N(0, noise^2)|``, sign kept),
    i.e. marching cubes of the same perturbed field our extractor sees; open meshes then keep faces
    within ``max(h / 4, 4 noise)`` of the surface."""
    import igl
    from skimage.measure import marching_cubes

    h = 1.0 / resolution
    origin = -0.5 + 0.1234 * h
    ax = origin + np.arange(resolution + 1) * h
    g = np.stack(np.meshgrid(ax, ax, ax, indexing="ij"), -1).reshape(-1, 3)
    sign_type = igl.SIGNED_DISTANCE_TYPE_FAST_WINDING_NUMBER if winding else igl.SIGNED_DISTANCE_TYPE_PSEUDONORMAL
    sd, _, _, _ = igl.signed_distance(g, v, f, sign_type=sign_type)
    if noise > 0:
        sd = np.where(sd < 0, -1.0, 1.0) * np.abs(
            np.abs(sd) + noise * np.random.default_rng(seed).standard_normal(len(sd))
        )
    sd = sd.reshape((resolution + 1,) * 3)
    mv, mf, _, _ = marching_cubes(sd, 0.0, spacing=(h, h, h))
    mv = mv + origin
    if not closed:
        import igl as _igl

        c = mv[mf].mean(1)
        d, _, _ = _igl.point_mesh_squared_distance(c, v, f)
        mf = mf[np.sqrt(d) <= max(0.25 * h, 4.0 * noise)]
    return mv, mf


def _path(r) -> str:
    return "signed" if r.signed else "pseudo"


def row(name, r, gt_stats, v_in, f_in, extra=""):
    m = compare_surfaces(r.vertices, r.faces, v_in, f_in, n_samples=N_SAMPLES)
    s = r.stats
    return m, (
        f"| {name} | {m.chamfer_l1:.3e} | {s.area / gt_stats.area:.4f} | "
        f"{s.n_boundary_loops}/{gt_stats.n_boundary_loops} | {s.n_inconsistent_edges} | {s.n_nonmanifold_edges} | "
        f"{s.n_components}/{gt_stats.n_components} | {r.evaluation_fraction:.3f} | {r.seconds:.2f} |{extra}"
    )


def section_exact(paths, res, robust: bool):
    mc_exact = {}  # Chamfer-L1 of the MC reference on the exact field, per mesh
    print(f"\n### Exact oracle fields, resolution {res}\n")
    head = (
        "| mesh | path | Chamfer-L1 ours | Chamfer-L1 MC ref | ratio | area ratio | MC area ratio | loops ours/GT | "
        "inconsistent edges | non-manifold edges | components ours/GT | evals / dense | seconds |"
    )
    print(head)
    print("|---" * (head.count("|") - 1) + "|")
    for p in paths:
        surf = load_surface(p)
        closed = p.parent.name == "closed"
        fld = ExactField(surf.vertices, surf.faces)
        gt = mesh_stats(surf.vertices, surf.faces)
        r = extract_mesh(fld, ExtractConfig(resolution=res, **EXTRA))
        m = compare_surfaces(r.vertices, r.faces, surf.vertices, surf.faces, n_samples=N_SAMPLES)
        mv, mf = mc_reference(fld.vertices_normalized, surf.faces, res, closed, winding=closed and MC_WINDING)
        mm = compare_surfaces(surf.normalization.to_input(mv), mf, surf.vertices, surf.faces, n_samples=N_SAMPLES)
        mc_exact[p] = mm.chamfer_l1
        s = r.stats
        mc_area = mesh_stats(surf.normalization.to_input(mv), mf).area
        print(
            f"| {p.parent.name}/{p.stem} | {_path(r)} | {m.chamfer_l1:.3e} | {mm.chamfer_l1:.3e} | "
            f"{m.chamfer_l1 / mm.chamfer_l1:.2f} | {s.area / gt.area:.4f} | {mc_area / gt.area:.4f} | "
            f"{s.n_boundary_loops}/{gt.n_boundary_loops} | {s.n_inconsistent_edges} | {s.n_nonmanifold_edges} | "
            f"{s.n_components}/{gt.n_components} | "
            f"{r.evaluation_fraction:.3f} | {r.seconds:.2f} |",
            flush=True,
        )
    if not robust:
        return
    for label, kw in (("bias +0.002", dict(bias=0.002)), ("noise 0.001", dict(noise_std=0.001))):
        print(f"\n### Exact oracle with {label} on the distances, resolution {res}\n")
        noisy = "noise_std" in kw
        mc_cols = (
            " ratio to MC (exact field) | MC of the perturbed field: Chamfer-L1 | ratio |"
            if noisy
            else " ratio to MC (exact field) |"
        )
        head = (
            "| mesh | Chamfer-L1 | area ratio | loops ours/GT | inconsistent edges | non-manifold edges | "
            "components ours/GT | evals / dense | seconds | bias est. | noise est. |" + mc_cols
        )
        print(head)
        print("|---" * (head.count("|") - 1) + "|")
        for p in paths:
            surf = load_surface(p)
            closed = p.parent.name == "closed"
            base = ExactField(surf.vertices, surf.faces)
            fld = PerturbedField(base, **kw)
            gt = mesh_stats(surf.vertices, surf.faces)
            r = extract_mesh(fld, ExtractConfig(resolution=res, **EXTRA))
            m, line = row(
                f"{p.parent.name}/{p.stem} ({_path(r)})",
                r,
                gt,
                surf.vertices,
                surf.faces,
                f" {r.bias:.2e} | {r.noise:.2e} |",
            )
            line += f" {m.chamfer_l1 / mc_exact[p]:.2f} |"
            if noisy:
                mv, mf = mc_reference(
                    base.vertices_normalized,
                    surf.faces,
                    res,
                    closed,
                    winding=closed and MC_WINDING,
                    noise=kw["noise_std"],
                )
                mn = compare_surfaces(
                    surf.normalization.to_input(mv), mf, surf.vertices, surf.faces, n_samples=N_SAMPLES
                )
                line += f" {mn.chamfer_l1:.3e} | {m.chamfer_l1 / mn.chamfer_l1:.2f} |"
            print(line, flush=True)


def nested_case():
    """Open hemisphere (radius 0.35, z >= 0) with an open tube (radius 0.25, z in [0.05, 0.2]) inside."""
    import trimesh

    from deepcsp.geometry.analytic import open_hemisphere

    hv, hf = open_hemisphere(0.35, 5)
    tube = trimesh.creation.cylinder(radius=0.25, height=0.15, sections=128)
    keep = np.abs(tube.face_normals[:, 2]) < 0.5
    tube = tube.submesh([np.nonzero(keep)[0]], append=True)
    tube = trimesh.Trimesh(*trimesh.remesh.subdivide_to_size(tube.vertices, tube.faces, 0.01))
    tv = np.asarray(tube.vertices) + [0, 0, 0.125]
    v = np.concatenate([hv, tv])
    f = np.concatenate([hf, np.asarray(tube.faces) + len(hv)])
    return v, f


def section_nested(res):
    v, f = nested_case()
    gt = mesh_stats(v, f)
    fld = ExactField(v, f)
    gap = 0.35 - np.hypot(0.25, 0.2)
    print(
        f"\n### Nested open hemisphere + open tube (closest gap {gap:.3f} input = "
        f"{gap * fld.normalization.scale * res:.1f} cells), resolution {res}\n"
    )
    print(
        "| field | Chamfer-L1 | area ratio | loops ours/GT | inconsistent edges | non-manifold edges | "
        "components ours/GT | evals / dense | seconds |"
    )
    print("|---|---|---|---|---|---|---|---|---|")
    for label, fl in (
        ("exact", fld),
        ("bias +0.002", PerturbedField(fld, bias=0.002)),
        ("noise 0.001", PerturbedField(fld, noise_std=0.001)),
    ):
        r = extract_mesh(fl, ExtractConfig(resolution=res, **EXTRA))
        _, line = row(label, r, gt, v, f)
        print(line, flush=True)


def section_cost(paths, res):
    print(f"\n### Sparse vs dense-grid extraction (same algorithm), resolution {res}, same run\n")
    print("| mesh | sparse evals / dense | sparse s | dense s | time ratio | Chamfer-L1 sparse | Chamfer-L1 dense |")
    print("|---|---|---|---|---|---|---|")
    for p in paths:
        surf = load_surface(p)
        fld = ExactField(surf.vertices, surf.faces)
        rs = extract_mesh(fld, ExtractConfig(resolution=res, **EXTRA))
        rd = extract_mesh(fld, ExtractConfig(resolution=res, sparse=False, **EXTRA))
        ms = compare_surfaces(rs.vertices, rs.faces, surf.vertices, surf.faces, n_samples=N_SAMPLES)
        md = compare_surfaces(rd.vertices, rd.faces, surf.vertices, surf.faces, n_samples=N_SAMPLES)
        print(
            f"| {p.parent.name}/{p.stem} | {rs.evaluation_fraction:.3f} | {rs.seconds:.2f} | {rd.seconds:.2f} | "
            f"{rs.seconds / rd.seconds:.2f} | {ms.chamfer_l1:.3e} | {md.chamfer_l1:.3e} |",
            flush=True,
        )


def section_fitted(paths, res):
    from deepcsp.fit import FitConfig, fit_surface

    print(f"\n### Fitted band-grid CSP fields (default FitConfig), extraction resolution {res}\n")
    print(
        "| mesh | path | fit s | Chamfer-L1 | Chamfer-L1 rel. diag | normal consistency | F-score@0.5% | area ratio | "
        "loops ours/GT | inconsistent edges | non-manifold edges | components ours/GT | evals / dense | extract s |"
    )
    print("|---|---|---|---|---|---|---|---|---|---|---|---|---|---|")
    for p in paths:
        surf = load_surface(p)
        t0 = time.perf_counter()
        field = fit_surface(surf, FitConfig(eval_points=0)).field
        t_fit = time.perf_counter() - t0
        gt = mesh_stats(surf.vertices, surf.faces)
        for kw in _variants(field, res):
            _fitted_row(p, field, surf, gt, t_fit, ExtractConfig(resolution=res, **{**EXTRA, **kw}))


def _variants(field, res) -> list[dict]:
    """Extraction settings to compare on one fitted field: the default; for a closed field also the
    pseudo-sign path; where the default takes its topology from a coarser grid (open band-grid CSP
    fields), also the topology on the full grid (before the sixth round)."""
    out = [{}]
    closed = getattr(field, "closed", False)
    if closed and "use_signs" not in EXTRA:
        out.append(dict(use_signs=False))
    if (
        not closed
        and "topology_resolution" not in EXTRA
        and topology_plan(field, ExtractConfig(resolution=res), signed=False)[1]
    ):
        out.append(dict(topology_resolution=res))
    if not closed and "topology_resolution" not in EXTRA:
        out += [dict(topology_resolution=t) for t in TOPOLOGIES if t < res]
    return out


def _fitted_row(p, field, surf, gt, t_fit, config, label: str | None = None, evaluations: bool = True):
    """One table row: the mesh extracted from ``field`` against the ground truth (``label``: an extra
    column naming the field; ``evaluations``: the evals / dense column). The path column says how
    the mesh was made: ``signed`` / ``pseudo``, with ``@T+k`` when its topology came from a grid of
    resolution T refined k times."""
    r = extract_mesh(field, config)
    m = compare_surfaces(r.vertices, r.faces, surf.vertices, surf.faces, n_samples=N_SAMPLES)
    s = r.stats
    name = f" {label} |" if label is not None else ""
    evals = f" {r.evaluation_fraction:.3f} |" if evaluations else ""
    refined = f" @{r.topology_resolution}+{r.refine_passes}" if r.refine_passes else ""
    print(
        f"| {p.parent.name}/{p.stem} |{name} {_path(r)}{refined} | {t_fit:.1f} | {m.chamfer_l1:.3e} | "
        f"{m.chamfer_l1_rel:.2e} | {m.normal_consistency:.4f} | {m.fscore:.4f} | "
        f"{s.area / gt.area:.4f} | {s.n_boundary_loops}/{gt.n_boundary_loops} | {s.n_inconsistent_edges} | "
        f"{s.n_nonmanifold_edges} | {s.n_components}/{gt.n_components} |{evals} {r.seconds:.2f} |",
        flush=True,
    )


def section_udf(paths, res):
    """The UDF baseline (closest points from its gradient) and the CSP field of the same mesh, same extractor."""
    from deepcsp.fields import FieldConfig
    from deepcsp.fit import FitConfig, fit_surface

    print(f"\n### UDF baseline vs CSP field through the same extractor, resolution {res}\n")
    print(
        "| mesh | field | path | fit s | Chamfer-L1 | rel. diag | normal consistency | F-score@0.5% | area ratio | "
        "loops ours/GT | inconsistent edges | non-manifold edges | components ours/GT | extract s |"
    )
    print("|---|---|---|---|---|---|---|---|---|---|---|---|---|---|")
    for p in paths:
        surf = load_surface(p)
        gt = mesh_stats(surf.vertices, surf.faces)
        for label, cfg in (
            ("CSP", FitConfig(eval_points=0)),
            ("UDF", FitConfig(field=FieldConfig(kind="udf"), eval_points=0)),
        ):
            t0 = time.perf_counter()
            field = fit_surface(surf, cfg).field
            t_fit = time.perf_counter() - t0
            for kw in _variants(field, res):
                _fitted_row(
                    p,
                    field,
                    surf,
                    gt,
                    t_fit,
                    ExtractConfig(resolution=res, **{**EXTRA, **kw}),
                    label=label,
                    evaluations=False,
                )


def section_fitted_ab(paths, resolutions):
    """Before/after on the same fitted field: legacy extraction (one vertex per cell, no repair) vs the default."""
    from deepcsp.fit import FitConfig, fit_surface

    print("\n### Fitted default fields: legacy extraction vs default (same field)\n")
    print(
        "| mesh | res | extraction | loops ours/GT | non-manifold edges | inconsistent edges | components ours/GT | "
        "Chamfer-L1 | rel. diag | normal consistency | F-score@0.5% | area ratio | holes filled | extract s |"
    )
    print("|---|---|---|---|---|---|---|---|---|---|---|---|---|---|")
    for p in paths:
        surf = load_surface(p)
        field = fit_surface(surf, FitConfig(eval_points=0)).field
        gt = mesh_stats(surf.vertices, surf.faces)
        for res in resolutions:
            for label, kw in (("legacy", dict(split_sheets=False, fill_holes=0)), ("default", {})):
                r = extract_mesh(field, ExtractConfig(resolution=res, **kw))
                m = compare_surfaces(r.vertices, r.faces, surf.vertices, surf.faces, n_samples=N_SAMPLES)
                s = r.stats
                print(
                    f"| {p.parent.name}/{p.stem} | {res} | {label} | {s.n_boundary_loops}/{gt.n_boundary_loops} | "
                    f"{s.n_nonmanifold_edges} | {s.n_inconsistent_edges} | {s.n_components}/{gt.n_components} | "
                    f"{m.chamfer_l1:.3e} | {m.chamfer_l1_rel:.2e} | {m.normal_consistency:.4f} | {m.fscore:.4f} | "
                    f"{s.area / gt.area:.4f} | {r.n_filled_holes} | {r.seconds:.1f} |",
                    flush=True,
                )


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--resolution", type=int, default=128)
    ap.add_argument("--sections", nargs="+", default=["exact", "robust", "nested", "cost", "fitted"])
    ap.add_argument("--meshes", nargs="*", default=None, help="mesh stems (default: all dev meshes)")
    ap.add_argument("--cost-meshes", nargs="*", default=["torus", "spot", "tee_sim", "armor_jacket"])
    ap.add_argument("--fitted-meshes", nargs="*", default=["spot", "torus", "tee_sim", "skirt_sim", "cube_no_bottom"])
    ap.add_argument(
        "--topologies", nargs="*", type=int, default=[], help="fitted: open fields also with these topology grids"
    )
    ap.add_argument("--udf-meshes", nargs="*", default=["spot", "torus", "tee_sim", "skirt_sim"])
    ap.add_argument(
        "--legacy", action="store_true", help="old extraction: one vertex per cell, no fin removal or hole filling"
    )
    ap.add_argument("--pseudo", action="store_true", help="CSP pseudo-signs on closed fields too (use_signs=False)")
    ap.add_argument(
        "--no-sheets",
        action="store_true",
        help="pseudo-sign path without the sheet rule (cross_sheets=False, earlier rounds)",
    )
    ap.add_argument(
        "--sharpen", type=float, default=None, help="ExtractConfig.sharpen (default: the extraction's; 0: creases off)"
    )
    ap.add_argument(
        "--mc-pseudonormal",
        action="store_true",
        help="closed meshes: MC reference with the pseudonormal sign (earlier rounds)",
    )
    a = ap.parse_args()
    global MC_WINDING
    MC_WINDING = not a.mc_pseudonormal
    if a.legacy:
        EXTRA.update(split_sheets=False, fill_holes=0)
    if a.pseudo or a.legacy:
        EXTRA.update(use_signs=False)
    if a.no_sheets or a.legacy:
        EXTRA.update(cross_sheets=False)
    if a.sharpen is not None:
        EXTRA.update(sharpen=a.sharpen)
    TOPOLOGIES.extend(a.topologies)
    paths = all_meshes()
    pick = lambda names: [p for p in paths if p.stem in names]  # noqa: E731
    sel = pick(a.meshes) if a.meshes else paths
    t0 = time.perf_counter()
    if "exact" in a.sections or "robust" in a.sections:
        section_exact(sel, a.resolution, robust="robust" in a.sections)
    if "nested" in a.sections:
        section_nested(a.resolution)
    if "cost" in a.sections:
        section_cost(pick(a.cost_meshes), a.resolution)
    if "fitted" in a.sections:
        section_fitted(pick(a.fitted_meshes), a.resolution)
    if "udf" in a.sections:
        section_udf(pick(a.udf_meshes), a.resolution)
    if "fitted_ab" in a.sections:
        section_fitted_ab(pick(a.fitted_meshes), [a.resolution, 192])
    print(f"\ntotal {time.perf_counter() - t0:.0f} s")


if __name__ == "__main__":
    main()
