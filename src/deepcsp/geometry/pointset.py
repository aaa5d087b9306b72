"""Closest points on the surface a point cloud samples (a point-set surface), not on its points.

Built once from an unoriented cloud, queried many times (as :class:`~deepcsp.geometry.closest.MeshOracle`)::

    pss = PointSetSurface.build(points)          # (N, 3) normalised coordinates
    res = pss.query(queries)                     # ClosestPoints(points, distances, face_ids, None)

The surface is a partition of unity of robust local quadrics:

1. **Clean-up** (:func:`remove_outliers`): points far sparser than their neighbours are dropped,
   then points well off the plane of their neighbours (:func:`remove_off_surface`: stray points a
   spacing or two from the surface, which look like samples to a density test); clouds above
   ``max_points`` are averaged in voxels (every point still counts).
2. **Patch size by cross-validation** (:func:`select_patch_size`): each candidate size and degree
   is fitted to the neighbours of held-out points; the one that predicts them best trades
   averaging noise (many neighbours, planes) against following detail (few, quadrics), and its
   error bounds the noise. On a noisy cloud the choice is then made again for every point
   (:func:`local_patch_sizes`): large planes where the surface is flat, small quadrics where it
   bends. Optionally the points are first projected (e.g. by a learned operator),
   the projection's systematic offset along the normal is measured against the points it moved
   and taken out (:func:`remove_offset`), and the choice is made again.
3. **Patches** (:func:`fit_patches`): one height-field quadric per point over its neighbours,
   weighted by tangential distance and then by residual (a second sheet within reach, or an
   outlier, gets no weight). A patch astride a sharp edge is fitted again to one face, and a
   patch with another face or layer in reach ends where its own samples end
   (:func:`_refit_creases`).
4. **Projection** (:meth:`PointSetSurface.project`): a query is projected orthogonally onto the
   patches of the points nearest to its current foot point; the projections on the nearest sheet
   are blended by the distance of the foot point to each patch's centre; two rounds.
5. **Open boundaries** (:meth:`PointSetSurface._clamp_to_boundary`): where the density of samples
   around the foot point falls below ``boundary_density`` of its interior value and no samples lie
   beyond it, the foot point moves back along the surface to that level, so the surface ends where
   the samples end (a closest point beyond an open boundary lies on the boundary) while sampling
   gaps inside stay closed.
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass, fields, replace

import numpy as np
import torch

from deepcsp._arrays import gather_rows, unique, unique_rows
from deepcsp._validate import Fields
from deepcsp.constants import LOCAL_PATCH_SIZES, PATCH_SIZES
from deepcsp.geometry.closest import ClosestPoints, check_points
from deepcsp.geometry.duplicates import merge_duplicates

#: Chunks :meth:`PointSetSurface.project` works on at once (2 cores: 1.15x faster than one chunk at
#: a time with torch's own threads; 3 were slower).
PROJECT_THREADS = 2
#: Rows of one block of :func:`_project_on_quadrics` in :meth:`PointSetSurface._project_feet` (16,384 queries
#: of 8 patches: that step 1.3x faster than 65,536 at once, whose temporaries leave the cache, on one
#: thread; the whole projection about 0.96x with two chunks at once).
QUADRIC_ROWS = 16384
#: Residuals beyond this many times a patch's robust scale carry no weight in its fit (:func:`_fit_quadrics`).
_ROBUST = 2.5
#: Where a patch's face ends (:func:`_edge`): samples of at least this tangential weight count; a patch has
#: an edge when this share of its weight lies outside its robust cut, on one side (their weighted mean
#: this many support widths off the centre); its foot points may go this far (support widths) beyond
#: the last sample within the cut.
CREASE_WEIGHT = 0.05
CREASE_SHARE = 0.05
CREASE_MARGIN = 0.25
CREASE_OFFSET = 0.5
#: A patch is fitted again as one face of a crease (:func:`_refit_creases`) only when that face holds at
#: most this share of its tangential weight: a face that keeps more was no crease.
CREASE_FACE = 0.9
#: Noise (sample spacings) from which a cloud's patch sizes are chosen per point (:func:`_noisy`).
LOCAL_PATCHES_ABOVE = 0.1
#: A cloud whose best patch is the smallest is noisy all the same (:func:`_noisy`) when the
#: cross-validated error of the patches of ``FLAT_NEIGHBORS`` neighbours is at most ``FLAT_RISE``
#: times that of the smallest (noise, not detail, sets the error) and the noise estimate is at least
#: ``FLAT_NOISE_ABOVE`` spacings.
FLAT_NEIGHBORS = 16
FLAT_RISE = 1.1
FLAT_NOISE_ABOVE = 0.08


@dataclass(frozen=True)
class PointSetConfig:
    """How a point-set surface is built from a cloud (sizes in neighbours or sample spacings)."""

    patch_neighbors: int = 0
    """Points per local patch; 0 = automatic (leave-one-out cross-validation with the degree)."""
    patch_degree: int = 0
    """Degree of the local patches (1 planes, 2 quadrics); 0 = automatic (with the size)."""
    kernel: float = 0.5
    """Gaussian width of a patch's weights, as a fraction of the distance to its farthest neighbour."""
    blend_neighbors: int = 8
    """Patches blended per query."""
    rounds: int = 2
    """Projection rounds (each re-picks the patches around the current foot point)."""
    outlier_ratio: float = 3.0
    """A point whose 8th-neighbour distance exceeds this many times its neighbours' (and twice the
    cloud's median) is an outlier."""
    off_surface: float = 8.0
    """A point further from its neighbours' plane than this many times their own median distance
    to theirs (and ``off_surface_floor`` of their spacing) is an outlier
    (:func:`remove_off_surface`); 0: never."""
    off_surface_floor: float = 3.0
    """...and than this many of its neighbours' median nearest-neighbour distances."""
    max_points: int = 250_000
    """Clouds with more points are averaged in voxels down to about this many."""
    boundary_density: float = 0.62
    """Open boundaries: the surface ends where the sample density falls below this fraction of its
    interior value and stays low further out (0: never, for clouds of closed surfaces)."""
    density_kernel: float = 1.5
    """Gaussian width of the density estimate, in local sample spacings."""
    far: float = 4.0
    """Queries further than this many sample spacings from every sample take their nearest sample
    as closest point (the far field; its error is about a spacing squared over the distance)."""
    offset_radius: float = 4.0
    """Width (local sample spacings) of the Gaussian over which a projection's offset along the
    normal is averaged and removed (:func:`remove_offset`); 0: never."""

    local_patches: int = 24
    """A noisy cloud's patch size and degree are chosen per point: the candidate whose
    leave-one-out error, averaged over this many nearest cross-validation centres, is lowest
    (:func:`local_patch_sizes`); 0: one size for the whole cloud."""

    self_project: bool = True
    """A noisy cloud (see :func:`_noisy`) that no other projection moves is projected onto its own
    point-set surface, and the surface is fitted again to the projected points (its offset removed
    as a learned projection's is): one round of denoising the points before the patches are fitted."""
    self_project_blend: bool = True
    """When the learned projection is at hand but the cloud is below its noise threshold, a
    self-projected cloud moves to the mean of its self-projection and the learned projection
    (their errors are partly independent: on the 12 training and validation meshes' clouds at 3k
    points with noise 0.5% and 10k with 0.25% of the diagonal, the point-set surface's error 0.97x
    and 0.96x that of either alone as chosen before, median; ``benchmarks/bm_projection.py``)."""

    creases: float = 3.0
    """A patch whose residual exceeds this many times its noise floor (two faces of a crease in
    its reach, fitted as one tilted compromise) is fitted again from the plane of the nearest
    neighbour whose own patch is clean and whose tangent plane the centre lies on, and a patch with
    another face or layer on one side ends where its own samples end (:func:`_refit_creases`); on
    clean clouds (noisy ones, see :func:`_sharp`, keep their patches); 0: never."""
    foot_samples: float = 1.0
    """Where patches have edges (``creases``): in a projection's blend, a patch whose foot point has
    no sample within this many of its spacings counts only where no other patch's foot has one (0:
    always counts). Past a convex edge a face's continuation passes closer to a query than the
    surface does, so the nearest-sheet choice took it and the surface kept spurs there (wingnut's
    10k cloud: 0.17% of the mesh's area more than a spacing off the truth, none with this)."""
    creases_max_points: int = 10**9
    """Clouds with more points keep their patches as fitted (``creases`` does not act; 0: no cloud). No
    limit by default. Before the 90% rule (``CREASE_FACE``) and ``foot_samples`` the refit cost CD on
    the training and validation meshes' 100k clouds (wingnut 1.27x) and the limit was 30,000; with
    them, on the same clouds: CD 0.968x (geometric mean), NC +0.0004, lower on 10 of 12 (the rows
    ``benchmarks/history/pointcloud-creases100k-2026-12-07.jsonl``)."""

    def __post_init__(self) -> None:
        f = Fields(self)
        f.auto_or_at_least("patch_neighbors", 6, 1024)
        f.integer("patch_degree", 0, 2)
        f.number("kernel", 0.05, 10.0)
        f.integer("blend_neighbors", 1, 64)
        f.integer("rounds", 1, 10)
        f.number("outlier_ratio", 1.0, 1e6)
        f.number("off_surface", 0.0, 1e6)
        f.number("off_surface_floor", 0.0, 1e6)
        f.integer("max_points", 1000, 10**8)
        f.number("boundary_density", 0.0, 1.0, max_open=True)
        f.number("density_kernel", 0.1, 10.0)
        f.number("far", 1.0, 1e6)
        f.number("offset_radius", 0.0, 100.0)
        f.integer("local_patches", 0, 1024)
        f.flag("self_project")
        f.flag("self_project_blend")
        f.number("creases", 0.0, 1e6)
        f.integer("creases_max_points", 0, 10**9)
        f.number("foot_samples", 0.0, 1e6)


