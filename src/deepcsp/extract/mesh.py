"""Single-layer mesh extraction from a closest-surface-point field (dual contouring on CSP
pseudo-signs, or on true signs for closed fields).

Two paths share the grid, the candidate-cell search and the CSP snapping:

* **Closed fields** (``field.closed``, e.g. the exact field of a watertight mesh or a field fitted
  to one; ``ExtractConfig.use_signs``): crossed edges are the edges whose corners have opposite
  signed distances, which makes the mesh closed, manifold and outward by construction (thin parts
  stay closed too, but parts thinner than a cell that no grid corner falls inside are lost, as with
  marching cubes); see :mod:`deepcsp.extract.signed`.
* **Open fields** (everything else, and ``use_signs=False``): the pseudo-sign pipeline of
  :mod:`deepcsp.extract.pseudo` (its steps are described there).

Both paths can run on a grid coarser than ``resolution`` (``topology_resolution``; automatic for
open-surface extraction of fitted band grids) and the mesh is then refined by subdivision and CSP
projection (:mod:`deepcsp.extract.refine`): the topology comes from a grid on which the field's
errors are small, the geometry from the field at full resolution. Where the automatic grid of a
refined field cuts a strip between two holes to a point (a pinch), the mesh is made again on a finer
grid and kept when it has fewer defects; pinches left are bridged before the refinement widens them,
and small holes the refined mesh shows on the field's surface are filled as on the topology grid
(where a twist or a bridge between two sheets keeps one open, those faces are cut out first:
:mod:`deepcsp.extract.mend`).
Where the refined mesh has walls (faces well off the field's surface, joining two sheets a cell or
two apart at their rims), the finer grid is tried too and kept when it has fewer defects and walls.
"""

from __future__ import annotations

import functools
import time
from collections.abc import Callable
from dataclasses import dataclass, replace

import numpy as np

from deepcsp.constants import TWIST_CELLS, UNMERGE_TIE_AREA, UNMERGE_TIE_SHARE, WALL_CELLS
from deepcsp.extract.config import (
    TOPOLOGY_CELLS,
    TOPOLOGY_CELLS_PINCHED,
    TOPOLOGY_CELLS_REFINED,
    ExtractConfig,
    ExtractResult,
    PathMesh,
)
from deepcsp.extract.grid import Queries, unit
from deepcsp.extract.mend import unbridge_holes, untwist_holes
from deepcsp.extract.merge import MergedQueries, close_sheet_gate
from deepcsp.extract.pseudo import fill_surface_holes, pseudo_sign_mesh
from deepcsp.extract.refine import refine_mesh
from deepcsp.extract.sharpen import sharpen_features
from deepcsp.extract.signed import signed_dual_contour
from deepcsp.extract.topology import (
    bridge_pinches,
    defect_count,
    drop_specks,
    pinched_vertices,
    remove_small_components,
)
from deepcsp.extract.unmerge import unmerge_sheets
from deepcsp.fields.query import Field
from deepcsp.geometry.cleanup import face_areas


