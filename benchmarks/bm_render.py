"""Rendering benchmark: sphere-traced fitted fields vs an exact ray cast of the ground-truth mesh.

For each mesh: fit the default CSP field (collocation only, ``FitConfig(max_steps=0)``) and the
UDF baseline fitted the same way, render both at WxH from each view, cast the very same rays
exactly (Embree through trimesh), and report

* hit-mask IoU against the exact cast,
* median (and p90) |depth - exact depth| over pixels both hit, as a fraction of the mesh's
  bounding-box diagonal,
* field evaluations per ray (mean over all pixels and over rays that enter the normalised box;
  histogram), unconverged rays,
* pixels the field misses more than 2 pixels inside the exact silhouette (holes in the picture)
  and pixels it adds (near the silhouette: rays passing within the tracer's tolerance of it),
* seconds per frame (tracing + normals + shading) and rays per second (all pixels / seconds).

``--kinds exact`` traces the mesh's exact closest points (:class:`~deepcsp.fields.query.ExactField`,
a BVH) with the same tracer: the IoU an error-free field gets, i.e. what the tracer's hit
tolerances (``hit_eps``, ``bracket_eps``) cost by themselves.

Usage::

    python benchmarks/bm_render.py [--size 512] [--views iso front] [--threads 1] [--meshes ...]
                                   [--kinds csp udf exact]
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np
import torch
from _common import meshes_dir

from deepcsp.fields.query import ExactField, load_field
from deepcsp.fit import fit_surface
from deepcsp.fit.config import FitConfig
from deepcsp.fit.presets import udf_baseline
from deepcsp.io import load_surface
from deepcsp.render import RenderConfig, TraceConfig, render_field, render_mesh_exact, view_camera

DEFAULT_MESHES = ["closed/spot.obj", "open/tee_sim.obj", "open/airplane_holes.obj"]
BINS = [1, 2, 3, 4, 5, 6, 8, 10, 15, 20, 30, 49]


def _mask_differences(hit: np.ndarray, exact: np.ndarray) -> tuple[int, int]:
    """Pixels of the exact cast the field misses more than 2 pixels inside its silhouette, and
    pixels the field hits that the exact cast does not."""
    from scipy import ndimage

    silhouette = ndimage.binary_dilation(exact ^ ndimage.binary_erosion(exact), iterations=2)
    return int((exact & ~hit & ~silhouette).sum()), int((hit & ~exact).sum())


def histogram(evals: np.ndarray) -> str:
    e = evals[evals > 0]
    counts, lo = [], 1
    for hi in BINS[1:]:
        counts.append((f"{lo}" if hi - lo == 1 else f"{lo}-{hi - 1}", int(((e >= lo) & (e < hi)).sum())))
        lo = hi
    counts.append((f">={lo}", int((e >= lo).sum())))
    n = max(len(e), 1)
    return " ".join(f"{k}:{100.0 * c / n:.1f}%" for k, c in counts)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", type=Path, default=None, help="the dev meshes (default: $DEEPCSP_MESHES or ../shared)")
    ap.add_argument("--meshes", nargs="+", default=DEFAULT_MESHES)
    ap.add_argument("--size", type=int, default=512)
    ap.add_argument("--views", nargs="+", default=["iso", "front"])
    ap.add_argument(
        "--threads", type=int, default=1, help="torch CPU threads (1 is fastest on a loaded 2-core machine)"
    )
    ap.add_argument("--kinds", nargs="+", default=["csp", "udf"], choices=["csp", "udf", "exact"])
    ap.add_argument("--save", type=Path, default=None, help="folder for side-by-side PNGs (field | exact | normals)")
    ap.add_argument("--cache", type=Path, default=None, help="folder to keep fitted fields in (reused when present)")
    ap.add_argument(
        "--trace", nargs="*", default=[], metavar="KEY=VALUE", help="TraceConfig overrides, e.g. hit_eps=5e-4"
    )
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    overrides = {k: type(getattr(TraceConfig(), k))(v) for k, v in (kv.split("=", 1) for kv in args.trace)}
    config = RenderConfig(trace=TraceConfig(**overrides))

    rows = []
    hists = []
    for rel in args.meshes:
        surface = load_surface((args.data or meshes_dir()) / rel)
        diag = surface.bbox_diagonal
        for kind in args.kinds:
            cfg = FitConfig(max_steps=0, eval_points=0)
            if kind == "udf":
                cfg = udf_baseline(cfg)
            t0 = time.perf_counter()
            cached = args.cache / f"{Path(rel).stem}_{kind}.safetensors" if args.cache else None
            if kind == "exact":
                field = ExactField(surface.vertices, surface.faces)
            elif cached is not None and cached.exists():
                field = load_field(cached)
            else:
                field = fit_surface(surface, cfg).field
                if cached is not None:
                    field.save(cached)
            fit_s = time.perf_counter() - t0
            field.closest_points_normalized(torch.zeros(8, 3))  # build lookup tables outside the timing
            for view in args.views:
                cam = view_camera(view, args.size, args.size)
                res = render_field(field, cam, config)
                ex = render_mesh_exact(surface.vertices, surface.faces, cam, surface.normalization)
                inside, added = _mask_differences(res.hit, ex.hit)
                inter = int((res.hit & ex.hit).sum())
                union = int((res.hit | ex.hit).sum())
                both = res.hit & ex.hit
                err = np.abs(res.depth[both].astype(np.float64) - ex.depth[both]) / diag
                inbox = res.evaluations > 0
                rays = args.size * args.size
                rows.append(
                    (
                        Path(rel).stem,
                        kind,
                        view,
                        f"{inter / max(union, 1):.4f}",
                        f"{100 * np.median(err):.4f}" if len(err) else "n/a",
                        f"{100 * np.quantile(err, 0.9):.4f}" if len(err) else "n/a",
                        f"{res.evaluations.mean():.2f}",
                        f"{res.evaluations[inbox].mean():.2f}",
                        str(int(res.unconverged.sum())),
                        str(inside),
                        str(added),
                        f"{res.seconds:.2f}",
                        f"{rays / res.seconds / 1e3:.0f}k",
                        f"{ex.seconds:.2f}",
                        f"{fit_s:.1f}",
                    )
                )
                hists.append((f"{Path(rel).stem} {kind} {view}", histogram(res.evaluations)))
                print(" | ".join(rows[-1]), flush=True)
                if args.save:
                    import imageio.v3 as iio

                    args.save.mkdir(parents=True, exist_ok=True)
                    iio.imwrite(
                        args.save / f"{Path(rel).stem}_{kind}_{view}.png",
                        np.concatenate([res.image, ex.image, res.normal_map()], 1),
                    )

    head = (
        "mesh",
        "field",
        "view",
        "IoU",
        "med depth err %diag",
        "p90 depth err %diag",
        "evals/ray (all)",
        "evals/ray (in box)",
        "unconverged",
        "missed inside",
        "added",
        "s/frame",
        "rays/s",
        "exact cast s",
        "fit s",
    )
    print()
    print("| " + " | ".join(head) + " |")
    print("|" + "---|" * len(head))
    for r in rows:
        print("| " + " | ".join(r) + " |")
    print()
    print("Evaluations per ray, rays entering the box (histogram bins: evaluations):")
    for name, h in hists:
        print(f"- {name}: {h}")


if __name__ == "__main__":
    main()