@dataclass
class Patches:
    """Local quadrics ``z = c0 + c1 u + c2 v + c3 u^2 + c4 uv + c5 v^2`` in the frame
    ``frames[i] : (3, 3)`` (rows: tangent u, tangent v, normal) around ``centers[i]``.

    ``support : (N,)`` is the Gaussian width of each patch's weights and ``residual : (N,)`` the
    robust scale of its fit residuals (both in the cloud's units)."""

    centers: np.ndarray
    frames: np.ndarray
    coeffs: np.ndarray
    support: np.ndarray
    residual: np.ndarray
    edge: np.ndarray | None = None
    """``(N,)`` how far (cloud units) a foot point may go from the centre along ``direction``
    (inf or None: only the support's reach): a patch of one face of a crease ends where that
    face's samples do, so the face does not go on past the edge (:func:`_edge`)."""
    direction: np.ndarray | None = None
    """``(N, 2)`` unit tangent ``(u, v)`` direction of ``edge``: toward the samples the fit left out."""


@dataclass
class CloudSummary:
    """What :meth:`PointSetSurface.build` found: points in and kept, outliers dropped, the median
    sample spacing, the noise (standard deviation, cloud units: ``input_noise`` as given,
    ``noise`` after the projection if one was applied, ``projected``), and the patches used
    (``patch_neighbors``, ``patch_degree``)."""

    n_input: int
    n_points: int
    n_outliers: int
    spacing: float
    input_noise: float
    noise: float
    patch_neighbors: int
    patch_degree: int
    projected: bool
    close_layers: float = 0.0
    """Share of the samples with another sheet right above or below them (:func:`close_layers`)."""
    projection_offset: float = 0.0
    """Median offset along the normal (cloud units) removed from the projected points (:func:`remove_offset`)."""
    local_patches: float = 0.0
    """Share of the points whose patch, chosen per point (:func:`local_patch_sizes`), differs from
    the cloud's (``patch_neighbors``, ``patch_degree``); 0 where the choice was not made."""
    self_projected: bool = False
    """The points were moved onto their own point-set surface first (``PointSetConfig.self_project``;
    with ``projected`` too: to the mean of that and the learned projection, ``self_project_blend``)."""
    n_repeated: int = 0
    """Input samples that repeated others, exactly or all but, merged into them
    (:func:`~deepcsp.geometry.duplicates.merge_duplicates`)."""

    @property
    def projection(self) -> str:
        """Which projection moved the points: ``learned``, ``learned and self, averaged``, ``self``, ``none``."""
        if self.projected:
            return "learned and self, averaged" if self.self_projected else "learned"
        return "self" if self.self_projected else "none"


def remove_outliers(points: np.ndarray, ratio: float = 3.0, k: int = 8, isolated: float = 4.0) -> np.ndarray:
    """``(N,)`` bool mask of the points to keep. A point is an outlier when its ``k``-th neighbour
    distance exceeds ``isolated`` times the cloud's median (alone in empty space, also among other
    outliers), or ``ratio`` times the median over its neighbours and twice the cloud's median (a
    stray point beside the surface)."""
    from scipy.spatial import cKDTree

    k = min(k, len(points) - 1)
    dk, ik = cKDTree(points).query(points, k=k + 1, workers=-1)
    far = dk[:, -1]
    typical = np.median(far)
    local = np.median(far[ik[:, 1:]], axis=1)
    return ~((far > isolated * typical) | ((far > ratio * local) & (far > 2.0 * typical)))


def remove_off_surface(
    points: np.ndarray, ratio: float = 8.0, floor: float = 3.0, k: int = 12, chunk: int = 200_000
) -> np.ndarray:
    """``(N,)`` bool mask of the points to keep: a point lies off the surface its ``k`` nearest
    neighbours sample (an outlier a spacing or two from it, which :func:`remove_outliers` cannot
    tell from a sample) when its distance to their least-squares plane exceeds ``ratio`` times the
    median of their own such distances (the local noise, curvature or crease) and ``floor`` times
    their median nearest-neighbour distance. Points of a thin part or of close layers are kept:
    their neighbours' planes cut across the layers, so their own distances are as large."""
    from scipy.spatial import cKDTree

    k = min(k, len(points) - 1)
    if k < 3:  # no plane to be off
        return np.ones(len(points), dtype=bool)
    dk, ik = cKDTree(points).query(points, k=k + 1, workers=-1)
    ik = ik[:, 1:]
    off = np.empty(len(points))
    for s in range(0, len(points), chunk):
        nb = points[ik[s : s + chunk]]  # (n, k, 3), the point itself excluded
        c = nb.mean(1)
        x = nb - c[:, None]
        _, vecs = np.linalg.eigh(np.einsum("nki,nkj->nij", x, x))
        off[s : s + chunk] = np.abs(((points[s : s + chunk] - c) * vecs[:, :, 0]).sum(1))
    local_off = np.median(off[ik], axis=1)
    local_gap = np.median(dk[ik, 1], axis=1)
    return ~((off > ratio * local_off) & (off > floor * local_gap))


def voxel_average(points: np.ndarray, target: int) -> np.ndarray:
    """Average ``points : (N, 3)`` in cubic voxels sized so that about ``target`` remain."""
    lo = points.min(0)
    extent = float((points.max(0) - lo).max())
    size = extent / np.sqrt(target)  # a surface of the cloud's extent holds ~target voxels
    for _ in range(30):
        keys = np.floor((points - lo) / size).astype(np.int64)
        _, inv = unique_rows(keys)
        counts = np.bincount(inv)
        if len(counts) <= 1.15 * target:
            break
        size *= 1.1
    sums = np.zeros((len(counts), 3))
    np.add.at(sums, inv, points)
    return sums / counts[:, None]


@dataclass
class RemovedOffset:
    """Projected points with their systematic offset taken out (``points (N, 3)``) and the median
    size of the offset removed (``median``, cloud units)."""

    points: np.ndarray
    median: float


def remove_offset(
    raw: np.ndarray,
    moved: np.ndarray,
    radius: float = 4.0,
    thickness: float = 1.0,
    k: int = 128,
    chunk: int = 10000,
) -> RemovedOffset:
    """``moved (N, 3)``, the points ``raw (N, 3)`` after a projection onto the surface they
    sample, with the projection's systematic offset along the normal taken out.

    Noise is zero-mean, so around each moved point the raw points' offsets ``raw - moved`` along
    its normal (the least axis of its 16 nearest moved points) average to what the projection
    added, not what it removed: the shipped learned projection pulls a noisy cloud's convex parts
    inwards (spot with noise 0.5% of the diagonal: its mesh lay 0.06% of the diagonal inside).
    The average is over the ``k`` nearest moved points, weighted by a Gaussian of ``radius``
    local spacings across and ``thickness`` spacings off the tangent plane (another sheet's
    points count little); what it adds where there is nothing to remove is its own noise
    (a flat sheet: 0.095 of the cloud's noise, RMS)."""
    from scipy.spatial import cKDTree

    n = len(moved)
    k = min(k, n)
    tree = cKDTree(moved)
    spacing = local_spacing(moved, tree)
    out = moved.copy()
    shift = np.zeros(n)
    for s in range(0, n, chunk):
        rows = slice(s, min(n, s + chunk))
        dist, idx = tree.query(moved[rows], k=k, workers=-1)
        off = moved[idx] - moved[rows, None]
        normal = _pca_normals(off[:, : min(16, k)], np.ones((len(idx), min(16, k))))
        height = np.einsum("bkc,bc->bk", off, normal)
        sp = spacing[rows, None]
        w = np.exp(-0.5 * (dist / (radius * sp)) ** 2 - 0.5 * (height / (thickness * sp)) ** 2)
        along = np.einsum("bkc,bc->bk", raw[idx] - moved[idx], normal)
        shift[rows] = (w * along).sum(1) / w.sum(1)
        out[rows] += shift[rows, None] * normal
    return RemovedOffset(out, float(np.median(np.abs(shift))))


def local_spacing(points: np.ndarray, tree=None, k: int = 8) -> np.ndarray:
    """``(N,)`` typical distance between neighbouring samples: the median distance to the ``k``
    nearest other points."""
    from scipy.spatial import cKDTree

    tree = tree or cKDTree(points)
    k = min(k, len(points) - 1)
    dk, _ = tree.query(points, k=k + 1, workers=-1)
    return np.median(dk[:, 1:], axis=1)


def close_layers(
    points: np.ndarray,
    tree,
    normals: np.ndarray,
    spacing: np.ndarray,
    noise: float = 0.0,
    within: float = 5.0,
    n_samples: int = 4000,
    seed: int = 0,
) -> float:
    """Share of the samples with another sheet of samples right above or below them: a sample
    between 1.5 and ``within`` local spacings (plus 3 noise deviations) off along the normal and
    less than 2 spacings across it, among the 64 nearest (garment layers, thin plates, parts that
    nearly touch). Curvature cannot put a neighbour that far off so close across (it would take a
    radius under 1.4 spacings). Estimated on ``n_samples`` random samples."""
    n = len(points)
    rng = np.random.default_rng(seed)
    idx = rng.choice(n, min(n_samples, n), replace=False)
    _, ii = tree.query(points[idx], k=min(64, n), workers=-1)
    off = points[ii] - points[idx, None]
    height = np.abs(np.einsum("bkc,bc->bk", off, normals[idx]))
    across = np.sqrt(np.maximum((off**2).sum(2) - height**2, 0.0))
    s = spacing[idx, None]
    layered = (height > 1.5 * s + 3 * noise) & (height < within * s + 3 * noise) & (across < 2 * s)
    return float(layered.any(1).mean())


