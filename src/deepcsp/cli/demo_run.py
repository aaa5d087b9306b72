"""The demo pipeline behind ``deepcsp demo``: fit -> render -> extract -> evaluate -> report.

Lives in ``cli`` because it orchestrates every layer (fit, render, extract, geometry metrics).
"""

from __future__ import annotations

import html
import json
import shlex
import time
from dataclasses import replace
from pathlib import Path

import deepcsp
from deepcsp._atomic import write_bytes, write_text
from deepcsp.cli._common import echo, fmt, table

BUNDLED = Path(deepcsp.__file__).parent / "data" / "tee_sim.obj"


def run_demo(
    output: Path,
    shape: Path | None = None,
    time_budget: float = 45.0,
    field_resolution: int = 192,
    resolution: int = 192,
    image_size: int = 512,
    scan_resolution: int = 160,
) -> int:
    from deepcsp.io import load_surface

    output = Path(output)
    output.mkdir(parents=True, exist_ok=True)
    path = Path(shape) if shape else BUNDLED
    t_all = time.perf_counter()
    echo(f"deepcsp demo: {path.name} -> {output}/")
    surface = load_surface(path)
    fit, field_path = _fit(surface, output, time_budget, field_resolution)  # 1. fit
    renders = _render_views(fit.field, surface, output, image_size)  # 2. renders beside the exact ray cast
    ex, metrics = _extract(fit.field, surface, output, resolution)  # 3. a mesh, compared with the input
    # 4. a scan-like cloud of the shape: surface from points, beside the peers when installed
    cloud = _point_cloud_section(surface, output, image_size, scan_resolution) if surface.is_mesh else None
    summary = {
        "cloud": cloud,
        "input": str(path),
        "fit": _fit_summary(fit, field_path, path),
        "render": renders,
        "mesh": _mesh_summary(ex, metrics),
        "seconds_total": time.perf_counter() - t_all,
    }
    write_text(output / "metrics.json", json.dumps(summary, indent=2))
    view_cmd = shlex.join(["deepcsp", "view", str(field_path), str(output / "mesh.ply"), "--reference", str(path)])
    write_text(output / "index.html", _report_html(summary, path.name, surface.is_mesh, view_cmd))
    rows = _console_rows(summary, fit.errors, metrics, image_size, output, view_cmd)
    echo(table(rows, f"deepcsp demo: {path.name}"))
    return 0


def _fit(surface, output: Path, time_budget: float, field_resolution: int):
    """Fit a field within ``time_budget`` seconds; writes ``field.safetensors`` and its reports.
    Returns ``(fit result, field path)``."""
    from deepcsp.fit import FitConfig
    from deepcsp.fit.report import fit_with_progress, write_fit_outputs

    base = FitConfig()
    config = replace(base, time_budget=time_budget, field=replace(base.field, resolution=field_resolution))
    field_path = output / "field.safetensors"
    fit = fit_with_progress(surface, config, field_path, cache_dir=output / ".cache")
    write_fit_outputs(fit, field_path, config)
    return fit, field_path


def _render_views(field, surface, output: Path, image_size: int) -> list[dict]:
    """Render the fitted field (and, for meshes, the exact mesh) from the same cameras; one record a view."""
    from deepcsp.render import RenderConfig, compare_renders, encode_png, render_field, render_mesh_exact, view_camera

    renders = []
    for view in ("iso", "front"):
        cam = view_camera(view, width=image_size, height=image_size)
        r_fit = render_field(field, cam, RenderConfig())
        write_bytes(output / f"render_{view}.png", encode_png(r_fit.image))
        write_bytes(output / f"normals_{view}.png", encode_png(r_fit.normal_map()))
        if surface.is_mesh:
            r_gt = render_mesh_exact(surface.vertices, surface.faces, cam, surface.normalization)
            write_bytes(output / f"render_{view}_gt.png", encode_png(r_gt.image))
            agreement = compare_renders(r_fit, r_gt)
            iou, depth_err = agreement.iou, agreement.median_depth_error / surface.bbox_diagonal
        else:
            iou = depth_err = float("nan")
        renders.append(
            {
                "view": view,
                "seconds": r_fit.seconds,
                "iou_vs_exact": iou,
                "median_depth_error_rel": depth_err,
                "evals_per_ray": r_fit.mean_evaluations(),
            }
        )
    return renders


