"""Holes of a reconstruction measured against its cloud: which are the cloud's and which are not.

A hole of the cloud leaves a region with no sample near it; a false hole of a reconstruction (the
point-set surface's boundary test firing along a sharp crease, on a thin part, or where sampling
is sparse) lies where samples are as dense as anywhere. Both tests here use one rule: a point is
*in a hole* when it lies further than ``empty`` local sample spacings from every sample.
``trim_holes`` drops the faces that span holes after a closed extraction; ``retract_rims`` drops
those that run on past the samples from a boundary; ``fill_covered_holes`` closes the boundary
loops whose patch lies nowhere in a hole.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import numpy as np

from deepcsp.extract.holes import boundary_loops, ear_clip, edge_keys
from deepcsp.extract.topology import boundary_vertex_mask, face_components, remove_small_components
from deepcsp.geometry.cleanup import drop_unused_vertices, face_areas


class SampleGaps:
    """How far points lie from a cloud's samples, in local sample spacings."""

    def __init__(self, points: np.ndarray, k: int = 32):
        from scipy.spatial import cKDTree

        from deepcsp.geometry.pointset import local_spacing

        self.tree = cKDTree(points)
        self.spacing = local_spacing(points, self.tree)
        self.typical = float(np.median(self.spacing))
        self.least = float(self.spacing.min())
        self.k = min(k, len(points))

    def __call__(self, x: np.ndarray) -> np.ndarray:
        """``(M,)`` the distance of each point ``x (M, 3)`` to its nearest sample over the median
        spacing of its ``k`` nearest samples."""
        if len(x) == 0:
            return np.zeros(0)
        d, near = self.tree.query(x, k=self.k, workers=-1)
        return d[:, 0] / np.median(self.spacing[near], axis=1)

    def over(self, x: np.ndarray, empty: float) -> np.ndarray:
        """Indices of the points ``x (M, 3)`` further than ``empty`` local spacings from every sample
        (:meth:`__call__` > ``empty``), measured only where the nearest sample is further than
        ``empty`` of the least spacing (the same indices: no median of spacings is smaller)."""
        if len(x) == 0:
            return np.zeros(0, dtype=np.int64)
        near, _ = self.tree.query(x, workers=-1)
        maybe = np.flatnonzero(near > empty * self.least)
        return maybe[self(x[maybe]) > empty]

    def beyond(self, x: np.ndarray, empty: float) -> np.ndarray:
        """Indices of the points ``x (M, 3)`` further than ``empty`` local spacings from every sample
        (:meth:`__call__`), measured only where the nearest sample alone puts them past half of it."""
        if len(x) == 0:
            return np.zeros(0, dtype=np.int64)
        near, nearest = self.tree.query(x, workers=-1)
        maybe = np.flatnonzero(near > 0.5 * empty * self.spacing[nearest])
        return maybe[self(x[maybe]) > empty]

    def surrounded(self, x: np.ndarray, reach: float = 2.0, lopsided: float = 0.5) -> np.ndarray:
        """``(M,)`` bool: whether the samples nearest each point ``x (M, 3)`` (those within ``reach``
        times the distance to the nearest one) lie around it rather than to one side: the mean of
        their unit directions is shorter than ``lopsided``. The middle of a hole sees its rim all
        round; a point that overshoots a crease or an edge sees every sample behind it."""
        if len(x) == 0:
            return np.zeros(0, dtype=bool)
        d, near = self.tree.query(x, k=min(128, self.tree.n), workers=-1)
        u = self.tree.data[near] - x[:, None]
        u /= np.maximum(np.linalg.norm(u, axis=2, keepdims=True), 1e-300)
        within = d <= reach * d[:, :1]
        mean = (u * within[..., None]).sum(1) / within.sum(1, keepdims=True)
        return np.linalg.norm(mean, axis=1) < lopsided