def extract_mesh(field: Field, config: ExtractConfig | None = None) -> ExtractResult:
    """Extract a single-layer, consistently wound triangle mesh of the surface of ``field``.

    Works with any :class:`~deepcsp.fields.query.Field` (fitted CSP, UDF baseline, exact oracle).
    Closed fields (``field.closed``) use true signs (:mod:`deepcsp.extract.signed`: watertight,
    outward) unless ``config.use_signs`` is False; other fields use CSP pseudo-signs.
    Returns vertices in the field's input coordinates (``field.normalization.to_input``).
    """
    config = config or ExtractConfig()
    config.check()
    t0 = time.perf_counter()
    timings: dict[str, float] = {}
    R = int(config.resolution)
    h = 1.0 / R
    signed = config.use_signs and bool(getattr(field, "closed", False))
    R_topo, passes = topology_plan(field, config, signed)
    path_config = replace(config, resolution=R_topo) if R_topo != R else config
    n_pinched, finer = 0, None
    finer_grid = functools.cache(functools.partial(_finer_mesh, field, config))  # made once for pinches and walls
    if signed:
        fq = Queries(field)
        mesh = _signed_mesh(fq, path_config, timings)
    else:
        fq, mesh = _pseudo_mesh(field, path_config, timings)
        n_pinched = _retry_pinches(field, config, mesh)
        finer = _unpinched(finer_grid, mesh, n_pinched, timings) if n_pinched else None
        if finer is not None:
            fq, mesh, (R_topo, passes) = finer
    refined = _refine(field, config, fq, mesh, (R_topo, passes), n_pinched > 0, timings)
    n_walls = _walls(field, config, fq, refined, mesh.bias, (R_topo, passes)) if finer is None and not signed else 0
    unwalled = _unwalled(field, config, finer_grid, refined, n_walls, timings) if n_walls else None
    if unwalled is not None:
        fq, mesh, (R_topo, passes), refined = unwalled
    verts, faces, bias = refined.vertices, refined.faces, mesh.bias
    n_bridged, n_refilled = refined.n_bridged, refined.n_refilled
    n_merged, n_unmerged = getattr(fq, "n_merged", 0), 0
    if config.unmerge_sheets and isinstance(fq, MergedQueries) and fq.n_merged:
        tick = time.perf_counter()
        raw = Queries(field)  # both sheets again: the mesh and its points leave the mid-surface
        two = unmerge_sheets(raw, verts, faces, fq.gap)
        verts, faces, n_unmerged = two.vertices, two.faces, two.n_split
        raw.count += fq.count
        fq = raw
        timings["unmerge"] = time.perf_counter() - tick

    n_sharpened = 0
    if config.sharpen > 0 and mesh.noise <= config.noisy_above * h:
        tick = time.perf_counter()
        sharp = sharpen_features(fq, verts, faces, config.sharpen * h, bias)
        verts, n_sharpened = sharp.vertices, int(sharp.moved.sum())
        timings["sharpen"] = time.perf_counter() - tick

    n_mesh_eval = fq.count
    points = np.zeros((0, 3))
    if config.points > 0 and len(faces):
        tick = time.perf_counter()
        points = project_points(fq, verts, faces, config.points, sigma=0.5 * h, bias=bias, seed=config.seed)
        timings["points"] = time.perf_counter() - tick
        points = field.normalization.to_input(points)

    verts_in = field.normalization.to_input(verts)
    return ExtractResult(
        vertices=verts_in,
        faces=faces,
        points=points,
        n_evaluations=n_mesh_eval,
        dense_evaluations=(R + 1) ** 3,
        seconds=time.perf_counter() - t0,
        resolution=R,
        bias=bias,
        noise=mesh.noise,
        n_candidate_cells=mesh.n_cells,
        n_crossings=mesh.n_crossings,
        timings=timings,
        n_point_evaluations=fq.count - n_mesh_eval,
        n_filled_holes=mesh.n_filled + n_refilled,
        signed=mesh.signed,
        n_closure_cells=mesh.n_closure_cells,
        n_thin_flips=mesh.n_thin_flips,
        topology_resolution=R_topo,
        refine_passes=passes,
        n_merged=n_merged,
        n_unmerged=n_unmerged,
        n_sharpened=n_sharpened,
        n_pinched=n_pinched,
        unpinched=finer is not None,
        n_bridged=n_bridged,
        n_walls=n_walls,
        unwalled=unwalled is not None,
    )


