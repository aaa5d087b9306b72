"""``reconstruct_cloud``: an unoriented point cloud in, a mesh (and a CSP field) out.

Method ``csp`` (the default), each step a library call: a band-grid CSP field of the surface the
cloud samples (:func:`deepcsp.fit.fit_surface` on the point-set surface of
:mod:`deepcsp.geometry.pointset`, after the learned local projection of :mod:`deepcsp.fields.local`
where the cloud is noisy), then a single-layer mesh extracted from it
(:func:`deepcsp.extract.extract_mesh`: open sheets stay open, closed surfaces come out closed).

Method ``global``: the earlier global tri-plane model (:mod:`deepcsp.fields.conditional`), which
reads a 3,000-point subsample; kept as a baseline.
"""

from __future__ import annotations

import functools
import time
from dataclasses import dataclass, field, replace
from typing import Callable, Literal

import numpy as np
import torch

from deepcsp._validate import Fields, OptionError
from deepcsp.extract import ExtractConfig, MeshStats, extract_mesh, mesh_stats
from deepcsp.extract.mesh import topology_plan
from deepcsp.extract.topology import (
    boundary_loop_lengths,
    cut_short_seams,
    drop_nonmanifold_faces,
    remove_small_components,
)
from deepcsp.fields.batched import map_rows
from deepcsp.fields.modules import FieldConfig, build_module
from deepcsp.fields.query import Field, NeuralField
from deepcsp.fit import FitConfig, fit_surface
from deepcsp.fit.band import collocate
from deepcsp.fit.loop import layered_grid
from deepcsp.geometry.cleanup import drop_unused_vertices, repeats_index, weld_map
from deepcsp.geometry.closest import ClosestPoints
from deepcsp.geometry.duplicates import merge_duplicates
from deepcsp.geometry.pointset import CloudSummary
from deepcsp.pipelines.holes import SampleGaps, fill_covered_holes, retract_rims, trim_holes
from deepcsp.pipelines.polish import (
    keep_orientation,
    median_edge_length,
    midpoint_subdivide,
    polish,
    smooth_turned_faces,
    taubin_smooth,
)
from deepcsp.pipelines.thin import drop_small_pieces, restore_thin_parts

#: Meshes with more vertices than this are not subdivided before snapping (1M-point clouds).
SUBDIVIDE_MAX_VERTICES = 600_000
#: Rounds of Taubin smoothing of a noisy cloud's mesh (``ReconstructionConfig.smooth``): on the 24
#: dev meshes' 10k-point clouds with noise 0.5% of the diagonal, NC +0.0018 and Chamfer-L1 0.995x
#: (medians; benchmarks/RESULTS.md); 5 to 40 rounds gave about the same.
SMOOTH_ROUNDS = 20
#: Clouds of more points than this get ``ReconstructionConfig.clean_smooth_dense`` rounds of clean
#: smoothing instead of ``clean_smooth``: their meshes have edges of half a spacing and follow the samples
#: closely, so more rounds cost distance (100k-point clouds of the 12 training and validation meshes:
#: 1 / 2 / 3 rounds Chamfer-L1 0.998x / 1.008x / 1.015x, NC +0.0005 / +0.0005 / +0.0006, medians).
CLEAN_SMOOTH_MAX_POINTS = 30_000
#: ``ReconstructionConfig.seam_spacings``: on the 53 benchmark clouds with inconsistent edges, 1.5 spacings
#: made closed clouds watertight on 12 of 13 at 10k (9 before) for Chamfer-L1 1.0007x and NC -0.0001 (medians
#: of the 50 it changed); 3 closed more loops but cost up to 1.10x (benchmarks/RESULTS.md).
SEAM_SPACINGS = 1.5
#: ``ReconstructionConfig.hole_overshoot``: faces a closed extraction put past the sharp creases of
#: nefertiti_100k and wingnut at 100k points lay 2.0-2.53 spacings from every sample and saw them all on
#: one side (:meth:`~deepcsp.pipelines.holes.SampleGaps.surrounded`: mean unit direction 0.62-0.75 long;
#: the edge of a half-plane of samples reads 2/pi = 0.64); the airplane's windows, 2.0-2.8 deep at 10k
#: points (2.0-2.6 at 100k with noise 0.25%), each had a face that saw its rim all round (0.03-0.45),
#: and 3.0-4.2 deep at 100k.
HOLE_OVERSHOOT = 2.75
#: ``ReconstructionConfig.hole_lip``: selected on a procedural capsule with 14 windows and a door, none of
#: the benchmark's meshes (benchmarks/bm_hole_lip.py, 2026-12-06): 0 / 0.5 / 0.75 / 1.0 spacings gave
#: Chamfer-L1 0.0254 / 0.0180 / 0.0164 / 0.0184% of the diagonal at 10k points, 0.0804 / 0.0756 / 0.0732 /
#: 0.0752% at 10k with noise 0.25%, 0.0394 / 0.0295 / 0.0260 / 0.0290% at 3k; NC up 0.0002-0.0006 at each;
#: a sphere with five round holes takes the open path and is unchanged. Benchmark: benchmarks/RESULTS.md.
HOLE_LIP = 0.75
#: :func:`closed_test`: a closed mesh leaves the fine band's vertices off it at winding numbers near 0
#: or 1; an open sheet too narrow for the coarse vertices to see (a ribbon 50 times longer than wide)
#: leaves 66-70% of them in between. The 55 benchmark clouds that pass the coarse test (all 24 meshes in
#: the 7 settings below 100k) leave at most 8.6% (dragon_stanford_20k with noise), the open ones that fail
#: it 4-97% (benchmarks/RESULTS.md, 2026-12-07).
BAND_AMBIGUOUS_MAX = 0.25
#: ``ReconstructionConfig.thin_spacings``: not tuned, the 1.5 spacings of the seam and rim rules; on the
#: 192 benchmark clouds it changed 3 (cesium_milk_truck and teddy at 100k, penguin at 10k-n0.5-o1), all
#: for the better (benchmarks/RESULTS.md).
THIN_SPACINGS = 1.5
#: Samples a small piece of the mesh must alone cover to stay (see ``_drop_small_pieces``).
SMALL_PIECE_SAMPLES = 3
#: ``ReconstructionConfig.turned_degrees``: rings of neighbours and Taubin rounds of the smoothing
#: around turned faces (:func:`~deepcsp.pipelines.polish.smooth_turned_faces`). On the 12 training and
#: validation meshes' 10k-point clouds (scratch, 2026-12-05): 30 / 45 / 60 degrees with 1-3 rings and
#: 2-3 rounds all gave Chamfer-L1 0.997-1.000x and NC +0.0002 to +0.0004 (medians, higher on 9-10 of
#: 12), 5 rounds Chamfer-L1 1.000-1.003x; at 3k points (45 degrees, 2 rings, 2 rounds) 0.994x, NC
#: +0.0006 (higher on 12 of 12); at 100k points NC +0.0001-0.0002 for Chamfer-L1 1.004-1.013x, so
#: dense clouds were left alone until the patches at sharp edges acted on them; with those, at 100k
#: (2026-12-07, the 12 training and validation clouds): Chamfer-L1 0.999x (geometric mean), NC +0.0002,
#: higher on 11 of 12, and every clean cloud gets it.
TURNED_RINGS = 2
TURNED_ROUNDS = 2