def trim_holes(
    vertices: np.ndarray,
    faces: np.ndarray,
    gaps: SampleGaps,
    empty: float,
    core: float,
    surface: Callable[[np.ndarray], np.ndarray] | None = None,
    overshoot: float = 0.0,
    lip: float = 0.0,
) -> tuple[np.ndarray, np.ndarray]:
    """Reopen the holes of a cloud after a closed extraction: drop the edge-connected regions of
    faces whose centroid lies further than ``empty`` local spacings from every sample and that
    reach ``core`` spacings somewhere, measured at the centroids moved onto ``surface`` (a map
    onto the surface the cloud samples that continues it across holes; None: where they are). A
    region that reaches no deeper than ``overshoot`` spacings counts only where one of its faces
    that deep sees samples all round from its centroid (:meth:`SampleGaps.surrounded`). Then,
    where ``lip`` > 0, the regions of faces further than ``lip`` spacings from every sample that
    reach the new cut go too: the lip a closed extraction bends into a hole's rim, which stays
    under ``empty`` spacings from the samples (a sheet's rim the cloud already had is left to
    :func:`retract_rims`).

    Gaps of random sampling stay under about 1.6 spacings at 10,000 samples
    (:meth:`deepcsp.geometry.pointset.PointSetSurface._in_hole`); a mesh a little off its samples
    on a thin or curved part is further from them than that without spanning a hole; the surface
    continued past a sharp crease can overshoot its samples by a few spacings, but it sees them
    all on one side, where the middle of a hole sees its rim all round."""
    if len(faces) == 0:
        return vertices, faces
    centroids = vertices[faces].mean(1)
    span = gaps.over(centroids, empty)
    if len(span) == 0:
        return vertices, faces
    depth = gaps(surface(centroids[span]) if surface is not None else centroids[span])
    deep = depth > core
    shallow = np.flatnonzero(deep & (depth <= overshoot))  # maybe past a crease
    deep[shallow] = gaps.surrounded(centroids[span[shallow]])
    n, region = face_components(faces[span], len(vertices))
    hole = np.zeros(n, dtype=bool)
    np.logical_or.at(hole, region, deep)
    drop = span[hole[region]]
    if len(drop) == 0:
        return vertices, faces
    kept = np.delete(faces, drop, axis=0)
    if lip > 0:
        cut = boundary_vertex_mask(kept, len(vertices)) & ~boundary_vertex_mask(faces, len(vertices))
        kept = np.delete(kept, _far_regions(vertices, kept, gaps, lip, cut), axis=0)
    return remove_small_components(vertices, kept, min_faces=1)


def retract_rims(
    vertices: np.ndarray, faces: np.ndarray, gaps: SampleGaps, empty: float
) -> tuple[np.ndarray, np.ndarray]:
    """Drop the edge-connected regions of faces whose centroid lies further than ``empty`` local
    spacings from every sample and that reach the mesh's boundary: a rim that runs on past where
    the samples end (the lip a closed extraction leaves around a hole that :func:`trim_holes`
    reopened, an open sheet's edge overshooting) retracts to them. Regions that touch no boundary
    are left alone, so no new hole opens."""
    if len(faces) == 0:
        return vertices, faces
    drop = _far_regions(vertices, faces, gaps, empty, boundary_vertex_mask(faces, len(vertices)))
    if len(drop) == 0:
        return vertices, faces
    return drop_unused_vertices(vertices, np.delete(faces, drop, axis=0))


def _far_regions(
    vertices: np.ndarray, faces: np.ndarray, gaps: SampleGaps, empty: float, touching: np.ndarray
) -> np.ndarray:
    """Indices of the faces whose centroid lies further than ``empty`` local spacings from every
    sample, in the edge-connected regions of such faces that reach a vertex of ``touching (V,)``."""
    far = gaps.beyond(vertices[faces].mean(1), empty)
    if len(far) == 0:
        return far
    n, region = face_components(faces[far], len(vertices))
    reaches = np.zeros(n, dtype=bool)
    np.logical_or.at(reaches, region, touching[faces[far]].any(1))
    return far[reaches[region]]


@dataclass
class FilledHoles:
    """A mesh with the boundary loops its cloud covers closed, and how many of how many."""

    vertices: np.ndarray
    faces: np.ndarray
    n_loops: int
    """Simple boundary loops before."""
    n_filled: int
    """Loops closed."""


