"""Spurs along sharp edges (issue 12): wingnut's clean cloud of 10k points (``bm_pointcloud.py``'s
``10k``, seed 0) reconstructed without crease patches (``PointSetConfig.creases = 0``), with them
but feet away from every sample still counting in the blend (``foot_samples = 0``: small spurs
along the wings' edges, where a refitted face's continuation passes closer to a query than the
surface does), and with the default. Prints each mesh's Chamfer-L1 and the share of its area
further than half a sample spacing and one spacing from the true surface.

Run:  python benchmarks/fig_crease_spurs.py [--out benchmarks/figures/crease_spurs.png]
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from _common import HERE, figure_main, meshes_dir, write_mesh_panels
from bm_pointcloud import ground_truth, make_cloud, score

PANEL = (400, 360)  # width, height of one panel


def reconstruct(points: np.ndarray, **surface) -> tuple[np.ndarray, np.ndarray]:
    from deepcsp.fit import FitConfig
    from deepcsp.fit.config import CloudConfig
    from deepcsp.geometry.pointset import PointSetConfig
    from deepcsp.io.surface import surface_from_arrays
    from deepcsp.pipelines import ReconstructionConfig, reconstruct_cloud

    cloud = CloudConfig(surface=PointSetConfig(**surface))
    rec = reconstruct_cloud(
        surface_from_arrays(points), ReconstructionConfig(fit=FitConfig(eval_points=0, cloud=cloud))
    )
    return rec.vertices, rec.faces


def far_area(vertices: np.ndarray, faces: np.ndarray, oracle, spacing: float) -> tuple[float, float]:
    """Shares of the mesh's area whose face centres lie further than 0.5 and 1 ``spacing`` from the truth."""
    from deepcsp.geometry.cleanup import face_areas

    area = face_areas(vertices, faces)
    d = oracle.query(vertices[faces].mean(1)).distances / spacing
    return float(area[d > 0.5].sum() / area.sum()), float(area[d > 1.0].sum() / area.sum())


def figure(out: Path) -> None:
    from deepcsp.geometry.closest import MeshOracle
    from deepcsp.geometry.normalize import Normalization
    from deepcsp.geometry.pointset import PointSetConfig, PointSetSurface
    from deepcsp.render import orbit_camera

    gv, gf, diag = ground_truth(meshes_dir() / "closed" / "wingnut.obj")
    points = make_cloud(gv, gf, diag, "10k", 0)
    spacing = PointSetSurface.build(points, PointSetConfig(creases=0.0)).summary.spacing
    meshes = {
        "input mesh": (gv, gf),
        "no crease patches": reconstruct(points, creases=0.0),
        "crease patches, foot_samples = 0": reconstruct(points, foot_samples=0.0),
        "default": reconstruct(points),
    }
    oracle = MeshOracle(gv, gf)
    for label, (v, f) in list(meshes.items())[1:]:
        half, one = far_area(v, f, oracle, spacing)
        cd = score(v, f, gv, gf, diag)["cd_l1"]
        print(f"{label}: Chamfer-L1 {cd:.4f}% of the diagonal; area beyond 0.5 / 1 spacing {half:.2%} / {one:.2%}")
    nz = Normalization.from_points(gv)
    v0 = nz.to_normalized(gv)
    wing = v0[v0[:, 0] < v0[:, 0].min() + 0.4 * np.ptp(v0[:, 0])].mean(0)  # the left wing and the body
    w, h = PANEL
    cameras = [orbit_camera(a, e, w, h, fov=16, distance=2.2, look_at=tuple(wing)) for a, e in ((30, 25), (-30, 10))]
    write_mesh_panels(meshes, cameras, nz, out)


def main() -> None:
    figure_main(figure, __doc__, HERE / "figures" / "crease_spurs.png")


if __name__ == "__main__":
    main()