def fit_patches(
    points: np.ndarray,
    tree,
    neighbors,
    kernel: float = 0.5,
    floor=None,
    degree=2,
    chunk: int = 4000,
    creases: float = 0.0,
) -> Patches:
    """Robust local quadrics (see :class:`Patches`) around every point of ``points : (N, 3)`` over
    its ``neighbors`` nearest points (:func:`_fit_quadrics`; ``degree`` 1 fits planes; both one
    number, or ``(N,)`` per point, :func:`local_patch_sizes`); ``floor : (N,)`` bounds the
    residual scale from below (the noise). ``chunk`` points at a time: their ``(chunk, K)``
    temporaries stay in cache (a 10k noisy cloud: 0.85 s against 1.15 s at 20000 when the fits
    still built ``(chunk, K, 6)`` design matrices; the same patches). ``creases`` above 0: patches
    get edges where their reach holds another face or layer, and those astride a sharp edge are
    fitted again to one face (:func:`_refit_creases`, ``PointSetConfig.creases``)."""
    n = len(points)
    floor = np.zeros(n) if floor is None else np.broadcast_to(np.asarray(floor, np.float64), (n,))
    sizes = np.broadcast_to(np.asarray(neighbors, np.int64), (n,))
    degrees = np.broadcast_to(np.asarray(degree, np.int64), (n,))
    edges = creases > 0
    patches = Patches(
        np.ascontiguousarray(points, np.float64),
        np.zeros((n, 3, 3), np.float32),
        np.zeros((n, 6), np.float32),
        np.zeros(n),
        np.zeros(n),
        np.full(n, np.inf) if edges else None,
        np.zeros((n, 2)) if edges else None,
    )

    def fit_batch(job: tuple[np.ndarray, int, int]) -> None:
        at, k, deg = job
        dd, ii = _patch_neighbors(tree, points[at], k, n)
        _store(
            patches, at, _fit_quadrics(points[ii] - points[at, None], dd, kernel, floor[at], deg, size=k, edges=edges)
        )

    jobs = []
    for group, k, deg in _groups(np.ones(n, bool), sizes, degrees, n):
        jobs += [(group[s : s + chunk], k, deg) for s in range(0, len(group), chunk)]
    in_threads(fit_batch, jobs)
    if edges:
        _refit_creases(patches, tree, sizes, degrees, kernel, floor, creases)
    return patches


def _store(patches: Patches, at: np.ndarray, fit: "_QuadricFits") -> None:
    """Rows ``at`` of ``patches`` from ``fit``, back from support widths to cloud units (each job
    of :func:`fit_patches` writes only its own rows)."""
    h = fit.support
    ones = np.ones_like(h)
    patches.coeffs[at] = fit.coeffs * np.stack([h, ones, ones, 1 / h, 1 / h, 1 / h], 1)
    patches.frames[at] = fit.frames
    patches.support[at] = h
    patches.residual[at] = fit.scale * h
    if patches.edge is not None:
        patches.edge[at] = fit.edge * h
        patches.direction[at] = fit.direction


def _refit_creases(patches: Patches, tree, sizes, degrees, kernel: float, floor: np.ndarray, ratio: float) -> None:
    """Patches at a crease fitted to one face and ended at the edge, in place.

    A centre within a spacing or so of a sharp edge has both faces among its neighbours, and the
    robust fit, whose residual scale is the median over all of them, settles on a tilted
    compromise (cube_no_bottom's 10k cloud: normals 16-24 degrees off within half a spacing of its
    edges, residuals 0.4-0.5 spacings), which rounds the edge off. A patch whose residual exceeds
    ``ratio`` times its noise floor starts again from the tangent plane of its nearest neighbour
    whose own patch is clean (within the ratio) and on whose plane the centre lies, with residual
    weights of the floor's width: it then fits one face. A face fitted that way would go on past
    the edge, so it ends where its samples do (:attr:`Patches.edge`, :func:`_edge`), as does every
    patch of :func:`fit_patches` with samples of another face or layer in its reach. Patches with
    no such neighbour stay as they were, and so do those whose face holds more than
    ``CREASE_FACE`` of their tangential weight: on a clean cloud the floor is so low that curvature
    alone lifts a residual over the ratio, and such a patch straddles no edge (its face takes in
    nearly all of its samples: 0.94 at the median of the refits on demosthenes_scan's 10k cloud,
    0.69 on cube_no_bottom's). Over the training and validation meshes' 3k, 10k and 10k-o1 clouds,
    against no crease patches: CD 0.977x (geometric mean) with every refit kept, 0.972x with
    these left alone (0.980x at 0.7), NC +0.0009 / +0.0011, the worst cloud 1.25x / 1.18x
    (wingnut 10k)."""
    points, n = patches.centers, len(patches.centers)
    fl = np.maximum(floor, 1e-3 * patches.support)
    bad = patches.residual > ratio * fl
    if not bad.any():
        return
    normals = patches.frames[:, 2].astype(np.float64)
    heights = patches.coeffs[:, 0].astype(np.float64)  # each patch's plane over its centre
    for at, k, deg in _groups(bad, sizes, degrees, n):
        dd, ii = _patch_neighbors(tree, points[at], k, n)
        off = points[ii] - points[at, None]  # neighbour - centre
        over = heights[ii] - np.einsum("bkc,bkc->bk", off, normals[ii])  # each neighbour's plane over the centre
        ok = ~bad[ii] & (np.abs(over) <= _ROBUST * fl[ii])
        rows = np.flatnonzero(ok.any(1))
        if not len(rows):
            continue
        first = np.argmax(ok[rows], axis=1)  # the nearest such neighbour
        start = (normals[ii[rows, first]], over[rows, first])
        fit = _fit_quadrics(off[rows], dd[rows], kernel, floor[at[rows]], deg, size=k, start=start)
        crease = np.flatnonzero(fit.face <= CREASE_FACE)
        _store(patches, at[rows[crease]], fit.rows(crease))


def _patch_neighbors(tree, centers: np.ndarray, k: int, n: int):
    """Distances and ids ``(B, K)`` of the points a patch of ``k`` neighbours around each of
    ``centers`` is fitted over: half as many again plus 8, for the tangential weights to choose
    from (:func:`_fit_quadrics`)."""
    return tree.query(centers, k=min(int(round(1.5 * k)) + 8, n), workers=-1)


def _groups(mask: np.ndarray, sizes, degrees, n: int):
    """``(rows, neighbours, degree)`` of the points in ``mask`` that share a patch size and degree."""
    for size, deg in np.unique(np.stack([sizes[mask], degrees[mask]], 1), axis=0):
        yield np.flatnonzero(mask & (sizes == size) & (degrees == deg)), min(int(size), n), int(deg)


@dataclass
class PatchSize:
    """The patch chosen by leave-one-out cross-validation (:func:`select_patch_size`): ``neighbors``
    and ``degree`` (2: quadrics, 1: planes), and for each ``(neighbors, degree)`` the RMS distance of
    held-out points to the patch fitted to their neighbours (``loo_rms``, cloud units); ``noise``
    is the smallest of those (an upper bound of the noise's standard deviation)."""

    neighbors: int
    degree: int
    loo_rms: dict
    noise: float


def select_patch_size(
    points: np.ndarray,
    tree,
    candidates=PATCH_SIZES,
    degrees=(2, 1),
    kernel: float = 0.5,
    floor=None,
    n_centers: int = 3000,
    trim: float = 0.05,
    seed: int = 0,
) -> PatchSize:
    """Pick the patch size and degree by leave-one-out cross-validation: fit the patch of
    ``n_centers`` random points without the point itself and measure how far the point lies from
    it. Noise adds the same amount to every candidate, so the smallest error (trimmed RMS, the
    worst ``trim`` dropped) marks the best trade between averaging noise (large patches, planes)
    and following detail (small patches, quadrics).

    Errors under ``1e-12`` of the cloud's extent are rounding, not fit: candidates that small
    are equal, the fewest neighbours and the lowest degree win (an exactly planar sheet, as CAD
    parts are sampled, takes the first size instead of whichever rounding favoured)."""
    rng = np.random.default_rng(seed)
    n = len(points)
    cand = sorted(int(k) for k in candidates if k + 1 <= n)
    idx = rng.choice(n, min(n_centers, n), replace=False)
    fl = np.zeros(len(idx)) if floor is None else np.broadcast_to(np.asarray(floor, np.float64), (n,))[idx]
    held = _HeldOut(points, tree, idx, cand[0], cand[-1])  # queried further as sizes grow; most clouds stop early
    exact = 1e-12 * float(np.ptp(points, axis=0).max())
    loo: dict = {}
    worse = 0
    for k in cand:  # ascending; stops once two sizes in a row did not improve
        before = max(min(loo.values(), default=np.inf), exact)
        held.reach(k)
        errors = in_threads(lambda degree: np.sort(held.heights(k, degree, kernel, fl)), degrees)
        for degree, err in zip(degrees, errors):
            loo[(k, degree)] = float(np.sqrt(np.mean(err[: max(1, int(round(len(err) * (1 - trim))))] ** 2)))
        worse = worse + 1 if max(min(loo.values()), exact) >= before else 0
        if worse >= 2:
            break
    best = min(loo, key=lambda c: (max(loo[c], exact), c))
    return PatchSize(best[0], best[1], loo, loo[best])


@dataclass
class LocalPatchSizes:
    """Patch size and degree per point (:func:`local_patch_sizes`): ``neighbors``, ``degree`` ``(N,)``."""

    neighbors: np.ndarray
    degree: np.ndarray