@dataclass
class ReconstructionConfig:
    """How a cloud becomes a mesh."""

    method: Literal["csp", "global"] = "csp"
    """``csp``: the point-set surface's CSP field (``fit``); ``global``: the global tri-plane model (baseline)."""
    fit: FitConfig = field(default_factory=lambda: FitConfig(eval_points=0))
    """The field fitted to the cloud (``fit.cloud``: point-set surface, learned projection)."""
    mesh_resolution: int = 0
    """Grid cells per side of the extraction grid (the mesh's detail); 0 = the field's grid, at least 256."""
    global_model: str | None = None
    """``global`` method: model from ``deepcsp train``; None: the one shipped with deepcsp."""
    min_component_samples: float = 20.0
    """Drop pieces of the mesh smaller than this many samples' share of area (spacing squared):
    sign or sheet errors of a few grid vertices, never a part the cloud samples (a small piece that
    alone covers samples within ``thin_spacings`` stays: a thin part broken into beads)."""
    hole_loop: float = 8.0
    """A closed surface whose first (unsigned) mesh has a boundary loop longer than this many sample
    spacings has holes, cut out of its closed mesh again (``hole_spacings``)."""
    hole_spacings: float = 1.75
    """After a closed extraction, regions of faces further than this many sample spacings from every
    sample are dropped when they reach ``hole_core`` somewhere (they span a hole of the cloud)."""
    hole_core: float = 2.0
    """How deep (sample spacings, measured on the point-set surface) such a region must reach to be
    a hole: random sampling gaps stay under about 1.6."""
    hole_overshoot: float = HOLE_OVERSHOOT
    """A region that reaches no deeper than this many spacings is a hole only where it sees samples
    all round (:meth:`~deepcsp.pipelines.holes.SampleGaps.surrounded`): past a sharp crease the
    closed mesh can overshoot the samples that deep, with all of them on one side."""
    hole_lip: float = HOLE_LIP
    """Where holes were cut, also drop the faces further than this many spacings from every sample
    in regions that reach the cut: the lip the closed mesh bends into a hole's rim (closer to the
    samples than ``hole_spacings``, so the cut leaves it). 0: keep it."""
    thin_spacings: float = THIN_SPACINGS
    """After a closed extraction, when more than ``min_component_samples`` samples lie further than
    this many local spacings from the closed mesh (thin plates and bars it has no inside vertex
    for, structure inside a closed body), add the first (unsigned) mesh's faces that lie that far
    from it (:func:`~deepcsp.pipelines.thin.restore_thin_parts`); also the reach within which a
    small piece's samples must lie, further from everything else, for it to stay
    (:func:`~deepcsp.pipelines.thin.drop_small_pieces`); 0: never (then every small piece goes)."""
    snap: bool = True
    """Move the mesh's vertices to their closest points on the point-set surface the field was
    collocated from (removes the grid's discretisation error; ``csp`` method)."""
    seam_spacings: float = SEAM_SPACINGS
    """Before holes are filled, cut out the seams of inconsistent winding that span at most this many
    sample spacings (:func:`~deepcsp.extract.topology.cut_short_seams`: twists where the extraction
    joined two layers; the loops through them then become simple, so ``fill_holes`` can close
    them, and a closed surface can come out watertight); longer seams (a Moebius strip's) stay. 0:
    never."""
    fill_holes: bool = True
    """Close the mesh's boundary loops whose patch the cloud covers everywhere within
    ``hole_spacings`` (false holes along creases and on thin parts; the cloud's holes stay open)."""
    polish: float = 0.05
    """Pull the mesh through its samples (:func:`deepcsp.pipelines.polish.polish`) when the median
    sample lies within this many local spacings of it (a clean cloud); 0: never."""
    smooth: float = 0.1
    """Smooth the mesh (``SMOOTH_ROUNDS`` of :func:`deepcsp.pipelines.polish.taubin_smooth`) when the
    median sample lies further than this many local spacings from it (a noisy cloud; measured: 0.13
    and 0.14 with noise 0.5% of the diagonal at 3k points and 0.25% at 10k, 0.001-0.074 on the
    clean dev clouds, 0.094 on the demo's 4-view scan); 0: never."""
    clean_smooth: int = 3
    """Rounds of :func:`~deepcsp.pipelines.polish.taubin_smooth` for the mesh of a cloud that is not
    noisy (below ``smooth``) and has at most ``CLEAN_SMOOTH_MAX_POINTS`` points, after polishing:
    the wrinkle a mesh snapped and polished onto the point-set surface keeps at the scale of an
    edge (10k-point clouds of the 12 training and validation meshes, against 2 rounds: 3 / 4 / 6
    rounds Chamfer-L1 1.0005x / 1.004x / 1.012x, NC +0.0002 / +0.0003 / +0.0003, medians; 2 against
    none: Chamfer-L1 0.993x, NC +0.0014); 0: never."""
    clean_smooth_dense: int = 1
    """Rounds of clean smoothing for a cloud of more than ``CLEAN_SMOOTH_MAX_POINTS`` points (see
    there); 0: never."""
    turned_degrees: float = 45.0
    """After clean smoothing (clouds of any size), smooth again
    around the faces turned more than this many degrees from the point-set surface's normal near
    them (``TURNED_ROUNDS`` rounds over them and ``TURNED_RINGS`` rings of neighbours;
    :func:`~deepcsp.pipelines.polish.smooth_turned_faces`); 0: never."""
    rim_spacings: float = 1.5
    """Finally drop the faces that run on from a boundary further than this many local spacings
    from every sample (a hole's lip, an overshooting edge; :func:`~deepcsp.pipelines.holes.retract_rims`);
    0: never."""
    subdivide_above: float = 0.5
    """Before snapping and polishing, split each face in four when the mesh's median edge is longer
    than this many sample spacings (dense clouds: the mesh needs vertices to follow them); 0: never."""
    closed_test: float = 0.002
    """Closed if at most this share of the grid's vertices off the first mesh have winding numbers in
    (0.1, 0.9): it then gets inside/outside bits and a watertight extraction. 0: never."""
    sign_topology: float = 0.5
    """A closed surface takes its inside/outside bits from a second unsigned mesh whose topology grid
    has cells of at most this many sample spacings, when that mesh passes ``closed_test`` too and
    the first mesh's grid was coarser: the automatic topology grid (cells of ``TOPOLOGY_CELLS``
    field cells: about 1.5 spacings at 10k points, 3 at 100k) bridges gaps of a few spacings
    between close parts (a penguin's flippers and body), and the winding numbers of a bridged mesh
    fill the gap. Open surfaces keep the coarse grid, which closes false holes. 0: never."""
    sign_topology_max: int = 256
    """...but that topology grid has at most this many cells per axis (the smallest automatic
    extraction grid; 0: no bound). Below 100k points it never binds (every closed cloud of the
    benchmark at 3k and 10k, noisy or not, has a 256 grid); on a denser cloud's finer grid the
    sign mesh then costs about what a 10k cloud's does, not a mesh at the full grid (a 100k-point
    dragon with a 496 grid: 11.9 -> 2.5 s)."""
    closed_retry: float = 10.0
    """A cloud whose first mesh fails ``closed_test`` with at most this many times its share of
    ambiguous vertices is tested again on the ``sign_topology`` mesh, and is closed when that mesh
    passes: the coarse topology grid can leave a closed surface torn or twisted (a noisy teddy's head
    wound against its body: winding numbers 0.8 inside), which the finer grid does not. 0: never."""

    def __post_init__(self) -> None:
        if not isinstance(self.fit, FitConfig):
            raise OptionError("ReconstructionConfig.fit", f"must be a FitConfig, got {type(self.fit).__name__}")
        f = Fields(self)
        f.literal("method")
        f.auto_or_at_least("mesh_resolution", 8, 2048)
        f.number("closed_test", 0.0, 1.0)
        f.number("closed_retry", 0.0, 1e6)
        f.number("min_component_samples", 0.0, 1e9)
        f.number("hole_spacings", 0.0, 1e6)
        f.number("hole_core", 0.0, 1e6)
        f.number("hole_loop", 0.0, 1e9)
        f.number("hole_overshoot", 0.0, 1e6)
        f.number("hole_lip", 0.0, 1e6)
        f.number("seam_spacings", 0.0, 1e6)
        f.number("thin_spacings", 0.0, 1e6)
        f.number("polish", 0.0, 1e6)
        f.number("subdivide_above", 0.0, 1e6)
        f.number("rim_spacings", 0.0, 1e6)
        f.number("smooth", 0.0, 1e6)
        f.integer("clean_smooth", 0, 1000)
        f.integer("clean_smooth_dense", 0, 1000)
        f.number("turned_degrees", 0.0, 90.0)
        f.number("sign_topology", 0.0, 1e6)
        f.integer("sign_topology_max", 0, 4096)


