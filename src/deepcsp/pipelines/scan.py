"""Simulated range scans of a mesh: what a depth sensor around an object records (points only
where a view sees the surface, denser where it faces the sensor, noisy along the ray)."""

from __future__ import annotations

import numpy as np

from deepcsp.render.camera import orbit_camera
from deepcsp.render.render import exact_ray_cast


def scan_cloud(
    vertices: np.ndarray,
    faces: np.ndarray,
    views: int = 4,
    resolution: int = 160,
    noise: float = 0.002,
    elevation: float = 20.0,
    seed: int = 0,
) -> np.ndarray:
    """Points ``(N, 3)`` where rays of ``views`` cameras around the mesh (``resolution`` pixels
    a side, turned evenly about the vertical, ``elevation`` degrees up) first hit it, each moved
    along its ray by Gaussian noise of ``noise`` times the bounding-box diagonal."""
    from deepcsp.geometry.normalize import Normalization

    v = np.asarray(vertices, np.float64)
    norm = Normalization.from_points(v)
    rng = np.random.default_rng(seed)
    diag = float(np.linalg.norm(v.max(0) - v.min(0)))
    out = []
    for i in range(views):
        cam = orbit_camera(360.0 * i / views + 20.0, elevation * (1 if i % 2 == 0 else -0.5), resolution, resolution)
        rays = cam.rays()
        o = norm.to_input(rays.origins.reshape(-1, 3))
        d = rays.directions.reshape(-1, 3)
        hits = exact_ray_cast(v, faces, o, d)
        t = hits.depth[hits.hit] + rng.normal(size=int(hits.hit.sum())) * noise * diag
        out.append(o[hits.hit] + d[hits.hit] * t[:, None])
    return np.concatenate(out)