def local_patch_sizes(
    points: np.ndarray,
    tree,
    chosen: tuple[int, int],
    candidates=LOCAL_PATCH_SIZES,
    kernel: float = 0.5,
    floor=None,
    smooth: int = 24,
    n_centers: int = 4000,
    seed: int = 0,
    chunk: int = 2000,
) -> LocalPatchSizes:
    """The patch size and degree for every point: the candidate (``chosen``, the cloud's, and
    ``candidates``) whose squared leave-one-out error (see :func:`select_patch_size`) over the
    ``smooth`` nearest of ``n_centers`` random held-out points is smallest. One size for a whole
    noisy cloud averages too little where the surface is flat and too much where it bends; a
    held-out point's noise is the same for every candidate, so the comparison is paired (measured
    on 10k-point clouds with noise 0.25% of the diagonal of 12 training and validation meshes:
    the closest-point error 0.73-0.99x that of the cloud's size, scratch run). Smooth simple shapes,
    whose one large size was already right, lose (torus 1.26x, moebius_strip 1.33x); keeping the
    cloud's size unless a candidate's mean gain exceeds one standard error halved both the losses
    and the gains there (scratch run), so it is not done."""
    from scipy.spatial import cKDTree

    n = len(points)
    sizes = [tuple(chosen)] + [c for c in candidates if tuple(c) != tuple(chosen) and c[0] + 1 <= n]
    idx = np.random.default_rng(seed).choice(n, min(n_centers, n), replace=False)
    fl = np.zeros(n) if floor is None else np.broadcast_to(np.asarray(floor, np.float64), (n,))
    err = np.zeros((len(sizes), len(idx)))
    for s in range(0, len(idx), chunk):
        held = _HeldOut(points, tree, idx[s : s + chunk], max(k for k, _ in sizes))

        def heights(c: int) -> None:
            k, degree = sizes[c]
            err[c, s : s + chunk] = held.heights(k, degree, kernel, fl[idx[s : s + chunk]]) ** 2

        in_threads(heights, range(len(sizes)))
    _, near = cKDTree(points[idx]).query(points, k=min(smooth, len(idx)), workers=-1)
    near = near.reshape(n, -1)
    gain = err - err[:1]  # paired with the cloud's own size, per held-out point
    best = np.zeros(n, np.int64)
    for s in range(0, n, 65536):
        best[s : s + 65536] = gain[:, near[s : s + 65536]].mean(-1).argmin(0)
    table = np.asarray(sizes)
    return LocalPatchSizes(table[best, 0], table[best, 1])


class _HeldOut:
    """The neighbourhoods of held-out points ``idx`` for patches of ``first`` neighbours, queried
    further (:meth:`reach`) when a larger patch is wanted, up to ``largest``."""

    def __init__(self, points: np.ndarray, tree, idx: np.ndarray, first: int, largest: int | None = None):
        self.points, self.tree, self.idx = points, tree, idx
        self.most = min(_candidates(largest or first), len(points) - 1)
        self.dist, self.offsets = np.zeros((len(idx), 0)), np.zeros((len(idx), 0, 3))
        self.reach(first)

    def reach(self, largest: int) -> None:
        """Make the neighbourhoods large enough for patches of ``largest`` neighbours: queried
        again at least twice as far when they are not (their first columns stay the same). Not
        thread-safe: call it before fitting patches in threads."""
        have = self.dist.shape[1]
        if have < min(_candidates(largest), self.most):
            k = min(max(_candidates(largest), 2 * have), self.most)
            self.dist, ii = _neighbors(self.points, self.tree, self.idx, k, leave_out=True)
            self.offsets = self.points[ii] - self.points[self.idx, None]

    def heights(self, size: int, degree: int, kernel: float, floor: np.ndarray) -> np.ndarray:
        """|height| of each held-out point over the patch of its ``size`` neighbours (cloud units;
        the neighbourhoods must :meth:`reach` that far)."""
        kq = _candidates(size)
        fit = _fit_quadrics(self.offsets[:, :kq], self.dist[:, :kq], kernel, floor, degree, size=size)
        return np.abs(fit.coeffs[:, 0] * fit.support)


def _neighbors(
    points: np.ndarray, tree, idx: np.ndarray, k: int, leave_out: bool = False
) -> tuple[np.ndarray, np.ndarray]:
    """Distances and ids ``(B, k)`` of the neighbourhood of points ``idx`` for cross-validation:
    the ``k`` nearest points to the mean of each point's 8 nearest others, not to the point itself,
    whose noise would pull the neighbourhood its way and make small patches look better than they
    are (measured: at noise 0.6 spacings the 8-point plane looked best, 2.2x the error of the
    48-point one); ``leave_out`` drops the point itself."""
    _, near = tree.query(points[idx], k=min(9, len(points)), workers=-1)
    center = points[near[:, 1:]].mean(1)
    dd, ii = tree.query(center, k=min(k + int(leave_out), len(points)), workers=-1)
    if leave_out:  # drop the point itself where it appears (else the farthest)
        own = ii == idx[:, None]
        keep = ~own
        keep[~own.any(1), -1] = False
        dd, ii = dd[keep].reshape(len(idx), -1), ii[keep].reshape(len(idx), -1)
    return dd, ii


def _candidates(size: int) -> int:
    """Neighbours queried for a held-out patch of ``size`` (see :func:`_fit_quadrics`)."""
    return 2 * size + 16


@dataclass
class _QuadricFits:
    frames: np.ndarray
    coeffs: np.ndarray
    support: np.ndarray
    scale: np.ndarray
    direction: np.ndarray | None = None
    edge: np.ndarray | None = None
    face: np.ndarray | None = None
    """Fits from a ``start`` plane: the share of each patch's tangential weight within the robust cut."""

    def rows(self, at: np.ndarray) -> "_QuadricFits":
        """The fits of patches ``at``."""
        values = (getattr(self, f.name) for f in fields(self))
        return _QuadricFits(*(None if a is None else a[at] for a in values))


def _fit_quadrics(
    off: np.ndarray,
    dist: np.ndarray,
    kernel: float,
    floor: np.ndarray,
    degree: int = 2,
    size: int | None = None,
    robust: float = _ROBUST,
    iterations: int = 3,
    start: tuple[np.ndarray, np.ndarray] | None = None,
    edges: bool = False,
) -> _QuadricFits:
    """Robust quadrics for a batch: ``off : (B, K, 3)`` neighbours minus centre, ``dist : (B, K)``
    their distances (ascending), ``floor : (B,)`` least residual scale.

    Weights: a Gaussian of the tangential distance, of width ``kernel`` times the distance of the
    ``size``-th neighbour (``support``; default the last). Candidates beyond ``size`` let the
    tangential weights pick the neighbourhood: the nearest points in 3D of a noisy centre are
    biased towards its own displacement.
    The fit starts from the plane of the centre's 6 nearest neighbours (the sheet the centre lies
    on, even where another sheet is within reach), then ``iterations``
    times: residual weights ``exp(-(r / (robust * scale))^2)`` (scale: the residuals' MAD, at least
    ``floor``), the frame of the weighted principal axes, a quadric fit (``degree`` 2; 1: a plane).
    Points of a second sheet and outliers within reach so carry no weight. Coefficients and scales
    are in units of ``support``.

    ``start = (normals (B, 3), heights (B,))``: the fit starts from the plane of that normal at that
    height over the centre instead, and its residual scale stays the floor (one face of a crease:
    the median over both faces would take the other in), reported as the median over the points
    within the robust cut (:func:`_refit_creases`). With ``start`` or ``edges``, the fits also
    say where their faces end (:func:`_edge`)."""
    b, k = dist.shape
    h = dist[:, min(size or k, k) - 1] * kernel + 1e-12
    off = off / h[:, None, None]
    w = np.exp(-((dist / h[:, None]) ** 2))
    fl = np.maximum(floor / h, 1e-3)[:, None]
    if start is None:
        R = _frames(_pca_normals(off[:, : min(6, k)], np.ones((b, min(6, k)))))
        r = (off @ R[:, 2, :, None])[..., 0]
        r = r - np.median(r[:, : min(6, k)], axis=1, keepdims=True)  # through the 6 nearest, not the (noisy) centre
    else:
        R = _frames(start[0])
        r = (off @ R[:, 2, :, None])[..., 0] - (start[1] / h)[:, None]
    ridge = np.array([0.0, 0.0, 0.0, 1e-3, 1e-3, 1e-3]) if degree == 2 else np.array([0.0, 0.0, 0.0, 1e6, 1e6, 1e6])
    for _ in range(iterations):
        scale = fl if start is not None else np.maximum(1.4826 * np.median(np.abs(r), axis=1, keepdims=True), fl)
        by_residual = np.exp(-np.minimum((r / (robust * scale)) ** 2, 60.0))
        R = _frames(_oriented_like(_pca_normals(off, w * by_residual), R[:, 2]))
        loc = off @ R.transpose(0, 2, 1)
        u, v, z = (np.ascontiguousarray(loc[..., i]) for i in range(3))
        # weights by tangential distance: a 3D distance favours neighbours displaced like the centre
        w = np.exp(-(u * u + v * v))
        wr = w * by_residual
        c = _weighted_quadric_lstsq(u, v, z, wr, ridge[None] * wr.sum(1, keepdims=True))
        r = z - _quadric_heights(c[:, None], u, v)
    if start is None and not edges:  # cross-validation's fits: no edges to find
        return _QuadricFits(R, c, h, np.maximum(1.4826 * np.median(np.abs(r), axis=1), 1e-3))
    scale = fl if start is not None else np.maximum(1.4826 * np.median(np.abs(r), axis=1, keepdims=True), fl)
    inlier = np.abs(r) <= robust * scale
    direction, edge = _edge(u, v, w, inlier)
    face = None
    if start is not None:  # the scale of the face it fitted: the residuals within the cut
        face = (w * inlier).sum(1) / w.sum(1)
        r = np.where(inlier, r, np.nan)
        r[~inlier.any(1)] = 0.0  # nothing within the cut: the floor
    return _QuadricFits(R, c, h, np.maximum(1.4826 * np.nanmedian(np.abs(r), axis=1), 1e-3), direction, edge, face)


def _edge(u, v, w, inlier) -> tuple[np.ndarray, np.ndarray]:
    """Where a patch's face ends (:attr:`Patches.edge`): when samples of some tangential weight
    (above ``CREASE_WEIGHT``, ``CREASE_SHARE`` of it) lie outside the robust cut on one side
    (another face of a crease; their weighted mean at least ``CREASE_OFFSET`` support widths off
    the centre, where another layer above or below would be all round), the unit tangent
    direction ``(B, 2)`` toward them and the largest coordinate along it of the samples within
    the cut, plus ``CREASE_MARGIN`` support widths; else inf. A layer lying all round would cut
    the patch short in whichever direction its samples happened to lean: dragon_stanford_20k's
    10k cloud then lost its closed mesh."""
    heavy = w > CREASE_WEIGHT
    wo = w * (~inlier & heavy)
    toward = np.stack([(wo * u).sum(1), (wo * v).sum(1)], 1)
    length = np.linalg.norm(toward, axis=1)
    sided = (wo.sum(1) > CREASE_SHARE * w.sum(1)) & (length > CREASE_OFFSET * wo.sum(1)) & (length > 1e-9)
    direction = np.where(sided[:, None], toward / np.maximum(length, 1e-300)[:, None], [[1.0, 0.0]])
    along = u * direction[:, :1] + v * direction[:, 1:]
    edge = np.where(inlier & heavy, along, -np.inf).max(1) + CREASE_MARGIN
    return direction, np.where(sided, np.maximum(edge, 0.0), np.inf)