@dataclass
class CloudReconstruction:
    """A mesh in the cloud's coordinates (``vertices : (V, 3)``, ``faces : (F, 3)``), the field it
    was extracted from, what was found in the cloud (``csp`` method), the mesh's topology and
    seconds per step."""

    vertices: np.ndarray
    faces: np.ndarray
    field: Field
    cloud: CloudSummary | None
    stats: MeshStats
    seconds: dict


def reconstruct_cloud(
    surface, config: ReconstructionConfig = ReconstructionConfig(), progress: Callable[[dict], None] | None = None
) -> CloudReconstruction:
    """Reconstruct the surface sampled by ``surface`` (a :class:`deepcsp.io.Surface`; a mesh is
    read as its vertices). ``progress`` receives ``{"stage": text}`` and ``{"task", "done",
    "total"}`` records."""
    if surface.faces is not None:
        surface = replace(surface, faces=None)
    t0 = time.perf_counter()
    samples = functools.cache(lambda: _distinct_samples(surface.vertices))
    gaps = functools.cache(lambda: SampleGaps(samples()))  # built when first needed
    if config.method == "global":
        fld, cloud, pss = _global_field(surface.vertices, config.global_model, config.fit.device), None, None
    else:
        fit = fit_surface(surface, config.fit, progress=progress)
        fld, cloud, pss = fit.field, fit.cloud, fit.surface
    t1 = time.perf_counter()
    res = config.mesh_resolution or max(256, fld.config.resolution if isinstance(fld, NeuralField) else 0)
    if progress is not None:
        progress({"stage": f"extracting a mesh at resolution {res}"})
    # vertices about to be snapped onto the point-set surface have no use for creases of its field
    extract = ExtractConfig(resolution=res, sharpen=0.0 if config.snap and pss is not None else ExtractConfig.sharpen)
    mesh = extract_mesh(fld, extract)
    vertices, faces = mesh.vertices, mesh.faces
    unsigned = (mesh.vertices, mesh.faces)
    watertight = mesh.stats.n_boundary_edges == 0 and mesh.stats.n_nonmanifold_edges == 0  # nothing to close
    closed = None
    if config.closed_test > 0 and not watertight and isinstance(fld, NeuralField):
        closed = _closed_surface(fld, mesh, extract, None if cloud is None else cloud.spacing, config, progress)
    if closed is not None:
        holes = (
            cloud is not None
            and _longest_boundary(mesh.vertices, mesh.faces)
            > config.hole_loop * cloud.spacing / fld.normalization.scale
        )
        if progress is not None:
            progress(
                {
                    "stage": f"the surface is closed{' but for holes' if holes else ''}: "
                    "extracting it again on inside/outside signs"
                }
            )
        set_sides(fld, closed)
        mesh = extract_mesh(fld, extract)
        vertices, faces = mesh.vertices, mesh.faces
        if holes:
            onto = None if pss is None else functools.partial(_on_surface, pss, fld.normalization)
            vertices, faces = trim_holes(
                vertices,
                faces,
                gaps(),
                config.hole_spacings,
                config.hole_core,
                onto,
                overshoot=config.hole_overshoot,
                lip=config.hole_lip,
            )
        if config.thin_spacings > 0 and pss is not None:
            vertices, faces = _restore_thin_parts((vertices, faces), unsigned, pss, fld.normalization, config, progress)
    if cloud is not None and config.min_component_samples > 0:
        vertices, faces = _drop_small_pieces(vertices, faces, cloud, pss, fld.normalization, config, progress)
    if config.snap and pss is not None:
        if config.subdivide_above > 0 and cloud is not None and _coarser_than(vertices, faces, cloud, fld, config, pss):
            vertices, faces = midpoint_subdivide(vertices, faces)
        if progress is not None:
            progress({"stage": f"moving {len(vertices)} vertices onto the point-set surface"})
        vertices = keep_orientation(vertices, snap_to_surface(vertices, pss, fld.normalization), faces)
    vertices, faces = _manifold(vertices, faces)
    if config.seam_spacings > 0 and cloud is not None and len(faces):
        cut = cut_short_seams(vertices, faces, config.seam_spacings * cloud.spacing / fld.normalization.scale)
        if progress is not None and cut.n_cut_edges:
            progress({"stage": f"cut out {cut.n_cut_edges} of {cut.n_seam_edges} inconsistently wound edges (twists)"})
        vertices, faces = cut.vertices, cut.faces
    if config.fill_holes and cloud is not None and len(faces):
        filled = fill_covered_holes(vertices, faces, gaps(), config.hole_spacings)
        if progress is not None and filled.n_filled:
            progress({"stage": f"closed {filled.n_filled} of {filled.n_loops} boundary loops the cloud covers"})
        vertices, faces = filled.vertices, filled.faces
    smoothing = config.smooth > 0 or config.clean_smooth > 0 or config.clean_smooth_dense > 0
    if (config.polish > 0 or smoothing) and cloud is not None and len(faces):
        normals_near = None if pss is None else functools.partial(_normals_near, pss, fld.normalization)
        vertices = _polish_and_smooth(vertices, faces, samples(), gaps().spacing, config, progress, normals_near)
    if config.rim_spacings > 0 and cloud is not None and len(faces):
        vertices, faces = retract_rims(vertices, faces, gaps(), config.rim_spacings)
    t2 = time.perf_counter()
    return CloudReconstruction(
        vertices, faces, fld, cloud, mesh_stats(vertices, faces), {"field": t1 - t0, "mesh": t2 - t1, "total": t2 - t0}
    )


