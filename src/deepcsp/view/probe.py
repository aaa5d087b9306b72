"""The probe: one point's closest point, distance and normal, straight from a field."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass
class ProbeResult:
    """What the field says about one point, in the input's coordinates.

    Attributes
    ----------
    point : (3,) float64
        The probed point.
    closest_point : (3,) float64
        ``CSP(point)`` (:meth:`Field.query`).
    distance : float
        ``|point - closest_point|``.
    normal : (3,) float64
        Unit surface normal at the closest point (:meth:`Field.normals`; towards the probe for
        open surfaces, outward for closed fields), or the direction ``point - closest_point``
        where the field gives none (point clouds).
    """

    point: np.ndarray
    closest_point: np.ndarray
    distance: float
    normal: np.ndarray


def probe(field, point) -> ProbeResult:
    """Query ``field`` at ``point : (3,)`` (input coordinates)."""
    p = np.asarray(point, np.float64).reshape(-1)
    if p.shape != (3,) or not np.isfinite(p).all():
        raise ValueError(f"point must be 3 finite numbers, got {np.asarray(point).tolist()!r}")
    q = field.query(p[None])
    cp = q.closest_points[0]
    normal = None
    if getattr(field, "faces", "mesh") is not None:  # exact clouds have no normals (faces None)
        try:
            normal = np.asarray(field.normals(p[None]), np.float64)[0]
        except (ValueError, RuntimeError):
            normal = None
    if normal is None or not np.isfinite(normal).all() or np.linalg.norm(normal) < 0.5:
        d = p - cp
        n = float(np.linalg.norm(d))
        normal = d / n if n > 0 else np.zeros(3)
    return ProbeResult(point=p, closest_point=cp, distance=float(q.distances[0]), normal=normal)