def _oriented_like(normals: np.ndarray, reference: np.ndarray) -> np.ndarray:
    """``normals`` flipped where they point away from ``reference`` (both ``(B, 3)``)."""
    return normals * np.where((normals * reference).sum(1, keepdims=True) < 0, -1.0, 1.0)


def sample_density(points: np.ndarray, tree, kernels: np.ndarray, x: np.ndarray, k: int = 16, gradient: bool = True):
    """Gaussian density of the samples at ``x : (M, 3)`` with per-sample widths ``kernels : (N,)``:
    ``(density (M,), gradient (M, 3), neighbour ids (M, k))``; the gradient is None when not
    asked for (most of the cost)."""
    k = min(k, len(points))
    dd, ii = tree.query(x, k=k, workers=-1)
    dd, ii = dd.reshape(len(x), k), ii.reshape(len(x), k)
    h = kernels[ii]
    w = np.exp(-np.minimum((dd / h) ** 2, 60.0))
    grad = (w[..., None] * -2.0 * (x[:, None] - points[ii]) / (h[..., None] ** 2)).sum(1) if gradient else None
    return w.sum(1), grad, ii


@dataclass
class _Feet:
    """One blend round's feet: the patches ``idx : (M, K)``, foot minus query on each ``rel : (M, K,
    3)`` and whether a sample lies near each foot ``sampled : (M, K)`` (None: not tested)."""

    idx: np.ndarray
    rel: torch.Tensor
    sampled: torch.Tensor | None