def _distinct_samples(points: np.ndarray) -> np.ndarray:
    """The samples the mesh rules measure gaps to: ``points`` with repeated samples merged
    (:func:`merge_duplicates`; a repeat would halve the spacing they measure in), in their order."""
    return merge_duplicates(points, keep_order=True).points


def _drop_small_pieces(vertices, faces, cloud, pss, normalization, config: ReconstructionConfig, progress):
    """Pieces of the mesh smaller than ``config.min_component_samples`` samples' area dropped, but
    those that are the only surface within ``config.thin_spacings`` of samples of the point-set
    surface (:func:`~deepcsp.pipelines.thin.drop_small_pieces`; every small piece without one)."""
    spacing = cloud.spacing / normalization.scale
    min_area = config.min_component_samples * spacing**2
    if pss is None or config.thin_spacings <= 0:
        return remove_small_components(vertices, faces, min_area=min_area)
    pieces = drop_small_pieces(
        vertices, faces, *_samples_in_input(pss, normalization), min_area, config.thin_spacings, SMALL_PIECE_SAMPLES
    )
    if progress is not None and pieces.n_kept:
        progress({"stage": f"kept {pieces.n_kept} small pieces that alone cover their samples (beads of thin parts)"})
    return pieces.vertices, pieces.faces


