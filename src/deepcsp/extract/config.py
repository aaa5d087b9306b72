"""What an extraction is asked for and what it gives back: :class:`ExtractConfig` (every setting of
both paths, checked), :class:`ExtractResult` (the mesh in input coordinates and its counters), and
:class:`PathMesh`, what either path (:mod:`deepcsp.extract.signed`, :mod:`deepcsp.extract.pseudo`)
hands to :func:`~deepcsp.extract.mesh.extract_mesh`.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from dataclasses import field as _field

import numpy as np

from deepcsp._validate import Fields
from deepcsp.constants import (  # noqa: F401
    MAX_POINTS,
    MAX_RESOLUTION,
    TOPOLOGY_CELLS,
    TOPOLOGY_CELLS_PINCHED,
    TOPOLOGY_CELLS_REFINED,
)
from deepcsp.extract.topology import MeshStats, mesh_stats


@dataclass
class ExtractConfig:
    """How a mesh is extracted from a field.

    Closed fields take the signed path (``use_signs``), which uses ``resolution``,
    ``topology_resolution`` (when set), ``sparse``, ``margin``, ``debias``, ``agree``, ``grid_shift``,
    ``noisy_above``, ``noisy_samples``, ``dilate``, ``thin_parts``, ``min_component_faces``, ``speck_faces``,
    ``speck_reach`` and the point options;
    the other settings belong to the pseudo-sign path of open fields."""

    resolution: int = 256
    """Grid cells per side of the normalised cube (cell size 1/resolution of the cube side): the
    detail of the output mesh."""
    topology_resolution: int = 0
    """Grid that decides the topology, refined up to ``resolution`` by subdivision and CSP projection.
    0 = auto: 2/3 of an open band-grid field's resolution (1/3 unrefined), else ``resolution``; when
    the 2/3 grid pinches the mesh's boundary (two holes touching at a vertex), also 0.94 of it, and
    the mesh with fewer defects is kept (``TOPOLOGY_CELLS_PINCHED``)."""
    sparse: bool = True
    """Evaluate the field only near the surface (coarse to fine); False evaluates every corner of
    the dense grid (for comparison)."""
    margin: float = 0.003
    """Extra distance (normalised units) in the coarse-to-fine test, covering field error; at
    least half a cell is always used."""
    flip_cos: float = 0.0
    """An edge's corners are on opposite sides of a sheet when their directions' cosine is below this."""
    side_cos: float = -1.0
    """Crease rule: also cross edges whose far corner lies behind the near one's tangent plane, below
    this direction cosine (-1: off; 0.5 finds 90-degree CAD creases, adds faces at open boundaries)."""
    crease_accept: float = 0.1
    """Crease rule: the plane-edge intersection must lie within this many cells of the surface."""
    cross_sheets: bool = True
    """Sheet rule, for sheets within a cell or two (folds, thin parts): suspect edges are sampled and
    crossed where they straddle exactly one sheet (``planes.straddles``); False: the flip test alone."""
    sheet_accept: float = 0.1
    """Sheet rule: the tangent plane's point on the edge must lie within this many cells of the surface."""
    sheet_max_noise: float = 0.5
    """Sheet rule: skipped when the estimated distance noise exceeds this many cells."""
    noisy_above: float = 0.05
    """Distance noise, in cells, above which flipped edges are judged by the tangent planes of
    ``noisy_samples`` samples (which also place crossings and vertices) instead of one query."""
    noisy_samples: int = 9
    """Noisy distances: points (corners included) at which every flipped edge is sampled."""
    verify_flips: float = 0.01
    """Sheet rule: flipped edges whose crossing lies over this many cells (or 4 noise deviations) off
    the surface are sampled, and kept only if they straddle exactly one sheet; 0 checks none."""
    sheet_samples: int = 17
    """Sheet rule: points (corners included) at which a checked edge is sampled."""
    straddle_slack: float = 0.3
    """Sheet rule: two samples straddle a sheet when their distances sum to at most their spacing
    plus twice the field's local error, capped at this many cells (closer sheets are not told apart)."""
    agree: float = 2.0
    """Corners of a crossed edge must have closest points within ``agree`` cells of each other."""
    accept: float = 0.35
    """The interpolated crossing must lie within ``accept`` cells of the surface (or 8 estimated
    distance-noise standard deviations, whichever is larger)."""
    debias: bool = True
    """Estimate a constant distance bias from the crossed edges and remove it."""
    boundary_reach: float = 1.0
    """Open boundaries: each boundary vertex is moved to ``CSP(v + reach h t)`` (``t`` the outward
    tangent), which lands on the sheet's own boundary when it lies within reach (0 disables)."""
    split_sheets: bool = True
    """One dual vertex per sheet in a cell (manifold dual contouring) instead of one per cell; False
    joins two sheets that pass through one cell (the old behaviour)."""
    fill_holes: int = 24
    """Close boundary loops of at most this many edges where the field says there is surface
    (``fill_tolerance``); non-manifold fins are dropped first. Done on the topology grid's mesh and,
    for fields fitted to meshes, again on the refined one. 0 disables all of it."""
    fill_tolerance: float = 0.5
    """Hole filling: allowed distance of the fill from the surface, as a fraction of the loop's
    mean radius (a true round hole's centre lies one radius off the surface)."""
    fill_field_error: float = 0.25
    """Hole filling: the tolerance grows by twice the field's own error at the fill's centre (0 for
    an exact field), capped at this many cells (0: no growth)."""
    zip_slits: float = 0.15
    """Pseudo-sign path: close slits, boundary loops of any length whose ear-clipped patch is at
    most twice this many cells wide on average and lies within this many cells of the field's
    surface: tears along creases (cube_no_bottom with a 180 topology grid: 8 slits, 0.04-0.09
    cells wide, 0.07 cells off; airplane_holes' windows: 2.5-3.4 cells off). 0 disables."""
    min_component_faces: int = 0
    """Drop connected components with fewer faces than this (0 keeps everything)."""
    speck_faces: int = 48
    """Signed path: drop components of at most this many faces that lie within ``speck_reach``
    cells of a component ten times their size: a corner or two whose sign the field gets wrong
    beside its surface (measured: 13-36 of them on the fitted teddy, nefertiti and Stanford dragon
    at 256, 12-36 faces each, 0-2.3 cells from the main mesh; benchmarks/RESULTS.md, mesh
    extraction). A speck far from everything stays. 0 keeps them all."""
    speck_reach: float = 3.0
    """Signed path: how close (cells, vertex to vertex) a small component must be to a larger one to
    count as a speck (``speck_faces``)."""
    grid_shift: float = 0.1234
    """Offset of the grid, in cells, so that axis-aligned sheets at round coordinates do not pass
    exactly through grid corners."""
    use_signs: bool = True
    """Closed fields: decide crossings by true inside/outside signs (watertight, outward); False
    forces the CSP pseudo-sign path. Ignored for open fields."""
    dilate: float = 0.5
    """Signed path: contour ``signed distance = dilate`` cells and move the vertices onto the surface
    with CSP, so that parts thinner than a cell stay closed (narrower gaps close); 0: the surface."""
    thin_parts: bool = False
    """Signed path with ``dilate=0``: give signs to parts thinner than a cell between two outside
    corners, from the corners' CSP directions (superseded by ``dilate``)."""
    merge_sheets: float = 1.0
    """Pseudo-sign path, band-grid fields: also mesh sheets closer than this many topology cells as
    one mid-surface sheet, kept if it has fewer pieces + loops + inconsistent edges; 0: never."""
    unmerge_sheets: bool = True
    """After a merge (``merge_sheets``): split the merged mid-surface back into the two sheets
    wherever the field sees two (:mod:`deepcsp.extract.unmerge`), so that close pairs come out as
    two layers and folds as one sheet bent back; False keeps the single mid-surface."""
    sharpen: float = 1.0
    """Move vertices onto the creases and corners the field shows (:mod:`deepcsp.extract.sharpen`),
    reading tangent planes this many cells around each vertex; 0: never. Skipped when the distances
    are noisy (``noisy_above``)."""
    points: int = 0
    """Also sample this many points on the surface by one-shot projection (0: none)."""
    seed: int = 0
    """Seed of the point sampling."""

    def __post_init__(self) -> None:
        self.check()

    def check(self) -> None:
        """Raise :class:`~deepcsp._validate.OptionError` (a ValueError) naming the first bad setting."""
        f = Fields(self)
        f.integer("resolution", 4, MAX_RESOLUTION)
        if self.topology_resolution != 0:
            f.integer("topology_resolution", 4, MAX_RESOLUTION)
        for name in ("sparse", "cross_sheets", "debias", "split_sheets", "unmerge_sheets", "use_signs", "thin_parts"):
            f.flag(name)
        f.number("flip_cos", -1.0, 1.0, max_open=True)
        f.number("side_cos", -1.0, 1.0)
        for name in (
            "merge_sheets",
            "margin",
            "crease_accept",
            "sheet_accept",
            "sheet_max_noise",
            "noisy_above",
            "verify_flips",
            "straddle_slack",
            "boundary_reach",
            "fill_field_error",
            "zip_slits",
        ):
            f.number(name, 0.0, 1e6)
        for name in ("agree", "accept"):
            f.number(name, 0.0, 1e6, min_open=True)
        f.integer("noisy_samples", 3, 1000)
        f.integer("sheet_samples", 3, 1000)
        f.integer("fill_holes", 0, 10**6)
        f.number("fill_tolerance", 0.0, 1.0, max_open=True)
        f.number("dilate", 0.0, 2.0)
        f.number("sharpen", 0.0, 4.0)
        f.integer("min_component_faces", 0, 2**31 - 1)
        f.integer("speck_faces", 0, 2**31 - 1)
        f.number("speck_reach", 0.0, 1e6)
        f.number("grid_shift", -1.0, 1.0)
        f.integer("points", 0, MAX_POINTS)
        f.integer("seed", 0, 2**63 - 1)