class PointSetSurface:
    """Closest points on the surface sampled by a cloud (see the module docstring).

    Build with :meth:`build`; :meth:`query` has the interface of the mesh oracles, so a band grid
    is collocated from it exactly as from a mesh."""

    def __init__(
        self,
        points: np.ndarray,
        patches: Patches,
        spacing: np.ndarray,
        density_ref: np.ndarray,
        config: PointSetConfig,
        summary: CloudSummary,
    ):
        from scipy.spatial import cKDTree

        self.points = points
        self.tree = cKDTree(points)
        self.patches = patches
        self.spacing = spacing
        self.density_ref = density_ref
        self.config = config
        self.summary = summary
        self.vertices, self.faces = points, None  # oracle interface
        self._area_spacing = None
        self.progress = None
        """Called as ``progress(done, total)`` while :meth:`project` works through its chunks."""
        self._frames = torch.from_numpy(patches.frames)
        self._coeffs = torch.from_numpy(patches.coeffs)
        # float32 copies gathered by every projection
        self._support = torch.from_numpy(patches.support.astype(np.float32))
        self._residual = torch.from_numpy(patches.residual.astype(np.float32))
        self._spacing = torch.from_numpy(spacing.astype(np.float32))
        bounded = patches.edge is not None and bool(np.isfinite(patches.edge).any())
        self._edge = torch.from_numpy(patches.edge.astype(np.float32)) if bounded else None
        self._direction = torch.from_numpy(patches.direction.astype(np.float32)) if bounded else None

    @classmethod
    def build(
        cls, points, config: PointSetConfig = PointSetConfig(), project=None, project_above: float = 0.0
    ) -> "PointSetSurface":
        """Clean up ``points : (N, 3)`` and fit the patches; raises ValueError on clouds that
        cannot define a surface (fewer than 10 distinct points, or all on one line).

        ``project``, a function ``(M, 3) -> (M, 3)`` (e.g. a learned projection onto the
        surface, :mod:`deepcsp.fields.local`), moves the cleaned points before the patches are
        fitted, when the cloud's noise is at least ``project_above`` sample spacings (if above 0, not
        on a flat sheet, :func:`_sheet`); a noisy cloud it does not move is projected onto its own
        surface (``config.self_project``), or to the mean of that and ``project``
        (``config.self_project_blend``)."""
        pts = check_points(points, "cloud")
        n_input = len(pts)
        pts, n_repeated, n_outliers = _cleaned(pts, config)
        tree, spacing, size = _scale_and_noise(pts, config)
        raw = _Found(n_input, n_outliers, size.noise, n_repeated=n_repeated)
        found = raw
        sheet = project_above > 0 and _sheet(size)  # a threshold means automatic: sheets are left as they are
        if project is not None and size.noise >= project_above * float(np.median(spacing)) and not sheet:
            found = replace(raw, projected=True)
        elif config.self_project and _noisy(size, spacing):
            own = cls._assemble(pts, tree, spacing, size, config, raw).project  # the raw points' own surface
            blend = project is not None and config.self_project_blend
            project = _mean_of(own, project) if blend else own
            found = replace(raw, projected=blend, self_projected=True)
        if found is not raw:
            moved = np.asarray(project(pts), np.float64)
            if moved.shape != pts.shape:
                raise ValueError(f"the projection returned {moved.shape} points for {pts.shape}")
            if config.offset_radius > 0:
                removed = remove_offset(pts, moved, config.offset_radius)
                moved, found = removed.points, replace(found, offset=removed.median)
            pts = _check_cloud(np.unique(moved, axis=0))
            tree, spacing, size = _scale_and_noise(pts, config)
        return cls._assemble(pts, tree, spacing, size, config, found)

    @classmethod
    def _assemble(
        cls, pts, tree, spacing, size: PatchSize, config: PointSetConfig, found: "_Found"
    ) -> "PointSetSurface":
        """The surface of cleaned points ``pts`` with their KD-tree, spacing and patch size: patches
        (sized per point on a noisy cloud that was not projected), density reference, summary."""
        neighbors, degree = size.neighbors, size.degree
        moved = found.projected or found.self_projected
        if config.local_patches and not moved and _noisy(size, spacing):
            local = local_patch_sizes(
                pts, tree, (neighbors, degree), kernel=config.kernel, floor=0.1 * spacing, smooth=config.local_patches
            )
            neighbors, degree = local.neighbors, local.degree
        patches = fit_patches(
            pts,
            tree,
            neighbors,
            config.kernel,
            floor=np.maximum(1.5 * size.noise, 0.1 * spacing),
            degree=degree,
            creases=config.creases if _sharp(config, len(pts), moved or _noisy(size, spacing)) else 0.0,
        )
        density_ref = _density_reference(pts, tree, config.density_kernel * spacing)
        summary = CloudSummary(
            found.n_input,
            len(pts),
            found.n_outliers,
            float(np.median(spacing)),
            found.input_noise,
            size.noise,
            size.neighbors,
            size.degree,
            found.projected,
            close_layers(pts, tree, patches.frames[:, 2], spacing, size.noise),
            found.offset,
            float(np.mean((neighbors != size.neighbors) | (degree != size.degree))),
            found.self_projected,
            found.n_repeated,
        )
        return cls(pts, patches, spacing, density_ref, config, summary)

    def normals_near(self, points: np.ndarray) -> np.ndarray:
        """``(M, 3)`` unit normals (unoriented) of the patches of the cleaned points nearest to
        ``points : (M, 3)``."""
        _, nearest = self.tree.query(np.asarray(points, np.float64), k=1, workers=-1)
        return self.patches.frames[np.asarray(nearest, np.int64), 2]

    def query(self, points, chunk: int = 65536) -> ClosestPoints:
        """Closest points on the surface for ``points : (M, 3)`` (the mesh oracles' interface;
        ``face_ids`` are the nearest sample of each closest point)."""
        q = check_points(points)
        cp = self.project(q, chunk)
        _, nearest = self.tree.query(cp, k=1, workers=-1) if len(cp) else (None, np.zeros(0, np.int64))
        return ClosestPoints(cp, np.linalg.norm(q - cp, axis=1), np.asarray(nearest, np.int64), None)

    def may_lie_within(self, points: np.ndarray, distance: float) -> np.ndarray:
        """``(M,)`` bool, False where ``points`` lie further than ``distance`` from the surface, by
        two cheap tests: every surface point has a sample within about two spacings (plus the
        noise), so a point whose nearest sample is further than ``distance`` plus that reach is
        far; then the distance to the patch of the nearest sample (close to the blended surface
        near it) must not exceed ``distance`` by more than a quarter spacing plus the noise."""
        s90 = float(np.quantile(self.spacing, 0.9))
        reach = distance + 2.0 * s90 + 3.0 * self.summary.noise
        near = np.flatnonzero(self._blocks_within(points, reach))
        d, nearest = self.tree.query(points[near], k=1, workers=-1, distance_upper_bound=reach)
        found = np.isfinite(d)
        near, nearest = near[found], nearest[found]
        with _flush_denormals():
            approx = (
                np.concatenate(
                    [
                        self._nearest_patch_distance(points[near[i : i + 65536]], nearest[i : i + 65536])
                        for i in range(0, len(near), 65536)
                    ]
                )
                if len(near)
                else np.zeros(0)
            )
        keep = np.zeros(len(points), bool)
        keep[near[approx <= distance + 0.25 * s90 + 3.0 * self.summary.noise]] = True
        return keep

    def _blocks_within(self, points: np.ndarray, reach: float) -> np.ndarray:
        """``(M,)`` bool, False only where no sample lies within ``reach`` of ``points : (M, 3)``:
        the points are put in blocks half ``reach`` wide, and a block whose centre has no sample
        within ``reach`` plus its half diagonal holds none that has. A KD query bounded by ``reach``
        is slowest for the points it finds nothing for, and at 100k points most of a band grid's
        candidate vertices are such points (65% on mountain_terrain, 4.0 of the 5.3 s its queries
        took); one query a block answers for ~9 of them."""
        size = 0.5 * reach
        if len(points) == 0 or size <= 0:
            return np.ones(len(points), bool)
        origin = points.min(0)
        cells = np.floor((points - origin) / size).astype(np.int64)
        dims = tuple(cells.max(0) + 1)
        flat = np.ravel_multi_index(cells.T, dims)
        blocks = unique(flat)
        centres = (np.stack(np.unravel_index(blocks, dims), 1) + 0.5) * size + origin
        slack = 1e-9 * (1.0 + float(np.abs(points).max()))  # the floors' rounding
        d, _ = self.tree.query(centres, k=1, workers=-1, distance_upper_bound=reach + 0.5 * np.sqrt(3) * size + slack)
        return np.isfinite(d)[np.searchsorted(blocks, flat)]

    def _nearest_patch_distance(self, q: np.ndarray, nearest: np.ndarray) -> np.ndarray:
        """``(M,)`` distance of ``q`` to the patch of its nearest sample ``nearest : (M,)`` (an
        approximation of the distance to the surface)."""
        idx = nearest.reshape(len(q), 1)
        p = self.patches
        d = torch.from_numpy((q[:, None] - p.centers[idx]).astype(np.float32))
        ti = torch.from_numpy(idx)
        rel = _project_on_quadrics(
            d,
            gather_rows(self._frames, ti),
            gather_rows(self._coeffs, ti),
            torch.from_numpy(2.5 * p.support[idx].astype(np.float32)),
            iterations=2,
            edge=self._edges(ti),
        )
        return rel[:, 0].norm(dim=1).double().numpy()

    def project(self, points: np.ndarray, chunk: int = 65536, clamp: bool = True) -> np.ndarray:
        """``(M, 3)`` closest surface points of ``points : (M, 3)``. Points further than ``far``
        spacings from every sample take their nearest sample (the surface is within a spacing of
        it, a small error at that distance). ``clamp=False``: foot points beyond the samples' edge
        stay on the fitted patches' continuation instead of moving back onto the edge."""
        out = np.empty_like(points)
        starts = range(0, len(points), chunk)
        if self.progress is not None and len(points):
            self.progress(0, len(points))  # the bar starts its clock now, not when the first chunk is done
        workers = min(PROJECT_THREADS, len(starts)) or 1
        with _torch_threads_shared(workers), ThreadPoolExecutor(workers) as pool:
            work = pool.map(lambda s: self._project_chunk(points[s : s + chunk], out[s : s + chunk], clamp), starts)
            for s, _ in zip(starts, work):
                if self.progress is not None:
                    self.progress(min(s + chunk, len(points)), len(points))
        return out

    def _project_chunk(self, q: np.ndarray, out: np.ndarray, clamp: bool) -> None:
        """:meth:`_closest` of one chunk ``q`` written to ``out`` (chunks run in threads, each
        flushing its own float32 denormals)."""
        with _flush_denormals():
            out[:] = self._closest(q, clamp)

    def _closest(self, q: np.ndarray, clamp: bool) -> np.ndarray:
        """:meth:`project` of ``q : (M, 3)``; the samples nearest to each point are found once, for
        the far test and the first round."""
        m = min(self.config.blend_neighbors, len(self.points))
        dist, idx = self.tree.query(q, k=m, workers=-1)
        dist, idx = dist.reshape(len(q), m), idx.reshape(len(q), m)
        near = dist[:, 0] <= self.config.far * self.spacing[idx[:, 0]]
        out = self.points[idx[:, 0]]
        if not near.any():
            return out
        qn = q[near]
        x, feet = self._blend_round(qn, qn, idx[near])
        for _ in range(max(1, self.config.rounds) - 1):
            x, feet = self._blend_round(qn, x, previous=feet)
        if clamp and self.config.boundary_density > 0:
            x = self._clamp_to_boundary(x)
        out[near] = x
        return out

    def _edges(self, ti: torch.Tensor):
        """``(edge, direction)`` of the patches ``ti`` (:attr:`Patches.edge`), or None where no patch has one."""
        if self._edge is None:
            return None
        return gather_rows(self._edge, ti), gather_rows(self._direction, ti)

    def _blend(self, q: np.ndarray, x: np.ndarray, idx: np.ndarray | None = None) -> np.ndarray:
        """Project ``q`` onto the patches around foot points ``x`` and blend those on the nearest
        sheet; ``idx : (M, blend_neighbors)``: the samples nearest to ``x`` when already known."""
        return self._blend_round(q, x, idx)[0]

    def _blend_round(
        self, q: np.ndarray, x: np.ndarray, idx: np.ndarray | None = None, previous: _Feet | None = None
    ) -> tuple[np.ndarray, _Feet]:
        """:meth:`_blend`, and the feet it blended, which the next round over the same ``q`` takes
        as ``previous``: a row whose patches are those of the round before (in any order) has
        their feet already."""
        m = min(self.config.blend_neighbors, len(self.points))
        if idx is None:
            _, idx = self.tree.query(x, k=m, workers=-1)
            idx = idx.reshape(len(x), m)
        feet = self._feet(q, idx, previous)
        centers = np.take(self.patches.centers, idx, axis=0)
        near = np.linalg.norm((q if x is q else x)[:, None] - centers, axis=2)
        ti = torch.from_numpy(idx)
        support = gather_rows(self._support, ti)
        rel = feet.rel
        w = torch.exp(-((torch.from_numpy(near.astype(np.float32)) / support) ** 2).clamp(max=60.0))  # no denormals
        dist = rel.norm(dim=2)
        if feet.sampled is not None:
            w = torch.where(feet.sampled.any(1, keepdim=True), w * feet.sampled, w)
        dmin = torch.where(w > 1e-8, dist, torch.full_like(dist, float("inf"))).min(1, keepdim=True).values
        residual, spacing = gather_rows(self._residual, ti), gather_rows(self._spacing, ti)
        tol = 3.0 * residual.max(1, keepdim=True).values + 0.5 * spacing.mean(1, keepdim=True)
        w = w * (dist <= dmin + tol)
        wsum = w.sum(1, keepdim=True)
        blended = (w[..., None] * rel).sum(1) / wsum.clamp_min(1e-30)
        blended = torch.where(wsum > 1e-12, blended, rel[:, 0])  # no valid patch: the nearest one
        return q + blended.double().numpy(), feet

    def _feet(self, q: np.ndarray, idx: np.ndarray, previous: _Feet | None) -> _Feet:
        """The feet of ``q : (M, 3)`` on the patches ``idx : (M, K)``: taken from ``previous`` (the
        round before, same ``q``) where a row has the same patches, in their new order, and
        projected for the other rows (the same values either way)."""
        tested = self._edge is not None and self.config.foot_samples > 0
        rel = torch.empty(len(q), idx.shape[1], 3)
        sampled = torch.empty(len(q), idx.shape[1], dtype=torch.bool) if tested else None
        reuse = np.zeros(len(q), bool)
        if previous is not None:
            was, now = np.argsort(previous.idx, axis=1), np.argsort(idx, axis=1)
            reuse = (np.take_along_axis(previous.idx, was, 1) == np.take_along_axis(idx, now, 1)).all(1)
            rows = torch.from_numpy(np.flatnonzero(reuse))
            order = torch.from_numpy(np.take_along_axis(was, np.argsort(now, axis=1), 1)[reuse])  # previous columns
            rel[rows] = torch.gather(previous.rel[rows], 1, order[..., None].expand(-1, -1, 3))
            if tested:
                sampled[rows] = torch.gather(previous.sampled[rows], 1, order)
        fresh = np.flatnonzero(~reuse)
        part = torch.from_numpy(fresh)
        rel[part] = self._project_feet(q[fresh], idx[fresh])
        if tested:
            sampled[part] = self._feet_near_samples(q[fresh], rel[part], torch.from_numpy(idx[fresh]))
        return _Feet(idx, rel, sampled)

    def _project_feet(self, q: np.ndarray, idx: np.ndarray) -> torch.Tensor:
        """``(M, K, 3)`` foot point minus query of ``q : (M, 3)`` on each of the patches ``idx : (M, K)``."""
        d = torch.from_numpy((q[:, None] - np.take(self.patches.centers, idx, axis=0)).astype(np.float32))
        ti = torch.from_numpy(idx)
        support = gather_rows(self._support, ti)
        return torch.cat(  # in row blocks that stay in cache (the same values)
            [
                _project_on_quadrics(
                    d[r],
                    gather_rows(self._frames, ti[r]),
                    gather_rows(self._coeffs, ti[r]),
                    2.5 * support[r],
                    edge=self._edges(ti[r]),
                )
                for r in (slice(i, i + QUADRIC_ROWS) for i in range(0, max(len(d), 1), QUADRIC_ROWS))
            ]
        )

    def _feet_near_samples(self, q: np.ndarray, rel: torch.Tensor, ti: torch.Tensor) -> torch.Tensor:
        """``(M, K)`` bool: whether the foot ``q + rel`` on each patch ``ti`` has a sample within
        ``foot_samples`` of the patch's spacings (a foot without one loses the blend wherever another
        foot has one). Most feet (97% on spot's 10k cloud) have one of the samples ``ti`` that
        close, found in float32 relative to ``q`` with a margin for its rounding; only the others
        ask the KD tree. The answer is the tree's for every foot: its nearest sample is never
        further than those."""
        reach = self.config.foot_samples * gather_rows(self._spacing, ti)
        off = torch.from_numpy((np.take(self.points, ti.numpy(), axis=0) - q[:, None]).astype(np.float32))
        gap = torch.cdist(rel, off, compute_mode="donot_use_mm_for_euclid_dist").min(2).values
        rounding = 1e-5 * (rel.norm(dim=2) + off.norm(dim=2).max(1, keepdim=True).values)
        near = gap + rounding <= reach
        rest = ~near
        if rest.any():
            row, col = rest.nonzero(as_tuple=True)
            feet = q[row.numpy()] + rel[row, col].double().numpy()
            bound = 1.001 * float(reach.max()) + 1e-12  # beyond it the tree reports inf: not near
            gap, _ = self.tree.query(feet, k=1, workers=-1, distance_upper_bound=bound)
            near[rest] = torch.from_numpy(gap.astype(np.float32)) <= reach[rest]
        return near

    def _density(self, x: np.ndarray, gradient: bool = True):
        """:func:`sample_density` at ``x : (M, 3)`` with this surface's kernels, and the interior
        density there ``(M,)`` (the median reference of the 8 nearest samples)."""
        rho, grad, ii = sample_density(
            self.points, self.tree, self.config.density_kernel * self.spacing, x, gradient=gradient
        )
        return rho, grad, ii, np.median(self.density_ref[ii[:, :8]], axis=1)

    def _density_ratio(self, x: np.ndarray):
        """Sample density at ``x : (M, 3)`` over its interior value there, the unit tangential
        direction of increasing density ``(M, 3)`` and the density's tangential slope ``(M,)``."""
        rho, grad, ii, ref = self._density(x)
        n = self.patches.frames[ii[:, 0], 2].astype(np.float64)
        g = grad - (grad * n).sum(1, keepdims=True) * n
        slope = np.linalg.norm(g, axis=1)
        return rho / ref, g / np.maximum(slope[:, None], 1e-300), slope / ref, ii[:, 0]

    def _angular_gap(self, x: np.ndarray, nearest: np.ndarray, k: int = 16) -> np.ndarray:
        """``(M,)`` largest angle (radians) between consecutive directions from ``x`` to its ``k``
        nearest samples in the tangent plane of sample ``nearest``: near pi or more beyond an edge,
        small inside a sampling gap (samples all around)."""
        k = min(k, len(self.points))
        _, ii = self.tree.query(x, k=k, workers=-1)
        off = self.points[ii.reshape(len(x), k)] - x[:, None]
        frames = self.patches.frames[nearest].astype(np.float64)
        angles = np.sort(np.arctan2((off * frames[:, None, 1]).sum(-1), (off * frames[:, None, 0]).sum(-1)), axis=1)
        return np.diff(np.concatenate([angles, angles[:, :1] + 2 * np.pi], 1), axis=1).max(1)

    def _in_hole(self, x: np.ndarray, outward: np.ndarray, nearest: np.ndarray, empty: float = 1.75) -> np.ndarray:
        """``(M,)`` bool: ``x`` lies in a disc without samples of radius ``empty`` spacings or more,
        larger than any gap of random sampling (measured: at most 1.55 spacings among 3,000-10,000
        uniform samples, 1.7 among 100,000), so a hole the cloud has, not one it missed: probed at
        ``x`` and at half and one spacing further ``outward`` (away from the samples). The spacing
        is the median over the 32 samples nearest to sample ``nearest`` (a rim sample's own is
        inflated by the hole)."""
        if self._area_spacing is None:
            _, ii = self.tree.query(self.points, k=min(32, len(self.points)), workers=-1)
            self._area_spacing = np.median(self.spacing[ii], axis=1)
        spacing = self._area_spacing[nearest]
        hole = np.zeros(len(x), bool)
        for t in (0.0, 0.5, 1.0):
            d, _ = self.tree.query(x + t * spacing[:, None] * outward, k=1, workers=-1)
            hole |= (d > empty * spacing) & (t * spacing < d - 0.5 * spacing)
        return hole

    def _clamp_to_boundary(self, x: np.ndarray, steps: int = 3) -> np.ndarray:
        """Move foot points beyond the samples' edge back along the surface onto it.

        A foot point is beyond an edge when the density ratio (:meth:`_density_ratio`) is below
        ``boundary_density`` and its nearest samples leave an angular gap over 150 degrees (a
        sampling gap inside the surface has samples all around; a true edge has none outside) or
        it lies in a hole wider than sampling gaps are (:meth:`_in_hole`), or when the ratio is
        below half of ``boundary_density`` anyway. It then moves to the ``boundary_density`` level by
        Newton steps along the tangential gradient, each followed by a projection."""
        theta = self.config.boundary_density
        rho, _, _, ref = self._density(x, gradient=False)
        out = rho / ref < theta  # the ratio, without the gradient that only the clamped points need
        if not out.any():
            return x
        ratio, inward, _, nearest = self._density_ratio(x[out])
        beyond = (self._angular_gap(x[out], nearest) > np.radians(150.0)) | (ratio < 0.5 * theta)
        beyond[~beyond] = self._in_hole(x[out][~beyond], -inward[~beyond], nearest[~beyond])
        out[np.flatnonzero(out)[~beyond]] = False
        xo = x[out]
        for _ in range(steps):
            ratio, inward, slope, nearest = self._density_ratio(xo)
            step = np.clip((theta - ratio) / np.maximum(slope, 1e-300), 0.0, 2.0 * self.spacing[nearest])
            moved = xo + step[:, None] * inward
            xo = self._blend(moved, moved)
        x = x.copy()
        x[out] = xo
        return x


