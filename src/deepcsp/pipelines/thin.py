"""Thin parts that a closed extraction loses, put back from the unsigned mesh.

A closed surface's mesh comes from inside/outside bits at grid vertices, so a part thinner than a
cell or two (a plate, a bar, the plates under a truck's floor) has no inside vertex and vanishes,
and so does structure inside the closed body: the samples there are left with no surface near
them. The unsigned mesh of the same field has those parts as single sheets. ``restore_thin_parts``
adds its faces that lie off the closed mesh where the closed mesh leaves samples uncovered.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.spatial import cKDTree

from deepcsp.extract.topology import remove_small_components
from deepcsp.geometry.cleanup import drop_unused_vertices
from deepcsp.geometry.closest import MeshOracle


@dataclass
class RestoredParts:
    """The closed mesh with the unsigned mesh's faces added (``vertices``, ``faces``), how many
    samples it had left further than the restoring distance (``n_uncovered``) and how many faces
    were added (``n_added``)."""

    vertices: np.ndarray
    faces: np.ndarray
    n_uncovered: int
    n_added: int


def restore_thin_parts(
    closed: tuple[np.ndarray, np.ndarray],
    unsigned: tuple[np.ndarray, np.ndarray],
    samples: np.ndarray,
    spacing: np.ndarray,
    far: float,
    min_samples: int,
    min_area: float,
) -> RestoredParts:
    """Add to the ``closed`` mesh ``(V, 3), (F, 3)`` the faces of the ``unsigned`` mesh (same
    coordinates) whose centroids lie further than ``far`` spacings from it and within ``far``
    spacings of a sample that lies that far from it too (local spacings ``spacing (N,)`` of the
    ``samples (N, 3)``; the median spacing for faces), when more than ``min_samples`` samples do;
    pieces of less area than ``min_area`` are not added. The pieces keep their own
    vertices (they meet the closed mesh nowhere), so no edge becomes non-manifold."""
    cv, cf = closed
    uv, uf = unsigned
    if len(cf) == 0 or len(uf) == 0 or far <= 0:
        return RestoredParts(cv, cf, 0, 0)
    # a sample within reach of a vertex is covered; only the others need the exact distance
    maybe = np.flatnonzero(cKDTree(cv).query(samples, workers=-1)[0] > far * spacing)
    if len(maybe) <= min_samples:
        return RestoredParts(cv, cf, len(maybe), 0)
    oracle = MeshOracle(cv, cf)
    uncovered = maybe[oracle.query(samples[maybe]).distances > far * spacing[maybe]]
    if len(uncovered) <= min_samples:
        return RestoredParts(cv, cf, len(uncovered), 0)
    reach = far * float(np.median(spacing))
    centroids = uv[uf].mean(axis=1)
    off = cKDTree(samples[uncovered]).query(centroids, distance_upper_bound=reach, workers=-1)[0] <= reach
    off[off] = oracle.query(centroids[off]).distances > reach
    pv, pf = remove_small_components(*drop_unused_vertices(uv, uf[off]), min_area=min_area)
    if len(pf) == 0:
        return RestoredParts(cv, cf, len(uncovered), 0)
    return RestoredParts(np.concatenate([cv, pv]), np.concatenate([cf, pf + len(cv)]), len(uncovered), len(pf))