@dataclass
class ExtractResult:
    """An extracted mesh in the input's coordinates.

    Attributes
    ----------
    vertices : (V, 3) float64
    faces : (F, 3) int64
        Consistently wound triangles.
    points : (N, 3) float64
        Points projected onto the surface (empty unless ``config.points > 0``).
    n_evaluations : int
        Field queries (points) spent on the mesh, all stages together.
    dense_evaluations : int
        Corners of the dense grid, ``(resolution + 1)^3``, for comparison.
    seconds : float
        Wall time of the extraction (points included).
    bias : float
        Distance bias removed (normalised units); ``noise``: robust spread of the per-edge
        bias estimates (normalised units).
    stats : MeshStats
        Topology checks of the result (boundary loops, winding, components...), computed when
        first read (a pipeline that extracts a mesh only for its topology or signs skips them).
    timings : dict
        Seconds per stage.
    n_filled_holes : int
        Small boundary loops closed by the hole-filling pass (``config.fill_holes``).
    """

    vertices: np.ndarray
    faces: np.ndarray
    points: np.ndarray
    n_evaluations: int
    dense_evaluations: int
    seconds: float
    resolution: int
    bias: float
    noise: float
    n_candidate_cells: int
    n_crossings: int
    timings: dict = _field(default_factory=dict)
    n_point_evaluations: int = 0
    n_filled_holes: int = 0
    signed: bool = False
    """True when the closed-field path (true signs) made the mesh."""
    n_closure_cells: int = 0
    """Signed path: cells added so that every sign-changing edge has its four cells."""
    n_thin_flips: int = 0
    """Signed path: corners whose sign was flipped to capture a part or gap thinner than a cell."""
    topology_resolution: int = 0
    """Resolution of the grid the mesh was extracted on (``resolution`` unless refined)."""
    refine_passes: int = 0
    """Subdivision-and-projection passes after extraction (0: none)."""
    n_merged: int = 0
    """Pseudo-sign path: field queries answered on the mid-surface of two sheets closer than
    ``merge_sheets`` topology cells (0: no sheets were merged into one)."""
    n_unmerged: int = 0
    """Vertices of a merged mid-surface split back into two sheets (``unmerge_sheets``)."""
    n_sharpened: int = 0
    """Vertices moved onto a crease or corner (``sharpen``)."""
    n_pinched: int = 0
    """Pseudo-sign path, automatic topology grid of a refined field: vertices where that grid's mesh
    pinched two boundary loops together, which made it try the finer ``TOPOLOGY_CELLS_PINCHED`` grid."""
    unpinched: bool = False
    """The finer grid's mesh was kept (``topology_resolution`` is then that grid)."""
    n_bridged: int = 0
    """Pinches left in the mesh kept whose strip was put back before refinement
    (:func:`~deepcsp.extract.topology.bridge_pinches`)."""
    n_walls: int = 0
    """Pseudo-sign path, automatic topology grid of a refined field: faces of its refined mesh whose
    centroid lies more than ``WALL_CELLS`` cells off the field's surface (walls joining two sheets),
    which made it try the finer ``TOPOLOGY_CELLS_PINCHED`` grid."""
    unwalled: bool = False
    """The finer grid's mesh was kept for its fewer walls and defects."""

    @functools.cached_property
    def stats(self) -> MeshStats:
        return mesh_stats(self.vertices, self.faces)

    @property
    def evaluation_fraction(self) -> float:
        """Field queries relative to a dense grid's corners at the same resolution."""
        return self.n_evaluations / max(self.dense_evaluations, 1)


@dataclass
class PathMesh:
    """What an extraction path (signed or pseudo-sign) hands to ``extract_mesh``, in normalised
    coordinates: the mesh, the distance bias and noise it estimated, and its counters."""

    vertices: np.ndarray
    faces: np.ndarray
    bias: float
    noise: float
    n_cells: int
    n_crossings: int
    n_filled: int = 0
    """Pseudo-sign path: small holes closed."""
    signed: bool = False
    """True when true inside/outside signs made the mesh."""
    n_closure_cells: int = 0
    """Signed path: cells added by the closure step (0 for an exact field)."""
    n_thin_flips: int = 0
    """Signed path: corners flipped to keep parts thinner than a cell."""
