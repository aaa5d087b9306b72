"""Crease sharpening (``ExtractConfig.sharpen``, ``deepcsp mesh --sharpen``): the input mesh (exact
ray cast) | the mesh extracted without it (``--sharpen 0``) | with it (the default), from the same
camera, each field fitted with the defaults. Rows: airplane_holes' engine and wing, the corner of
cube_no_bottom.

Run:  python benchmarks/fig_sharpen.py [--out benchmarks/figures/sharpen.png]
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
from _common import HERE, meshes_dir, write_panel_grid

PANEL = (420, 300)  # width, height of one panel
LABELS = ("input (exact ray cast)", "deepcsp mesh --sharpen 0", "deepcsp mesh (default: sharpened)")
#: (mesh, orbit azimuth, elevation, distance, look-at in normalised coordinates)
VIEWS = [
    ("open/airplane_holes.obj", 30, 40, 0.55, (0.12, 0.0, 0.08)),
    ("open/cube_no_bottom.obj", 35, 30, 0.45, (0.3, 0.3, 0.3)),
]


def row(mesh_path: Path, azimuth: float, elevation: float, distance: float, look_at) -> list[np.ndarray]:
    from deepcsp.extract import ExtractConfig, extract_mesh
    from deepcsp.fit import FitConfig, fit_surface
    from deepcsp.io import load_surface
    from deepcsp.render import orbit_camera, render_mesh_exact

    surf = load_surface(mesh_path)
    field = fit_surface(surf, FitConfig(eval_points=0)).field
    plain = extract_mesh(field, ExtractConfig(sharpen=0.0))
    sharp = extract_mesh(field, ExtractConfig())
    print(f"{mesh_path.name}: {sharp.n_sharpened} of {len(sharp.vertices)} vertices moved onto creases")
    w, h = PANEL
    cam = orbit_camera(azimuth, elevation, w, h, fov=22, distance=distance, look_at=look_at)
    nz = field.normalization
    return [
        render_mesh_exact(v, f, cam, nz).image
        for v, f in ((surf.vertices, surf.faces), (plain.vertices, plain.faces), (sharp.vertices, sharp.faces))
    ]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", type=Path, default=HERE / "figures" / "sharpen.png")
    args = ap.parse_args()
    rows = [row(meshes_dir() / name, *view) for name, *view in VIEWS]
    write_panel_grid(rows, LABELS, args.out)
    print(f"wrote {args.out} ({args.out.stat().st_size // 1024} KB)")


if __name__ == "__main__":
    main()
