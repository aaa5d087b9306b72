"""Normals and curvatures for ``deepcsp query --normals --curvature``."""

from __future__ import annotations

import numpy as np


def add_diffgeo(field, points, out: dict, normals: bool, curvature: bool) -> None:
    """Add ``normals`` (N, 3) and/or ``k1``, ``k2``, ``mean_curvature``, ``gaussian_curvature``
    (N,) to ``out``, in the input's coordinates (see :mod:`deepcsp.fields.diffgeo` for the
    conventions: normals towards the query side, curvature positive where the surface bends away
    from the normal). With both flags the curvature signs refer to the written normals."""
    pts = np.asarray(points)
    if curvature:
        c = field.curvatures(pts)
        out["k1"], out["k2"] = c.k1, c.k2
        out["mean_curvature"], out["gaussian_curvature"] = c.mean, c.gaussian
        if normals:
            out["normals"] = c.normals
    elif normals:
        out["normals"] = field.normals(pts)