def _pseudo_mesh(field: Field, config: ExtractConfig, timings: dict) -> tuple[Queries, PathMesh]:
    """Pseudo-sign mesh on the topology grid ``config.resolution`` and the queries it used. With
    ``merge_sheets`` and a field with close sheets (:func:`~deepcsp.extract.merge.close_sheet_gate`)
    the mesh is also made with those sheets merged (:class:`~deepcsp.extract.merge.MergedQueries`),
    and that one is kept when it has fewer pieces + boundary loops + inconsistent edges (merging
    mends a shredded close pair but tears where close sheets move apart: see :mod:`deepcsp.extract.merge`)."""
    fq = Queries(field)
    mesh = pseudo_sign_mesh(fq, config, timings)
    gate = close_sheet_gate(field) if config.merge_sheets > 0 else None
    if gate is None:
        return fq, mesh
    tick = time.perf_counter()
    mq = MergedQueries(field, config.merge_sheets / int(config.resolution), gate)
    merged = pseudo_sign_mesh(mq, config, {})
    timings["merge"] = time.perf_counter() - tick
    mq.count += fq.count
    if mq.n_merged:
        merged_defects, plain_defects = _defects(merged), _defects(mesh)
        if merged_defects < plain_defects or (
            merged_defects == plain_defects and _tie_goes_to_split(field, merged, mesh, mq.gap, config)
        ):
            return mq, merged
    fq.count = mq.count
    return fq, mesh


@dataclass
class _RefinedMesh:
    """A path's mesh after bridging, refinement and the refined level's hole filling."""

    vertices: np.ndarray
    faces: np.ndarray
    n_bridged: int = 0
    n_refilled: int = 0


def _refine(
    field: Field, config: ExtractConfig, fq: Queries, mesh: PathMesh, plan: tuple[int, int], bridge: bool, timings: dict
) -> _RefinedMesh:
    """``mesh`` (made on the topology grid ``plan[0]``) refined ``plan[1]`` times: pinches left are
    bridged first when ``bridge`` (their strips put back, for the refinement to widen), and holes the
    topology grid's fill missed, a few cells wide at full resolution (a crease at a thin part's tip),
    are filled after it for fields fitted to meshes (cloud fields leave holes to the cloud's own
    tests, :mod:`deepcsp.pipelines.holes`), twisted and bridged ones too (:mod:`deepcsp.extract.mend`)."""
    R_topo, passes = plan
    verts, faces = mesh.vertices, mesh.faces
    n_bridged = n_refilled = 0
    if not passes:
        return _RefinedMesh(verts, faces)
    if bridge:
        bridged = bridge_pinches(faces, len(verts))
        verts, faces, n_bridged = verts[bridged.source], bridged.faces, bridged.n_bridged
    tick = time.perf_counter()
    verts, faces = refine_mesh(fq, verts, faces, passes, 1.0 / R_topo, mesh.bias, config.boundary_reach)
    if config.fill_holes > 0 and not mesh.signed and _refined(field):
        h = 1.0 / (R_topo * 2**passes)
        fill = functools.partial(
            fill_surface_holes,
            fq,
            max_edges=config.fill_holes,
            h=h,
            bias=mesh.bias,
            noise=mesh.noise,
            rel_tol=config.fill_tolerance,
            error_cap=config.fill_field_error,
        )
        verts, faces, n_refilled = fill(verts, faces)
        verts, faces, n_untwisted = untwist_holes(verts, faces, fill, TWIST_CELLS * h, config.speck_faces)
        verts, faces, n_unbridged = unbridge_holes(
            fq, verts, faces, fill, WALL_CELLS * h, mesh.bias, config.fill_holes, config.speck_faces
        )
        n_refilled += n_untwisted + n_unbridged
    timings["refine"] = timings.get("refine", 0.0) + time.perf_counter() - tick
    return _RefinedMesh(verts, faces, n_bridged, n_refilled)


def _walls(
    field: Field, config: ExtractConfig, fq: Queries, refined: _RefinedMesh, bias: float, plan: tuple[int, int]
) -> int:
    """Faces of a refined mesh made on the automatic topology grid of a refined field whose centroid
    lies more than ``WALL_CELLS`` cells of the full grid off the field's surface: walls joining two
    sheets a topology cell or two apart across their rims (two rectangles 2 cells apart: 18 such
    faces; none on a finer topology grid); else 0."""
    R_topo, passes = plan
    if not _retries(field, config) or not passes or len(refined.faces) == 0:
        return 0
    return int(
        (fq.off_surface(refined.vertices[refined.faces].mean(1), bias) > WALL_CELLS / (R_topo * 2**passes)).sum()
    )


