"""Inside/outside of closed clouds (``ReconstructionConfig.sign_topology``): the penguin's 10k-point
cloud (the benchmark's: area-uniform samples, seed 0) reconstructed with ``sign_topology=0`` (signs
from the first unsigned mesh, whose topology grid bridges the gaps between the flippers and the body)
and with the default (signs from a mesh on a grid of half a sample spacing), beside the input mesh
(exact ray cast), from the front and from the side.

Run:  python benchmarks/fig_signs.py [--out benchmarks/figures/signs.png]
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
from _common import HERE, meshes_dir, write_panel_grid

PANEL = (300, 380)  # width, height of one panel
LABELS = ("input (exact ray cast)", "sign_topology=0", "default (sign_topology=0.5)")
#: (orbit azimuth, elevation, distance) of each row
VIEWS = [(0, 5, 1.5), (60, 5, 1.5)]


def meshes(path: Path) -> list[tuple[np.ndarray, np.ndarray]]:
    """The input mesh and its 10k-point cloud's reconstructions without and with fine signs."""
    from deepcsp.geometry.sampling import sample_surface
    from deepcsp.io import load_surface
    from deepcsp.io.surface import surface_from_arrays
    from deepcsp.pipelines import ReconstructionConfig, reconstruct_cloud

    surf = load_surface(path)
    cloud = sample_surface(surf.vertices, surf.faces, 10_000, np.random.default_rng(0)).points
    out = [(surf.vertices, surf.faces)]
    for sign_topology in (0.0, ReconstructionConfig.sign_topology):
        rec = reconstruct_cloud(surface_from_arrays(cloud), ReconstructionConfig(sign_topology=sign_topology))
        print(f"sign_topology={sign_topology}: {len(rec.faces)} faces, {rec.stats.n_boundary_loops} boundary loops")
        out.append((rec.vertices, rec.faces))
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", type=Path, default=HERE / "figures" / "signs.png")
    args = ap.parse_args()
    from deepcsp.geometry.normalize import Normalization
    from deepcsp.render import orbit_camera, render_mesh_exact

    found = meshes(meshes_dir() / "closed" / "penguin.obj")
    nz = Normalization.from_points(found[0][0])
    w, h = PANEL
    cameras = [
        orbit_camera(azimuth, elevation, w, h, fov=35, distance=distance) for azimuth, elevation, distance in VIEWS
    ]
    rows = [[render_mesh_exact(v, f, cam, nz).image for v, f in found] for cam in cameras]
    write_panel_grid(rows, LABELS, args.out)
    print(f"wrote {args.out} ({args.out.stat().st_size // 1024} KB)")


if __name__ == "__main__":
    main()
