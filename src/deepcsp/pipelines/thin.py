"""Thin parts that a closed extraction loses, put back from the unsigned mesh or kept.

A closed surface's mesh comes from inside/outside bits at grid vertices, so a part thinner than a
cell or two (a plate, a bar, the plates under a truck's floor) has no inside vertex and vanishes,
and so does structure inside the closed body: the samples there are left with no surface near
them. The unsigned mesh of the same field has those parts as single sheets. ``restore_thin_parts``
adds its faces that lie off the closed mesh where the closed mesh leaves samples uncovered.
Where a thin part does get inside vertices it can still break into beads, pieces too small to
pass for more than an error of a few grid vertices; ``drop_small_pieces`` keeps those that are the
only surface near their samples.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.spatial import cKDTree

from deepcsp.extract.topology import face_components, remove_small_components
from deepcsp.geometry.cleanup import drop_unused_vertices, face_areas
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


@dataclass
class SmallPieces:
    """A mesh without its small pieces that cover no samples (``vertices``, ``faces``): how many
    pieces were dropped (``n_dropped``) and how many small ones were kept because they are the
    only surface near their samples (``n_kept``)."""

    vertices: np.ndarray
    faces: np.ndarray
    n_dropped: int
    n_kept: int


def drop_small_pieces(
    vertices: np.ndarray,
    faces: np.ndarray,
    samples: np.ndarray,
    spacing: np.ndarray,
    min_area: float,
    far: float,
    min_samples: int = 3,
) -> SmallPieces:
    """Drop the edge-connected pieces of ``(V, 3), (F, 3)`` with less area than ``min_area``,
    but those that at least ``min_samples`` of the ``samples (N, 3)`` (local spacings
    ``spacing (N,)``) have as their nearest piece within ``far`` spacings while lying further
    than that from every larger piece: the beads of a thin part the mesh broke up, not a sign or
    sheet error of a few grid vertices next to the surface (the samples there have the
    surface itself nearer)."""
    n_pieces, labels = face_components(faces, len(vertices))
    if n_pieces == 0:
        return SmallPieces(vertices, faces, 0, 0)
    small = np.bincount(labels, weights=face_areas(vertices, faces), minlength=n_pieces) < min_area
    if not small.any():
        return SmallPieces(vertices, faces, 0, 0)
    keep = ~small
    small_faces = np.flatnonzero(small[labels])
    piece_of = np.full(len(vertices), -1, np.int64)  # the small piece a vertex belongs to
    piece_of[faces[small_faces].reshape(-1)] = np.repeat(labels[small_faces], 3)
    on_small = np.flatnonzero(piece_of >= 0)
    reach = far * np.asarray(spacing, np.float64)
    d, nearest = cKDTree(vertices[on_small]).query(samples, workers=-1)
    near = np.flatnonzero(d <= reach)
    if len(near) >= min_samples:
        large = faces[~small[labels]]
        if len(large):
            off = MeshOracle(vertices, large).query(samples[near]).distances > reach[near]
            near = near[off]
        count = np.bincount(piece_of[on_small[nearest[near]]], minlength=n_pieces)
        keep |= small & (count >= min_samples)
    kept = vertices, faces[keep[labels]]
    return SmallPieces(*drop_unused_vertices(*kept), int((~keep).sum()), int((keep & small).sum()))
