"""Thin parts kept as beads (issue 12): dragon_stanford_20k's cloud of 10k points with noise 0.5% of
the diagonal (``bm_pointcloud.py``'s ``10k-n0.5``, seed 0), reconstructed with small pieces dropped
as before 39d7251 (``thin_spacings = 0``: every piece under 20 samples' area goes; on this cloud the
same mesh, since no thin part was put back) and with the default, which keeps the pieces that alone
cover samples; screened Poisson beside them when open3d is installed. Top row the whole dragon from
the side, bottom row a close-up of its head (horns). Prints each mesh's Chamfer-L1.

Run:  python benchmarks/fig_beads.py [--out benchmarks/figures/beads.png]
"""

from __future__ import annotations

import importlib.util
from pathlib import Path

import numpy as np
from _common import HERE, figure_main, meshes_dir, write_mesh_panels
from bm_pointcloud import ground_truth, make_cloud, run_deepcsp, score

PANEL = (360, 260)  # width, height of one panel


def head_camera(vertices: np.ndarray, nz, side) -> object:
    """A close-up of the quarter of the shape furthest to the left of the side view (the head)."""
    from deepcsp.render import orbit_camera

    v = nz.to_normalized(vertices)
    right = side.basis()[0]
    x = v @ right
    head = v[x < x.min() + 0.25 * np.ptp(x)]
    w, h = PANEL
    return orbit_camera(90, 10, w, h, fov=22, distance=1.2, look_at=tuple(head.mean(0)))


def figure(out: Path) -> None:
    from deepcsp.geometry.normalize import Normalization
    from deepcsp.render import orbit_camera

    gv, gf, diag = ground_truth(meshes_dir() / "closed" / "dragon_stanford_20k.obj")
    points = make_cloud(gv, gf, diag, "10k-n0.5", 0)
    meshes = {
        "input mesh": (gv, gf),
        "before: small pieces dropped": run_deepcsp(points, thin_spacings=0.0),
        "now: pieces that alone cover samples kept": run_deepcsp(points),
    }
    if importlib.util.find_spec("open3d") is not None:
        from deepcsp.pipelines.peers import PEERS

        meshes["screened Poisson"] = PEERS["poisson"](points)
    for label, (v, f) in list(meshes.items())[1:]:
        print(f"{label}: Chamfer-L1 {score(v, f, gv, gf, diag)['cd_l1']:.4f}% of the diagonal")
    nz = Normalization.from_points(gv)
    w, h = PANEL
    side = orbit_camera(90, 10, w, h, fov=22, distance=1.8)
    cameras = [side, head_camera(gv, nz, side)]
    write_mesh_panels(meshes, cameras, nz, out)


def main() -> None:
    figure_main(figure, __doc__, HERE / "figures" / "beads.png")


if __name__ == "__main__":
    main()
