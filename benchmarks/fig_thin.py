"""The airplane_holes figure of issue 16 (thin parts and close sheets): the input mesh (exact ray
cast) | the mesh that ``deepcsp mesh`` extracts with its defaults | the fitted field sphere-traced,
from the same camera; top row the whole airplane, bottom row a close-up of the windows and the wing
root. The field and the mesh come from the command line with default options:

    deepcsp fit airplane_holes.obj -o WORK/field.safetensors
    deepcsp mesh WORK/field.safetensors -o WORK/mesh.ply

Run:  python benchmarks/fig_thin.py [--out benchmarks/figures/thin_airplane.png] [--work DIR]
      (``--work`` keeps the field and mesh; an existing WORK/field.safetensors / mesh.ply is reused)
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
from pathlib import Path

from _common import HERE, meshes_dir, write_panel_grid

PANEL = (420, 300)  # width, height of one panel
LABELS = ("input (exact ray cast)", "deepcsp mesh (defaults)", "field (sphere-traced)")


def cli(*args: str, cwd: Path) -> None:
    """Run ``deepcsp ARGS`` with this interpreter (the cache of training samples goes under ``cwd``)."""
    subprocess.run([sys.executable, "-m", "deepcsp", *args], cwd=cwd, check=True, env=os.environ.copy())


def figure(mesh_in: Path, work: Path, out: Path) -> None:
    import deepcsp
    from deepcsp.io import load_surface
    from deepcsp.render import orbit_camera, render_field, render_mesh_exact

    field_path, mesh_path = work / "field.safetensors", work / "mesh.ply"
    if not field_path.exists():
        cli("fit", str(mesh_in), "-o", str(field_path), "--quiet", cwd=work)
    if not mesh_path.exists():
        cli("mesh", str(field_path), "-o", str(mesh_path), cwd=work)
    surf = load_surface(mesh_in)
    ours = load_surface(mesh_path)
    field = deepcsp.load(field_path)
    nz = field.normalization
    w, h = PANEL
    # the whole airplane (wings, engines, the windowed side), then a close-up of the windows and the wing root
    cameras = [
        orbit_camera(30, 40, w, h, fov=22, distance=1.9, look_at=(0.0, 0.05, 0.0)),
        orbit_camera(30, 40, w, h, fov=22, distance=0.9, look_at=(0.03, 0.03, 0.05)),
    ]
    rows = [
        [
            render_mesh_exact(surf.vertices, surf.faces, cam, nz).image,
            render_mesh_exact(ours.vertices, ours.faces, cam, nz).image,
            render_field(field, cam).image,
        ]
        for cam in cameras
    ]
    write_panel_grid(rows, LABELS, out)
    print(f"wrote {out} ({out.stat().st_size // 1024} KB); field {field_path}, mesh {mesh_path}")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--mesh", type=Path, help="input mesh (default: the dev mesh open/airplane_holes.obj)")
    ap.add_argument("--out", type=Path, default=HERE / "figures" / "thin_airplane.png")
    ap.add_argument("--work", type=Path, help="folder for the field and mesh (default: a temporary one)")
    args = ap.parse_args()
    mesh_in = (args.mesh or meshes_dir() / "open" / "airplane_holes.obj").resolve()
    if args.work is not None:
        args.work.mkdir(parents=True, exist_ok=True)
        figure(mesh_in, args.work.resolve(), args.out.resolve())
    else:
        with tempfile.TemporaryDirectory() as d:
            figure(mesh_in, Path(d), args.out.resolve())


if __name__ == "__main__":
    main()