def _project_on_quadrics(
    d: torch.Tensor,
    frames: torch.Tensor,
    coeffs: torch.Tensor,
    reach: torch.Tensor,
    iterations: int = 3,
    edge: tuple[torch.Tensor, torch.Tensor] | None = None,
):
    """Orthogonal projection onto height-field quadrics by Gauss-Newton, all in float32 relative
    coordinates: ``d : (B, M, 3)`` query minus patch centre, ``frames : (B, M, 3, 3)``, ``coeffs :
    (B, M, 6)``; the foot point stays within ``reach : (B, M)`` of the centre, tangentially (a
    quadric is only meant near its points), and within ``edge = (edge (B, M), direction (B, M, 2))``
    along that direction (:attr:`Patches.edge`).
    Returns foot point minus query ``(B, M, 3)``."""
    f0, f1, f2 = (frames[..., i, :] for i in range(3))
    uq, vq, zq = (f0 * d).sum(-1), (f1 * d).sum(-1), (f2 * d).sum(-1)
    # the coefficients as contiguous tensors and 2 c3, 2 c5 once: the same values as taking them from
    # ``coeffs`` in every step, and the steps' arithmetic 1.5x faster (strided operands are slow)
    c0, c1, c2, c3, c4, c5 = (coeffs[..., i].contiguous() for i in range(6))
    c3x2, c5x2 = 2 * c3, 2 * c5
    low = -reach
    if edge is not None:
        limit, du, dv = edge[0], edge[1][..., 0].contiguous(), edge[1][..., 1].contiguous()

    def within_reach(u, v):
        u, v = u.clamp(low, reach), v.clamp(low, reach)
        if edge is None:
            return u, v
        beyond = (u * du + v * dv - limit).clamp(min=0.0)
        return u - beyond * du, v - beyond * dv

    def height(u, v):  # _quadric_heights
        return c0 + u * (c1 + c3 * u + c4 * v) + v * (c2 + c5 * v)

    u, v = within_reach(uq, vq)
    for _ in range(iterations):
        zu = c1 + c3x2 * u + c4 * v
        zv = c2 + c4 * u + c5x2 * v
        r = height(u, v) - zq
        g1 = (u - uq) + zu * r
        g2 = (v - vq) + zv * r
        a11, a12, a22 = 1 + zu * zu, zu * zv, 1 + zv * zv
        det = a11 * a22 - a12 * a12
        u, v = within_reach(u - (a22 * g1 - a12 * g2) / det, v - (a11 * g2 - a12 * g1) / det)
    return (u - uq)[..., None] * f0 + (v - vq)[..., None] * f1 + (height(u, v) - zq)[..., None] * f2


def in_threads(fn, jobs) -> list:
    """``[fn(job) for job in jobs]`` on ``PROJECT_THREADS`` threads: NumPy lets go of the GIL in its
    array operations, so independent batches of patch fits run side by side (each job writes only
    its own rows; the same values as one after the other)."""
    jobs = list(jobs)
    if len(jobs) < 2:
        return [fn(job) for job in jobs]
    with ThreadPoolExecutor(min(PROJECT_THREADS, len(jobs))) as pool:
        return list(pool.map(fn, jobs))