def _extract(field, surface, output: Path, resolution: int):
    """Extract ``mesh.ply`` and, for mesh inputs, compare it with the input.
    Returns ``(extraction, metrics or None)``."""
    from deepcsp.extract import ExtractConfig, extract_mesh
    from deepcsp.geometry.metrics import compare_surfaces
    from deepcsp.io import save_mesh

    ex = extract_mesh(field, ExtractConfig(resolution=resolution))
    save_mesh(output / "mesh.ply", ex.vertices, ex.faces)
    metrics = None
    if surface.is_mesh and len(ex.faces):
        metrics = compare_surfaces(ex.vertices, ex.faces, surface.vertices, surface.faces, n_samples=50_000)
    return ex, metrics


def _fit_summary(fit, field_path: Path, path: Path) -> dict:
    return {
        "seconds": fit.seconds_total,
        "seconds_ground_truth": fit.seconds_ground_truth,
        "active_vertices": fit.band.n_active if fit.band else None,
        "field_bytes": field_path.stat().st_size,
        "input_bytes": path.stat().st_size,
        "errors": fit.errors.to_dict() if fit.errors else None,
    }


def _mesh_summary(ex, metrics) -> dict:
    return {
        "vertices": len(ex.vertices),
        "faces": len(ex.faces),
        "seconds": ex.seconds,
        "evaluation_fraction": ex.evaluation_fraction,
        "boundary_loops": ex.stats.n_boundary_loops,
        "components": ex.stats.n_components,
        "path": "signed (closed input)" if ex.signed else "pseudo-sign (open input)",
        "topology": f"{ex.topology_resolution}^3 grid, refined {ex.refine_passes}x by CSP projection"
        if ex.refine_passes
        else f"{ex.topology_resolution}^3 grid",
        "metrics": metrics.to_dict() if metrics else None,
    }


def _console_rows(summary: dict, e, metrics, image_size: int, output: Path, view_cmd: str) -> list[tuple[str, str]]:
    """The table printed at the end (``e``: the fit's errors, ``metrics``: the mesh's, or None)."""
    fit, mesh, renders, cloud = summary["fit"], summary["mesh"], summary["render"], summary["cloud"]
    return [
        ("fit seconds (ground truth incl.)", f"{fit['seconds']:.1f}"),
        ("closest-point error mean / diag", fmt(e.mean) if e else "n/a"),
        ("closest-point error p95 / diag", fmt(e.p95) if e else "n/a"),
        ("field file / input file", f"{fit['field_bytes'] / 1e6:.2f} MB / {fit['input_bytes'] / 1e6:.2f} MB"),
        ("render IoU vs exact (iso)", fmt(renders[0]["iou_vs_exact"])),
        ("render seconds (iso, %dx%d)" % (image_size, image_size), f"{renders[0]['seconds']:.1f}"),
        (
            "mesh faces / boundary loops",
            f"{mesh['faces']} / {mesh['boundary_loops']} ({mesh['path']} extraction)",
        ),
        ("mesh topology from", mesh["topology"]),
        ("mesh Chamfer-L1 / diag", fmt(metrics.chamfer_l1_rel) if metrics else "n/a"),
        ("mesh normal consistency", fmt(metrics.normal_consistency) if metrics else "n/a"),
        ("mesh F-score@0.5%", fmt(metrics.fscore) if metrics else "n/a"),
        *(
            (
                f"scan cloud -> mesh ({r['method']}): Chamfer-L1 / diag, NC, loops",
                f"{fmt(r['chamfer_l1_rel'])}, {fmt(r['normal_consistency'])}, {r['boundary_loops']}",
            )
            for r in (cloud["rows"] if cloud else [])
        ),
        ("total seconds", f"{summary['seconds_total']:.1f}"),
        ("report", str(output / "index.html")),
        ("look around (pip install 'deepcsp[view]')", view_cmd),
    ]