def fill_covered_holes(
    vertices: np.ndarray, faces: np.ndarray, gaps: SampleGaps, empty: float, samples_per_spacing: float = 2.0
) -> FilledHoles:
    """Close each boundary loop of ``vertices (V, 3)``, ``faces (F, 3)`` (consistently wound) whose
    ear-clipped patch (:func:`deepcsp.extract.holes.ear_clip`, no new vertex; where every diagonal
    is an edge already, a fan around a new vertex at the loop's centre) lies nowhere in a hole of
    the cloud: points on the patch, ``samples_per_spacing`` per typical spacing along its edges
    and per spacing squared over its area, all within ``empty`` local spacings of a sample and
    within ``2 empty`` typical spacings of the loop. A hole of the cloud stays open; a slit along
    a crease or a gap on a thin part closes; the rim of an open sheet, whose patch would lie on the
    sheet itself (and so on its samples), is no hole."""
    loops = boundary_loops(faces, len(vertices))
    taken = edge_keys(faces, len(vertices), among=loops) if loops else set()
    rng = np.random.default_rng(0)
    step = gaps.typical / samples_per_spacing
    patches, centres = [], []
    for loop in loops:
        tri, centre = ear_clip(vertices, loop, taken), None
        if tri is None:  # every diagonal is an edge already (a pinched loop): a fan around its centre
            centre = vertices[loop].mean(0)
            tri = _fan(loop, len(vertices) + len(centres))
        at = vertices if centre is None else np.concatenate([vertices, *centres, centre[None]])
        x = _patch_samples(at, tri, step, rng)
        # the width first: an open sheet's rim spans the whole sheet, whose gaps cost seconds to measure
        if _width(vertices[loop], x) > 2.0 * empty * gaps.typical or (gaps(x) > empty).any():
            continue
        patches.append(tri)
        if centre is None:
            taken.update(edge_keys(tri, len(vertices)))
        else:  # its new edges end at the new vertex: no other loop's diagonal
            centres.append(centre[None])
    if not patches:
        return FilledHoles(vertices, faces, len(loops), 0)
    vertices = np.concatenate([vertices, *centres]) if centres else vertices
    return FilledHoles(vertices, np.concatenate([faces, *patches]), len(loops), len(patches))


def _fan(loop: np.ndarray, centre: int) -> np.ndarray:
    """Triangles ``(n, 3)`` joining each edge of a boundary loop to vertex ``centre``, wound
    against the loop's half-edges (as :func:`deepcsp.extract.holes.ear_clip`)."""
    return np.stack([np.roll(loop, -1), loop, np.full(len(loop), centre)], 1).astype(np.int64)


def _width(rim: np.ndarray, x: np.ndarray) -> float:
    """How far the points ``x`` of a patch reach from its rim ``(n, 3)`` (its vertices)."""
    from scipy.spatial import cKDTree

    return float(cKDTree(rim).query(x, k=1, workers=-1)[0].max()) if len(x) else 0.0


def _patch_samples(vertices: np.ndarray, tri: np.ndarray, step: float, rng: np.random.Generator) -> np.ndarray:
    """Points on the triangles ``tri (T, 3)``: along every edge every ``step``, and uniformly over
    each face about one per ``step`` squared (at least its centroid)."""
    t = vertices[tri]
    a, b = t, np.roll(t, -1, axis=1)
    edge_n = np.maximum(np.ceil(np.linalg.norm(b - a, axis=2) / step).astype(np.int64), 1).reshape(-1)
    which = np.repeat(np.arange(len(edge_n)), edge_n)
    s = (np.arange(len(which)) - np.repeat(np.cumsum(edge_n) - edge_n, edge_n)) / edge_n[which]
    on_edges = a.reshape(-1, 3)[which] + s[:, None] * (b - a).reshape(-1, 3)[which]
    face_n = np.ceil(face_areas(vertices, tri) / step**2).astype(np.int64) + 1
    owner = np.repeat(np.arange(len(tri)), face_n)
    u, v = rng.random(len(owner)), rng.random(len(owner))
    flip = u + v > 1
    u, v = np.where(flip, 1 - u, u), np.where(flip, 1 - v, v)
    tt = t[owner]
    inside = tt[:, 0] + u[:, None] * (tt[:, 1] - tt[:, 0]) + v[:, None] * (tt[:, 2] - tt[:, 0])
    return np.concatenate([on_edges, inside])