@contextmanager
def _torch_threads_shared(workers: int):
    """torch's intra-op threads divided among ``workers`` threads of one's own inside the block,
    restored after it: :meth:`PointSetSurface.project` runs its chunks in threads, and on 2 cores
    each chunk on one core was 1.18x faster than each splitting its operations over both again (the
    same values)."""
    before = torch.get_num_threads()
    torch.set_num_threads(max(1, before // workers))
    try:
        yield
    finally:
        torch.set_num_threads(before)


@contextmanager
def _flush_denormals():
    """Flush float32 denormals to zero inside the block (measured 2x faster projections); torch's
    default (off) is restored after it."""
    supported = torch.set_flush_denormal(True)
    try:
        yield
    finally:
        if supported:
            torch.set_flush_denormal(False)


def _density_reference(points: np.ndarray, tree, kernels: np.ndarray) -> np.ndarray:
    """``(N,)`` interior density around each sample: the median of the densities at its 12
    nearest samples (a sample's own density counts itself)."""
    rho, _, ii = sample_density(points, tree, kernels, points)
    return np.median(rho[ii[:, :12]], axis=1)


def _check_cloud(points: np.ndarray) -> np.ndarray:
    if len(points) < 10:
        raise ValueError(f"a surface needs at least 10 distinct points, got {len(points)}")
    centred = points - points.mean(0)
    sv = np.linalg.svd(centred[:: max(1, len(points) // 100000)], compute_uv=False)
    if sv[1] <= 1e-9 * max(sv[0], 1e-300):
        raise ValueError("all points lie on one line: they do not sample a surface")
    return points


def _cleaned(points: np.ndarray, config: PointSetConfig) -> tuple[np.ndarray, int, int]:
    """Distinct points (repeats merged, :func:`merge_duplicates`) without outliers
    (:func:`remove_outliers`, :func:`remove_off_surface`), averaged in voxels above
    ``config.max_points``; the number of repeats merged and of outliers dropped."""
    merged = merge_duplicates(points)
    pts = _check_cloud(merged.points)
    keep = remove_outliers(pts, config.outlier_ratio)
    if config.off_surface > 0:
        keep[keep] = remove_off_surface(pts[keep], config.off_surface, config.off_surface_floor)
    pts = _check_cloud(pts[keep])
    if len(pts) > config.max_points:
        pts = _check_cloud(voxel_average(pts, config.max_points))
    return pts, merged.n_repeated, int((~keep).sum())


@dataclass(frozen=True)
class _Found:
    """What :meth:`PointSetSurface.build` learns about a cloud on the way (see :class:`CloudSummary`)."""

    n_input: int
    n_outliers: int
    input_noise: float
    projected: bool = False
    self_projected: bool = False
    offset: float = 0.0
    n_repeated: int = 0


def _mean_of(first, second):
    """The projection ``(M, 3) -> (M, 3)`` to the mean of two projections' points."""

    def project(points: np.ndarray) -> np.ndarray:
        return 0.5 * (np.asarray(first(points), np.float64) + np.asarray(second(points), np.float64))

    return project


def _scale_and_noise(points: np.ndarray, config: PointSetConfig):
    """KD-tree, local spacing ``(N,)`` and the patch size chosen by cross-validation."""
    from scipy.spatial import cKDTree

    tree = cKDTree(points)
    spacing = local_spacing(points, tree)
    size = select_patch_size(
        points,
        tree,
        kernel=config.kernel,
        floor=0.1 * spacing,
        candidates=(config.patch_neighbors,) if config.patch_neighbors else PATCH_SIZES,
        degrees=(config.patch_degree,) if config.patch_degree else (2, 1),
    )
    return tree, spacing, size


def _noisy(size: PatchSize, spacing: np.ndarray) -> bool:
    """Whether a cloud is noisy enough for patch sizes chosen per point: its noise estimate is at
    least ``LOCAL_PATCHES_ABOVE`` sample spacings and its one best size lies strictly between the
    smallest patch and the largest candidate. Clean clouds made worse by the choice (closest-point
    error 1.1-1.7x on 12 training and validation meshes at 3k and 10k points, scratch run; mesh
    Chamfer-L1 1.09x on 7 detailed meshes' clean 3k clouds) estimate 0.0-0.4 spacings (curvature
    and sparse sampling read as noise) but their best patch is the smallest (8 neighbours, plane or
    quadric). A cloud whose one size is larger than every candidate (a flat sheet, the Moebius
    strip: 256 neighbours) keeps it: chosen per point, flatland_sheet's error doubled.

    A smallest best patch is no proof of a clean cloud, though: where noise sets the error, every size
    scores about the same and the smallest can win by a hair (simulated range scans, noise along the
    rays). So a cloud whose error rises at most ``FLAT_RISE`` times from the smallest patch to
    ``FLAT_NEIGHBORS`` neighbours is noisy from ``FLAT_NOISE_ABOVE`` spacings. On the training and validation
    meshes' scans with noise 0.1% of the diagonal (``bm_pointcloud.py --settings scan4 scan8``), 5 of
    24 had the smallest best patch: 4 rose 1.002-1.014 at 0.09-0.12 spacings, dragon_lowpoly_22k's
    rose 1.20 (detail: it stays as it was). Their clean clouds (uniform at 3k and 10k, scans without
    noise) that rise less than 1.1 estimate at most 0.044 spacings (benchmarks/RESULTS.md)."""
    median = float(np.median(spacing))
    if _sheet(size):
        return False
    if size.neighbors > min(PATCH_SIZES):
        return size.noise >= LOCAL_PATCHES_ABOVE * median
    return _error_rise(size, FLAT_NEIGHBORS) <= FLAT_RISE and size.noise >= FLAT_NOISE_ABOVE * median


def _error_rise(size: PatchSize, neighbors: int) -> float:
    """The best cross-validated error of patches of ``neighbors`` over that of the smallest patches
    (inf where that size was not measured)."""
    smallest = min(n for n, _ in size.loo_rms)
    at = [e for (n, _), e in size.loo_rms.items() if n == neighbors]
    base = min(e for (n, _), e in size.loo_rms.items() if n == smallest)
    return min(at) / base if at and base > 0 else float("inf")


def _sharp(config: PointSetConfig, n_points: int, noisy: bool) -> bool:
    """Whether a cloud of ``n_points`` gets crease patches (``config.creases``): a clean one of at
    most ``config.creases_max_points``. On the training and validation meshes' noisy clouds at 10k
    points with noise 0.5% of the diagonal the patches cost NC (-0.0014, lower on 9 of 12); again
    with the 90% rule and ``foot_samples`` (2026-12-07, 10k-n0.5 and 10k-n0.25): CD 0.993x, NC -0.0011
    (penguin 10k-n0.5 -0.0099), teddy 10k-n0.5 no longer watertight."""
    return config.creases > 0 and n_points <= config.creases_max_points and not noisy


def _sheet(size: PatchSize) -> bool:
    """Whether a cloud's one best patch is larger than every per-point candidate: a flat sheet, whose
    patches already average its noise over hundreds of points. Such a cloud is not projected at
    all: on the training and validation sheets the learned projection made the point-set surface
    worse (flatland_sheet 2.3x and moebius_strip 1.4x the error without it at 10k points with noise
    0.5% of the diagonal, flatland 1.9x at 100k with 0.25%; ``benchmarks/bm_projection.py``)."""
    return size.neighbors > max(k for k, _ in LOCAL_PATCH_SIZES)


def _frames(normals: np.ndarray) -> np.ndarray:
    """``(N, 3, 3)`` orthonormal frames whose rows are two tangents and the unit normal."""
    a = np.where(np.abs(normals[:, :1]) < 0.9, np.array([[1.0, 0.0, 0.0]]), np.array([[0.0, 1.0, 0.0]]))
    t1 = np.cross(normals, a)
    t1 /= np.linalg.norm(t1, axis=1, keepdims=True)
    return np.stack([t1, np.cross(normals, t1), normals], 1)


def _pca_normals(offsets: np.ndarray, weights: np.ndarray) -> np.ndarray:
    """``(B, 3)`` unoriented normals: the weighted covariance's least axis of ``offsets : (B, K, 3)``.
    The covariance is summed from its moments, one ``(B, K)`` product each (1.4-2x faster than
    batched BLAS on ``(B, 3, K) @ (B, K, 3)`` for the patch fits' sizes)."""
    total = weights.sum(1)
    axes = [np.ascontiguousarray(offsets[..., i]) for i in range(3)]
    weighted = [weights * x for x in axes]
    mean = [wx.sum(1) / total for wx in weighted]
    cov = np.empty((len(weights), 3, 3))
    for i in range(3):
        for j in range(i, 3):
            cov[:, i, j] = cov[:, j, i] = (weighted[i] * axes[j]).sum(1) - total * mean[i] * mean[j]
    return np.linalg.eigh(cov)[1][:, :, 0]


#: Exponents ``(a, b)`` of the quadric's monomials ``u^a v^b``, in the order of its coefficients.
_MONOMIALS = ((0, 0), (1, 0), (0, 1), (2, 0), (1, 1), (0, 2))


def _weighted_quadric_lstsq(u: np.ndarray, v: np.ndarray, z: np.ndarray, w: np.ndarray, ridge: np.ndarray):
    """``(B, 6)`` minimisers ``c`` of ``sum_k w (q_c(u, v) - z)^2 + sum_j ridge_j c_j^2`` for each
    batch row, ``q_c`` the quadric of :func:`_quadric_heights`; all ``(B, K)`` but ``ridge : (B, 6)``.
    The normal equations are built from the 15 weighted moments ``sum w u^a v^b`` (a + b <= 4),
    not from a ``(B, K, 6)`` design matrix: 1.5x faster, the same solution to rounding."""
    wu, wv = w * u, w * v
    wuu, wvv = wu * u, wv * v
    uu, uv, vv = u * u, u * v, v * v
    moments = {
        (0, 0): w.sum(1), (1, 0): wu.sum(1), (0, 1): wv.sum(1),
        (2, 0): wuu.sum(1), (1, 1): (wu * v).sum(1), (0, 2): wvv.sum(1),
        (3, 0): (wuu * u).sum(1), (2, 1): (wuu * v).sum(1), (1, 2): (wvv * u).sum(1), (0, 3): (wvv * v).sum(1),
        (4, 0): (wuu * uu).sum(1), (3, 1): (wuu * uv).sum(1), (2, 2): (wuu * vv).sum(1),
        (1, 3): (wvv * uv).sum(1), (0, 4): (wvv * vv).sum(1),
    }  # fmt: skip
    AtA = np.empty((len(w), 6, 6))
    for i, (a, b) in enumerate(_MONOMIALS):
        for j, (c, d) in enumerate(_MONOMIALS):
            AtA[:, i, j] = moments[(a + c, b + d)]
    AtA += ridge[:, :, None] * np.eye(6)[None]
    wz = w * z
    Atz = np.stack(
        [wz.sum(1), (wz * u).sum(1), (wz * v).sum(1), (wz * uu).sum(1), (wz * uv).sum(1), (wz * vv).sum(1)], 1
    )
    try:
        return np.linalg.solve(AtA, Atz[..., None])[..., 0]
    except np.linalg.LinAlgError:  # a row's weighted points do not span a plane (near-duplicates)
        AtA += 1e-9 * np.maximum(np.trace(AtA, axis1=1, axis2=2), 1e-300)[:, None, None] * np.eye(6)[None]
        return np.linalg.solve(AtA, Atz[..., None])[..., 0]


def _quadric_heights(coeffs, u, v):
    """Heights ``c0 + c1 u + c2 v + c3 u^2 + c4 uv + c5 v^2`` of quadrics ``coeffs : (..., 6)`` at
    ``u, v`` (shapes that broadcast with ``coeffs[..., 0]``); NumPy arrays or torch tensors."""
    c0, c1, c2, c3, c4, c5 = (coeffs[..., i] for i in range(6))
    return c0 + u * (c1 + c3 * u + c4 * v) + v * (c2 + c5 * v)
