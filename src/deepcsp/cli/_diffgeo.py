"""Normals and curvatures for ``deepcsp query --normals --curvature``."""

from __future__ import annotations

import numpy as np


def add_diffgeo(field, points, out: dict, normals: bool, curvature: bool) -> None:
    """Add ``normals`` (N, 3) and/or ``k1``, ``k2``, ``mean_curvature``, ``gaussian_curvature``
    (N,) to ``out``, in the input's coordinates (see :mod:`deepcsp.fields.diffgeo` for the
    conventions: normals outward for closed fields, else towards the query side; curvature
    positive where the surface bends away from the normal). Normals use the field's default
    method (``auto``); with both flags the curvature signs refer to the written normals."""
    from deepcsp.fields import diffgeo as fdg
    from deepcsp.fields.diffgeo import Curvatures

    pts = np.asarray(points)
    n = fdg.normals(field, pts) if normals else None
    if curvature:
        c = fdg.curvatures(field, pts)
        if n is not None:
            flip = (c.normals * n).sum(1) < 0  # refer the signs to the written normals
            c = Curvatures(
                k1=np.where(flip, -c.k2, c.k1), k2=np.where(flip, -c.k1, c.k2),
                dir1=np.where(flip[:, None], c.dir2, c.dir1), dir2=np.where(flip[:, None], c.dir1, c.dir2),
                mean=np.where(flip, -c.mean, c.mean), gaussian=c.gaussian, normals=n,
            )
        out["k1"], out["k2"] = c.k1, c.k2
        out["mean_curvature"], out["gaussian_curvature"] = c.mean, c.gaussian
    if n is not None:
        out["normals"] = n
