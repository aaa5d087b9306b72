"""How much of the lip at a hole cut to take (``ReconstructionConfig.hole_lip``, issue 12)?

After a closed extraction, the hole rule cuts out the faces that lie more than 1.75 local sample
spacings from every sample (``hole_spacings``); the ring where the closed mesh bends into the rim
stays unless ``hole_lip`` takes the faces further than that many spacings that reach the cut. The
value is chosen here on procedural shapes, none of the benchmark's meshes (the training and
validation meshes barely reach this step): a capsule with two rows of seven windows and a door,
and a sphere with five round holes, sampled as ``bm_pointcloud.py`` samples its clouds (seed 0) and
reconstructed with each ``--lips`` value. Columns: Chamfer-L1 (% of the bbox diagonal) and NC
against the exact shape, boundary loops against the truth's, area ratio.

Usage::

    python benchmarks/bm_hole_lip.py [--shapes capsule sphere] [--settings 10k 10k-n0.25 3k]
        [--lips 0 0.5 0.75 1.0 1.25]
"""

from __future__ import annotations

import argparse

import numpy as np
from _common import machine, print_table
from bm_pointcloud import make_cloud, score, table_row

from deepcsp.io.surface import surface_from_arrays
from deepcsp.pipelines.reconstruct import ReconstructionConfig, reconstruct_cloud


def windowed_capsule() -> tuple[np.ndarray, np.ndarray]:
    """A capsule 1.36 long, radius 0.18, with two rows of seven windows (about 0.06 x 0.054) and a door."""
    import trimesh

    m = trimesh.creation.capsule(height=1.0, radius=0.18, count=[96, 96])
    v, f = trimesh.remesh.subdivide_to_size(m.vertices, m.faces, max_edge=0.012)
    c = v[f].mean(1)
    theta = np.arctan2(c[:, 1], c[:, 0])
    hole = (np.abs(c[:, 2]) < 0.12) & (np.abs(theta - np.pi / 2 - 0.9) < 0.3)  # the door
    for z in np.linspace(-0.4, 0.4, 7):
        for side in (0.6, -0.6):
            hole |= (np.abs(c[:, 2] - z) < 0.03) & (np.abs(theta - side) < 0.15)
    return np.asarray(v, float), f[~hole]


def holed_sphere() -> tuple[np.ndarray, np.ndarray]:
    """A sphere of radius 0.5 with five round holes 0.08-0.3 radians across."""
    import trimesh

    m = trimesh.creation.icosphere(subdivisions=6, radius=0.5)
    c = m.triangles_center / 0.5
    centres = np.array([[1, 0, 0], [0, 1, 0], [0, 0, 1], [-1, -1, 0], [0.3, -0.5, -0.8]], float)
    centres /= np.linalg.norm(centres, axis=1, keepdims=True)
    hole = (c @ centres.T > np.cos([0.12, 0.2, 0.3, 0.08, 0.16])).any(1)
    return np.asarray(m.vertices, float), m.faces[~hole]


SHAPES = {"capsule": windowed_capsule, "sphere": holed_sphere}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--shapes", nargs="+", default=["capsule", "sphere"], choices=sorted(SHAPES))
    ap.add_argument("--settings", nargs="+", default=["10k", "10k-n0.25", "3k"])
    ap.add_argument("--lips", nargs="+", type=float, default=[0.0, 0.5, 0.75, 1.0, 1.25])
    args = ap.parse_args()
    print(f"# hole lip ({machine()})")
    rows = []
    for shape in args.shapes:
        gv, gf = SHAPES[shape]()
        diag = float(np.linalg.norm(gv.max(0) - gv.min(0)))
        for setting in args.settings:
            cloud = surface_from_arrays(make_cloud(gv, gf, diag, setting, 0))
            for lip in args.lips:
                rec = reconstruct_cloud(cloud, ReconstructionConfig(hole_lip=lip))
                s = score(rec.vertices, rec.faces, gv, gf, diag)
                rows.append({"shape": shape, "setting": setting, "lip": lip, **table_row(s)})
                print(rows[-1], flush=True)
    print_table(rows, list(rows[0]), {"CD-L1 %": "{:.4f}", "NC": "{:.5f}", "area": "{:.4f}"})


if __name__ == "__main__":
    main()