def _point_cloud_section(surface, output: Path, image_size: int, scan_resolution: int) -> dict:
    """Scan the mesh from four views of ``scan_resolution`` pixels a side
    (:func:`deepcsp.pipelines.scan.scan_cloud`), reconstruct the
    cloud with deepcsp and, when open3d is installed, with ball pivoting and screened Poisson;
    score every mesh against the input and render it."""
    from deepcsp.extract.topology import mesh_stats
    from deepcsp.geometry.metrics import compare_surfaces
    from deepcsp.io import save_mesh, save_points
    from deepcsp.io.surface import surface_from_arrays
    from deepcsp.pipelines import ReconstructionConfig, reconstruct_cloud
    from deepcsp.pipelines.peers import PEERS, available
    from deepcsp.pipelines.scan import scan_cloud
    from deepcsp.render import encode_png, render_mesh_exact, view_camera

    points = scan_cloud(surface.vertices, surface.faces, views=4, resolution=scan_resolution, noise=0.002)
    save_points(output / "scan.ply", points)
    echo(f"deepcsp demo: scan-like cloud of {len(points)} points (4 views, noise 0.2% of the diagonal) -> meshes")
    meshes = {}
    t0 = time.perf_counter()
    rec = reconstruct_cloud(surface_from_arrays(points, name="scan.ply"), ReconstructionConfig())
    meshes["deepcsp"] = (rec.vertices, rec.faces, time.perf_counter() - t0)
    if available():
        for name, run in PEERS.items():
            t0 = time.perf_counter()
            v, f = run(points)
            meshes[name] = (v, f, time.perf_counter() - t0)
    cam = view_camera("iso", width=image_size, height=image_size)
    rows = []
    for name, (v, f, seconds) in meshes.items():
        save_mesh(output / f"scan_{name}.ply", v, f)
        write_bytes(output / f"scan_{name}.png", encode_png(render_mesh_exact(v, f, cam, surface.normalization).image))
        m = compare_surfaces(v, f, surface.vertices, surface.faces, n_samples=50_000) if len(f) else None
        st = mesh_stats(v, f)
        rows.append(
            {
                "method": name,
                "seconds": seconds,
                "chamfer_l1_rel": m.chamfer_l1_rel if m else float("nan"),
                "normal_consistency": m.normal_consistency if m else float("nan"),
                "fscore": m.fscore if m else 0.0,
                "boundary_loops": st.n_boundary_loops,
                "nonmanifold_edges": st.n_nonmanifold_edges,
                "area_ratio": st.area / mesh_stats(surface.vertices, surface.faces).area,
            }
        )
    return {"points": len(points), "rows": rows, "peers": available()}


def _report_html(s: dict, name: str, has_gt: bool, view_cmd: str = "") -> str:
    return f"""<!doctype html><html><head><meta charset="utf-8"><title>deepcsp demo: {html.escape(name)}</title>
<style>body{{font-family:sans-serif;max-width:1200px;margin:2em auto}} img{{width:360px;border:1px solid #ccc}}
figure{{display:inline-block;margin:4px}} table{{border-collapse:collapse;margin:1em 0}}
td{{border:1px solid #ddd;padding:3px 8px}} .row{{white-space:nowrap}}</style></head><body>
<h1>deepcsp demo: {html.escape(name)}</h1>
<p>Closest surface-point field fitted to <code>{html.escape(s["input"])}</code>; total {s["seconds_total"]:.1f} s.
Files: <a href="field.safetensors">field.safetensors</a>, <a href="mesh.ply">mesh.ply</a>,
<a href="metrics.json">metrics.json</a>.</p>
<p>To turn the field and its mesh around, probe closest points and see where the mesh is off
(colour = distance to the input), run <code>{html.escape(view_cmd)}</code> and open the address it prints
(needs <code>pip install 'deepcsp[view]'</code>).</p>
<h2>Renders</h2>{_render_figures(s["render"], has_gt)}
<h2>Fit</h2><table>{_fit_rows(s["fit"])}</table>
<h2>Render vs exact ray cast</h2><table>{_render_rows(s["render"])}</table>
<h2>Extracted mesh vs input</h2><table>{_mesh_rows(s["mesh"])}</table>
{_cloud_html(s.get("cloud"))}
</body></html>
"""