def _unwalled(
    field: Field, config: ExtractConfig, finer_grid: Callable, refined: _RefinedMesh, n_walls: int, timings: dict
):
    """``(queries, mesh, plan, refined mesh)`` on the finer topology grid (``finer_grid()``:
    :func:`_finer_mesh`) for a refined mesh with ``n_walls`` walls (:func:`_walls`), when it has
    fewer pieces + boundary loops + inconsistent edges + walls; else None."""
    tick = time.perf_counter()
    fq, finer, plan = finer_grid()
    bridge = len(pinched_vertices(finer.faces, len(finer.vertices))) > 0
    other = _refine(field, config, fq, finer, plan, bridge, {})
    timings["unwall"] = time.perf_counter() - tick
    if _defects(other) + _walls(field, config, fq, other, finer.bias, plan) < _defects(refined) + n_walls:
        return fq, finer, plan, other
    return None


def _finer_mesh(field: Field, config: ExtractConfig) -> tuple[Queries, PathMesh, tuple[int, int]]:
    """The path's mesh on the finer topology grid of ``TOPOLOGY_CELLS_PINCHED``, its queries and
    plan; it leaves specks beside the surface (blobs of a few dozen faces): dropped as the signed
    path does."""
    plan = topology_plan(field, config, signed=False, cells=TOPOLOGY_CELLS_PINCHED)
    fq, finer = _pseudo_mesh(field, replace(config, resolution=plan[0]), {})
    v, f = drop_specks(finer.vertices, finer.faces, config.speck_faces, config.speck_reach / plan[0])
    return fq, replace(finer, vertices=v, faces=f), plan


def _retry_pinches(field: Field, config: ExtractConfig, mesh: PathMesh) -> int:
    """Pinched vertices of ``mesh`` (:func:`pinched_vertices`) when it was made on the automatic
    topology grid of a refined field, else 0: how many made :func:`_unpinched` try a finer grid. Not
    for fields without a refined level (fitted to clouds): on their noisier values a finer grid's mesh
    had more defects (training and validation clouds, a 1.5-cell grid: on 13 of 13 pinched meshes)."""
    if not _retries(field, config):
        return 0
    return len(pinched_vertices(mesh.faces, len(mesh.vertices)))


def _unpinched(finer_grid: Callable, mesh: PathMesh, n_pinched: int, timings: dict):
    """``(queries, mesh, plan)`` on the finer topology grid (``finer_grid()``: :func:`_finer_mesh`), for a
    ``mesh`` with ``n_pinched`` pinched boundary vertices (a strip narrower than a grid cell between
    two holes, as between an airplane's windows, cut to a point; :func:`_retry_pinches`), when the
    finer grid's mesh has fewer defects: :func:`_defects` and two more for each pinched vertex (it is
    not manifold, and the two loops it joins count as one); else None. The finer grid is not the
    default: it shreds some close sheet pairs that the coarser one keeps."""
    tick = time.perf_counter()
    fq, finer, plan = finer_grid()
    timings["unpinch"] = time.perf_counter() - tick
    finer_pinched = len(pinched_vertices(finer.faces, len(finer.vertices)))
    return (fq, finer, plan) if _defects(finer) + 2 * finer_pinched < _defects(mesh) + 2 * n_pinched else None


def _tie_goes_to_split(field: Field, merged: PathMesh, plain: PathMesh, gap: float, config: ExtractConfig) -> bool:
    """With ``unmerge_sheets``, a merged mesh with as few defects as the plain one is kept when
    UNMERGE_TIE_SHARE of its vertices split into two sheets and the plain mesh has less than
    UNMERGE_TIE_AREA times its area: the plain mesh is then one clean sheet of a pair (two rectangles
    0.1 cells apart read from a file: area 0.57, against 0.995 merged and split), not both sheets
    (rectangles 1.5 cells apart: both plain, area 1.006, while a third of the merged mesh split and
    the rest tore, 11 loops; 2 cells apart: nothing splits)."""
    if not config.unmerge_sheets or len(merged.faces) == 0:
        return False
    if (
        face_areas(plain.vertices, plain.faces).sum()
        >= UNMERGE_TIE_AREA * face_areas(merged.vertices, merged.faces).sum()
    ):
        return False
    split = unmerge_sheets(field, merged.vertices, merged.faces, gap)
    return split.n_split >= UNMERGE_TIE_SHARE * len(merged.vertices)