def _samples_in_input(pss, normalization) -> tuple[np.ndarray, np.ndarray]:
    """A point-set surface's samples ``(N, 3)`` and local spacings ``(N,)`` in input coordinates."""
    return normalization.to_input(pss.points), pss.spacing / normalization.scale


def _restore_thin_parts(closed, unsigned, pss, normalization, config: ReconstructionConfig, progress):
    """``restore_thin_parts`` on the point-set surface's samples, in input coordinates."""
    samples, spacing = _samples_in_input(pss, normalization)
    restored = restore_thin_parts(
        closed,
        unsigned,
        samples,
        spacing,
        config.thin_spacings,
        int(config.min_component_samples),
        config.min_component_samples * float(np.median(spacing)) ** 2,
    )
    if progress is not None and restored.n_added:
        progress(
            {
                "stage": f"{restored.n_uncovered} samples lay off the closed mesh: "
                f"put back {restored.n_added} faces of thin parts from the unsigned mesh"
            }
        )
    return restored.vertices, restored.faces


def _polish_and_smooth(
    vertices, faces, samples, spacing, config: ReconstructionConfig, progress, normals_near=None
) -> np.ndarray:
    """The mesh polished onto its samples where the cloud is clean (``config.polish``), then
    Taubin-smoothed: ``SMOOTH_ROUNDS`` rounds where the samples lie ``config.smooth`` spacings or
    more off it (noise), else ``config.clean_smooth`` rounds, or ``config.clean_smooth_dense`` when
    the cloud has more than ``CLEAN_SMOOTH_MAX_POINTS`` samples; a clean cloud is then smoothed again
    around its turned faces (``config.turned_degrees``), when
    ``normals_near`` (points ``(M, 3)`` -> the surface's unit normals near them) is given."""
    polished = polish(vertices, faces, samples, spacing, clean_below=config.polish)
    if progress is not None and polished.applied:
        progress({"stage": f"moved the mesh onto its samples (median offset {polished.residual:.2g} spacings)"})
    noisy = 0 < config.smooth <= polished.residual
    sparse = len(samples) <= CLEAN_SMOOTH_MAX_POINTS
    if noisy:
        rounds = SMOOTH_ROUNDS
    else:
        rounds = config.clean_smooth if sparse else config.clean_smooth_dense
    if rounds and progress is not None:
        what = "a noisy cloud" if noisy else "a clean cloud"
        progress({"stage": f"smoothing the mesh of {what} (median offset {polished.residual:.2g} spacings)"})
    smoothed = taubin_smooth(polished.vertices, faces, rounds)
    if noisy or config.turned_degrees == 0 or normals_near is None:
        return smoothed
    turned = smooth_turned_faces(
        smoothed, faces, normals_near(smoothed[faces].mean(axis=1)), config.turned_degrees, TURNED_RINGS, TURNED_ROUNDS
    )
    if progress is not None and turned.n_turned:
        progress({"stage": f"smoothed around {turned.n_turned} faces turned from the point-set surface"})
    return turned.vertices