def _tr(k, v) -> str:
    shown = v if isinstance(v, str) else fmt(v) if isinstance(v, float) else str(v)
    return f"<tr><td>{html.escape(str(k))}</td><td>{html.escape(shown)}</td></tr>"


def _render_figures(renders: list[dict], has_gt: bool) -> str:
    imgs = []
    for r in renders:
        v = r["view"]
        gt = (
            f'<figure><img src="render_{v}_gt.png"><figcaption>exact mesh (ray cast)</figcaption></figure>'
            if has_gt
            else ""
        )
        imgs.append(
            f'<div class="row"><figure><img src="render_{v}.png">'
            f"<figcaption>fitted CSP field, sphere traced ({v})</figcaption></figure>{gt}"
            f'<figure><img src="normals_{v}.png"><figcaption>normals from the field</figcaption></figure></div>'
        )
    return "".join(imgs)


def _fit_rows(fit: dict) -> str:
    e = fit["errors"] or {}
    return "".join(
        _tr(k, v)
        for k, v in [
            ("fit seconds", fit["seconds"]),
            ("ground-truth seconds", fit["seconds_ground_truth"]),
            ("active band vertices", fit["active_vertices"]),
            ("closest-point error mean / diag", e.get("mean", float("nan"))),
            ("p95 / diag", e.get("p95", float("nan"))),
            ("near open boundaries: mean / diag", e.get("mean_boundary", float("nan"))),
            ("across the medial axis: mean / diag", e.get("mean_discontinuous", float("nan"))),
            ("field file bytes", fit["field_bytes"]),
            ("input file bytes", fit["input_bytes"]),
        ]
    )


def _render_rows(renders: list[dict]) -> str:
    return "".join(
        _tr(f"{r['view']}: {k}", r[k])
        for r in renders
        for k in ("seconds", "iou_vs_exact", "median_depth_error_rel", "evals_per_ray")
    )


def _mesh_rows(mesh: dict) -> str:
    m = mesh["metrics"] or {}
    return "".join(
        _tr(k, v)
        for k, v in [
            ("faces", mesh["faces"]),
            ("boundary loops", mesh["boundary_loops"]),
            ("components", mesh["components"]),
            ("extraction", mesh["path"]),
            ("topology from", mesh["topology"]),
            ("field evaluations / dense grid", mesh["evaluation_fraction"]),
            ("seconds", mesh["seconds"]),
        ]
        + [(k, m[k]) for k in ("chamfer_l1", "chamfer_l1_rel", "normal_consistency", "fscore", "hausdorff") if k in m]
    )


def _cloud_html(c: dict | None) -> str:
    if not c:
        return ""
    head = (
        "<tr><td>method</td><td>Chamfer-L1 / diag</td><td>normal consistency</td><td>F-score@0.5%</td>"
        "<td>boundary loops</td><td>non-manifold edges</td><td>area / true area</td><td>seconds</td></tr>"
    )
    body = "".join(
        f"<tr><td>{html.escape(r['method'])}</td>"
        + "".join(
            f"<td>{fmt(float(r[k]))}</td>"
            for k in (
                "chamfer_l1_rel",
                "normal_consistency",
                "fscore",
                "boundary_loops",
                "nonmanifold_edges",
                "area_ratio",
                "seconds",
            )
        )
        + "</tr>"
        for r in c["rows"]
    )
    figs = "".join(
        f'<figure><img src="scan_{html.escape(r["method"])}.png">'
        f"<figcaption>{html.escape(r['method'])}</figcaption></figure>"
        for r in c["rows"]
    )
    peers = (
        ""
        if c["peers"]
        else " (open3d's ball pivoting and screened Poisson appear beside it when installed: "
        "<code>pip install 'deepcsp[peers]'</code>)"
    )
    return f"""<h2>From a scan-like point cloud</h2>
<p>The shape seen by a depth sensor from four views (<a href="scan.ply">scan.ply</a>, {c["points"]} points,
noise 0.2% of the diagonal along the rays, nothing where no view sees the surface),
reconstructed by <code>deepcsp reconstruct</code>{peers}; each mesh scored against the input mesh.</p>
<div class="row">{figs}</div><table>{head}{body}</table>"""