def _defects(mesh: PathMesh | _RefinedMesh) -> int:
    """Pieces + boundary loops + inconsistent edges of a path's mesh, refined or not."""
    return defect_count(mesh.faces, len(mesh.vertices))


def topology_plan(field: Field, config: ExtractConfig, signed: bool, cells: float = 0.0) -> tuple[int, int]:
    """``(topology resolution, refinement passes)`` for extracting ``field`` with ``config`` (see
    ``ExtractConfig.topology_resolution``): passes = the number of halvings of the topology grid's
    cell that comes closest to ``1 / resolution`` (at least one; an automatic topology grid that
    would need none is the full grid). ``cells``: field cells per automatic topology cell (0: the
    default for the field)."""
    R = int(config.resolution)
    topo = int(config.topology_resolution)
    if topo == 0:
        cell = getattr(field, "grid_cell", None)
        cells = cells or (TOPOLOGY_CELLS_REFINED if _refined(field) else TOPOLOGY_CELLS)
        topo = max(16, int(1.0 / (cells * cell))) if (cell and not signed) else R
    topo = min(topo, R)
    passes = int(round(np.log2(R / topo))) if topo < R else 0
    if passes == 0 and config.topology_resolution == 0:
        return R, 0  # automatic and within a factor sqrt(2) of the full grid: the full grid
    return (topo, max(1, passes)) if topo < R else (R, 0)


def _retries(field: Field, config: ExtractConfig) -> bool:
    """Whether a mesh may be made again on the finer grid of ``TOPOLOGY_CELLS_PINCHED`` (pinches,
    walls): on the automatic topology grid of a refined field only."""
    return config.topology_resolution == 0 and _refined(field)


def _refined(field: Field) -> bool:
    """Whether a band-grid field has a refined level (fields fitted to meshes; not to clouds)."""
    return getattr(getattr(field, "config", None), "refine_factor", 0) > 1


def _signed_mesh(fq: Queries, config: ExtractConfig, timings: dict) -> PathMesh:
    """True-sign dual contouring (closed fields), then the specks beside the surface and the optional
    small-component removal go."""
    R = int(config.resolution)
    h = 1.0 / R
    origin = -0.5 + config.grid_shift * h
    sm = signed_dual_contour(
        fq,
        R,
        origin,
        max(0.5 * h, config.margin),
        sparse=config.sparse,
        debias=config.debias,
        agree=config.agree,
        thin_parts=config.thin_parts,
        timings=timings,
        noisy_above=config.noisy_above,
        noisy_samples=config.noisy_samples,
        dilate=config.dilate * h,
    )
    tick = time.perf_counter()
    verts, faces = drop_specks(sm.vertices, sm.faces, config.speck_faces, config.speck_reach * h)
    verts, faces = remove_small_components(verts, faces, config.min_component_faces)
    timings["mesh"] = time.perf_counter() - tick
    return replace(sm, vertices=verts, faces=faces)


def project_points(
    queries: Queries | Field,
    vertices: np.ndarray,
    faces: np.ndarray,
    n: int,
    sigma: float,
    bias: float = 0.0,
    seed: int = 0,
) -> np.ndarray:
    """``(n, 3)`` points on the field's surface by one-shot projection: area-weighted samples of
    the mesh ``(vertices (V, 3), faces (F, 3))`` (normalised coordinates), jittered with Gaussian
    ``sigma``, moved to ``CSP(x) + bias n(x)``. Returns normalised coordinates."""
    from deepcsp.geometry.sampling import sample_surface

    fq = queries if isinstance(queries, Queries) else Queries(queries)
    rng = np.random.default_rng(seed)
    x = sample_surface(vertices, faces, n, rng).points + sigma * rng.standard_normal((n, 3))
    x32, q = fq.closest(x)
    nx, _ = unit(x32 - q)
    return q + bias * nx