def snap_to_surface(vertices: np.ndarray, pss, normalization) -> np.ndarray:
    """``vertices`` (input coordinates) moved to their closest points on a point-set surface
    (normalised coordinates): the mesh then lies on the surface the field was collocated from,
    not on the grid's trilinear interpolation of it."""
    if len(vertices) == 0:
        return vertices
    return normalization.to_input(pss.project(normalization.to_normalized(np.asarray(vertices, np.float64))))


def _normals_near(pss, normalization, points: np.ndarray) -> np.ndarray:
    """Unit normals of a point-set surface (normalised coordinates) near ``points`` (input
    coordinates; the normalisation scales uniformly, so directions carry over)."""
    return pss.normals_near(normalization.to_normalized(np.asarray(points, np.float64)))


def _on_surface(pss, normalization, points: np.ndarray) -> np.ndarray:
    """``points`` (input coordinates) projected onto a point-set surface continued across its holes."""
    return normalization.to_input(pss.project(normalization.to_normalized(points), clamp=False))


def _manifold(vertices: np.ndarray, faces: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Vertices that coincide (within 1e-9 of the diagonal: snapping can move two onto one point)
    joined, faces left with a repeated vertex dropped, then the faces that make an edge non-manifold.
    Vertex order is kept."""
    if len(faces) == 0:
        return vertices, faces
    first, inverse = weld_map(vertices, 1e-9 * float(np.linalg.norm(np.ptp(vertices, axis=0))))
    faces = first[inverse][faces]
    return drop_unused_vertices(vertices, drop_nonmanifold_faces(vertices, faces[~repeats_index(faces)]))


def _coarser_than(vertices: np.ndarray, faces: np.ndarray, cloud: CloudSummary, fld, config, pss) -> bool:
    """Whether the mesh's median edge is longer than ``config.subdivide_above`` sample spacings
    (never above ``SUBDIVIDE_MAX_VERTICES`` vertices: four times as many faces would not fit the
    time and memory a million-point cloud is given; never when the field's grid was made finer for a
    layered cloud: on the 100k-point jacket, splitting then took 2.5x the time for 1.1x less error)."""
    if layered_grid(config.fit, pss.summary.spacing, pss.summary.close_layers):
        return False
    spacing = cloud.spacing / fld.normalization.scale
    small = len(vertices) <= SUBDIVIDE_MAX_VERTICES
    return small and median_edge_length(vertices, faces) > config.subdivide_above * spacing


def _longest_boundary(vertices: np.ndarray, faces: np.ndarray) -> float:
    """Length of the longest boundary loop of a mesh (0 when closed)."""
    lengths = boundary_loop_lengths(vertices, faces)
    return float(lengths.max()) if len(lengths) else 0.0


def _closed_surface(
    fld: NeuralField, mesh, extract: ExtractConfig, spacing: float | None, config: ReconstructionConfig, progress=None
) -> ClosedMesh | None:
    """The closed mesh whose winding numbers give a band-grid field its sides, or None when the
    surface the first (unsigned) ``mesh`` shows is open: that mesh's :func:`closed_test`, then, with
    the cloud's sample ``spacing`` (normalised units), the ``config.sign_topology`` mesh's, which
    decides with the first test as the fallback; a first mesh that failed by at most
    ``config.closed_retry`` times the allowed share is tested on it too (a closed surface the coarse
    topology grid tore or twisted)."""
    test = closed_test(fld, mesh.vertices, mesh.faces, config.closed_test)
    if spacing is None or config.sign_topology <= 0:
        return test.closed
    retry = test.near(config.closed_retry)
    if retry and progress is not None:
        progress(
            {
                "stage": f"the mesh is nearly closed ({test.ambiguous:.2%} of the vertices off it ambiguous): "
                "testing it again on a finer topology grid"
            }
        )
    if test.closed is None and not retry:
        return None
    cell = config.sign_topology * spacing
    return _fine_closed(fld, extract, cell, config.sign_topology_max, config.closed_test) or test.closed


def _fine_closed(
    fld: NeuralField, extract: ExtractConfig, cell: float, max_resolution: int, ambiguous_max: float
) -> ClosedMesh | None:
    """An unsigned mesh of a closed field whose topology grid has cells of at most ``cell``
    (normalised units; ``ReconstructionConfig.sign_topology``) and at most ``max_resolution``
    cells per axis (0: any), when the automatic grid is coarser and that mesh passes the closed
    test; else None."""
    R = int(extract.resolution)
    topo = int(np.ceil(1.0 / cell))
    topo = min(topo, max_resolution) if max_resolution else topo
    topo = R if topo * np.sqrt(2) >= R else topo  # within a halving of the full grid: the full grid
    if topo <= topology_plan(fld, extract, signed=False)[0]:
        return None
    fine = extract_mesh(fld, replace(extract, topology_resolution=topo, use_signs=False))
    return closed_test(fld, fine.vertices, fine.faces, ambiguous_max).closed


def close_if_closed(
    fld: NeuralField,
    resolution: int = 128,
    spacing: float | None = None,
    config: ReconstructionConfig = ReconstructionConfig(),
) -> bool:
    """Extract a mesh of a band-grid field of a cloud and, when it shows a closed surface, give the
    field inside/outside bits (:func:`set_sides`): the test ``reconstruct_cloud`` makes
    (``config.closed_test``, and with the cloud's sample ``spacing``, normalised units, the finer
    sign mesh of ``config.sign_topology`` and ``config.closed_retry``). Returns whether it did."""
    if config.closed_test <= 0:
        return False
    extract = ExtractConfig(resolution=resolution, sharpen=0.0)  # its topology is all that counts
    closed = _closed_surface(fld, extract_mesh(fld, extract), extract, spacing, config)
    if closed is not None:
        set_sides(fld, closed)
    return closed is not None


@dataclass
class ClosedMesh:
    """A mesh that passed :func:`closed_test`: its vertices (normalised coordinates), faces and
    absolute winding numbers at the band grid's coarse vertices."""

    vertices: np.ndarray
    faces: np.ndarray
    coarse_winding: np.ndarray


@dataclass
class ClosedTest:
    """What :func:`closed_test` found: the share of the coarse vertices off the mesh whose winding
    numbers are ambiguous (1.0 where there was nothing to measure), the share it allows, and the mesh
    when it passed."""

    ambiguous: float
    ambiguous_max: float
    closed: ClosedMesh | None

    def near(self, factor: float) -> bool:
        """Whether a failed test missed by at most ``factor`` (> 0) times the allowed share."""
        return factor > 0 and self.closed is None and self.ambiguous <= factor * self.ambiguous_max


def closed_test(
    fld: NeuralField,
    vertices: np.ndarray,
    faces: np.ndarray,
    ambiguous_max: float = 0.002,
    margin_cells: float = 2.0,
    band_ambiguous_max: float = BAND_AMBIGUOUS_MAX,
) -> ClosedTest:
    """Whether the surface a mesh of a band-grid field shows is closed.

    The mesh (input coordinates, consistently wound, from an unsigned extraction; small holes
    allowed) defines generalised winding numbers at the grid's vertices. Away from the surface
    (``margin_cells`` fine cells) they are near 0 or 1 around a closed surface and spread in
    between around an open one: the mesh passes when at most ``ambiguous_max`` of the coarse
    vertices fall in (0.1, 0.9), and at most ``band_ambiguous_max`` of the fine band's vertices
    that far from it (a sheet narrower than a few coarse cells is seen from none of them at an
    angle that tells). ``closed`` is None when it does not (or the field has no sides)."""
    from deepcsp.fields.encodings import grid_vertices
    from deepcsp.geometry.inside import winding_numbers

    grid = fld.module.encoder
    if len(faces) == 0 or not hasattr(grid, "set_sides"):
        return ClosedTest(1.0, ambiguous_max, None)
    v = fld.normalization.to_normalized(np.asarray(vertices, np.float64))
    coarse = grid_vertices(grid.coarse_res, grid.half).double().numpy()
    w_coarse = np.abs(winding_numbers(v, faces, coarse))
    cell = 2 * grid.half / (grid.res - 1)
    d = (
        np.linalg.norm(grid.coarse.values.detach().cpu().double().numpy(), axis=1)
        if fld.config.output == "displacement"
        else None
    )
    away = d > margin_cells * cell if d is not None else np.ones(len(coarse), bool)
    ambiguous = float(((w_coarse > 0.1) & (w_coarse < 0.9))[away].mean()) if away.any() else 1.0
    if ambiguous > ambiguous_max:
        return ClosedTest(ambiguous, ambiguous_max, None)
    if d is not None and _band_ambiguity(grid, v, faces, margin_cells * cell) > band_ambiguous_max:
        return ClosedTest(ambiguous, ambiguous_max, None)
    return ClosedTest(ambiguous, ambiguous_max, ClosedMesh(v, faces, w_coarse))


def _band_ambiguity(grid, vertices: np.ndarray, faces: np.ndarray, margin: float, n: int = 1024) -> float:
    """Share of (at most ``n``, seeded) active fine vertices further than ``margin`` from the surface
    whose absolute winding number about the mesh lies in (0.1, 0.9). (1,024 of them: a standard error
    under 1.5% of the share, 0.1 s for two tests of a closed 10k cloud; 4,096 took 0.38 s.)"""
    from deepcsp.fields.encodings import grid_vertices
    from deepcsp.geometry.inside import winding_numbers

    d = np.linalg.norm(grid.values.detach().cpu().double().numpy(), axis=1)
    ids = np.nonzero(d > margin)[0]
    if len(ids) == 0:
        return 0.0
    if len(ids) > n:
        ids = np.sort(np.random.default_rng(0).choice(ids, n, replace=False))
    x = grid_vertices(grid.res, grid.half, ids=grid.active.cpu()[torch.from_numpy(ids)]).double().numpy()
    w = np.abs(winding_numbers(vertices, faces, x))
    return float(((w > 0.1) & (w < 0.9)).mean())


def set_sides(fld: NeuralField, closed: ClosedMesh) -> None:
    """Give every active fine and coarse vertex of a band-grid field the side of its winding number
    about a mesh that passed :func:`closed_test`: the field becomes closed (signed distances,
    watertight extraction)."""
    from deepcsp.fields.encodings import grid_vertices
    from deepcsp.geometry.inside import winding_numbers

    grid = fld.module.encoder
    fine = grid_vertices(grid.res, grid.half, ids=grid.active.cpu()).double().numpy()
    w_fine = np.abs(winding_numbers(closed.vertices, closed.faces, fine))
    grid.set_sides(torch.from_numpy(w_fine < 0.5), torch.from_numpy(closed.coarse_winding < 0.5))


def _global_field(points: np.ndarray, model_path: str | None, device: str) -> Field:
    from deepcsp.fields.conditional import load_model, shipped_model_path
    from deepcsp.train.reconstruct import ReconstructConfig, reconstruct_points

    loaded = load_model(model_path or shipped_model_path(), device=device)
    return reconstruct_points(loaded.model, points, ReconstructConfig(n_dense=0, device=device)).field


class FieldOracle:
    """Any field's closest points in normalised NumPy coordinates: the oracle interface that
    :func:`deepcsp.fit.band.collocate` wants."""

    def __init__(self, fld: Field):
        self.fld = fld

    def query(self, points: np.ndarray) -> ClosestPoints:
        x = torch.as_tensor(points, dtype=torch.float32, device=self.fld.device)
        if len(x):
            cp = map_rows(self.fld.closest_points_normalized, x, self.fld.chunk).cpu().double().numpy()
        else:
            cp = np.zeros((0, 3))
        return ClosestPoints(cp, np.linalg.norm(points - cp, axis=1), np.zeros(len(cp), np.int64), None)


def band_grid_field(fld: Field, resolution: int = 192, coarse_resolution: int = 48, band: float = 0.06) -> NeuralField:
    """A band-grid field collocated from any field (e.g. the global model's), saveable and
    loadable like a fitted one; ``band`` is the half-width in normalised units."""
    if isinstance(fld, NeuralField) and fld.config.encoding == "band_grid":
        return fld
    fcfg = FieldConfig(resolution=resolution, coarse_resolution=coarse_resolution)
    module = build_module(fcfg)
    stats = collocate(module.encoder, FieldOracle(fld), band, fcfg.kind, fcfg.output)
    fcfg.n_active = stats.n_active
    return NeuralField(module, fcfg, fld.normalization, meta={"source": "collocated from another field"})
