"""Tolerances and defaults shared by code and tests, in one place (as trimesh's ``constants.tol``).

Lengths are in normalised units (the cube has side ``2 * HALF_SIDE``) unless the name ends in
``_CELLS`` (fine cells of a field's band grid) or ``_REL`` (relative to the bounding-box diagonal).
Where a value was chosen by measurement, benchmarks/RESULTS.md holds the figures.
"""

from __future__ import annotations

# --------------------------------------------------------------------------- inputs and normalisation

#: Absolute tolerance of exact closest-point queries, in normalised units.
EXACT_ATOL = 1e-6
#: Faces with area below this (relative to the squared bounding-box diagonal) count as degenerate.
DEGENERATE_AREA_REL = 1e-14
#: Half side of the normalised cube: inputs are mapped into [-HALF_SIDE, HALF_SIDE]^3.
HALF_SIDE = 0.5
#: Fraction of the cube side the input's longest bounding-box side is scaled to.
FILL = 0.8
#: Default cap on the size of an input mesh (faces) or cloud (points); see ``io.load_surface``.
MAX_ELEMENTS = 20_000_000
#: Band, as a fraction of the bounding-box diagonal, in which fields are evaluated.
EVAL_BAND = 0.05

# --------------------------------------------------------------------------- fields: normals and curvatures

#: Band grids: central-difference step and back-off offset of curvatures, in fine cells.
GRID_STEP_CELLS = 2.0
#: Band grids: central-difference step of Jacobian normals, in fine cells.
GRID_NORMAL_STEP_CELLS = 0.25
#: Band grids: back-off distance from the surface for normals and curvatures, in fine cells.
GRID_OFFSET_CELLS = 4.0
#: Other fields: central-difference step.
DEFAULT_STEP = 1e-3
#: Other fields: back-off distance from the surface.
DEFAULT_OFFSET = 0.02
#: Extra refinement passes of the direction back-off near the surface.
BACKOFF_REFINE = 2
#: ``method="corners"``: grid vertices per axis of the stencil around CSP(p).
CORNER_STENCIL = 4
#: ``method="corners"``: width of the proximity kernel, in fine cells.
CORNER_SIGMA_CELLS = 0.5
#: ``method="corners"``: width of the tangent-plane residual kernel, in fine cells.
CORNER_TAU_CELLS = 0.02
#: ``method="corners"``: stored displacements shorter than this (fine cells) are down-weighted.
CORNER_MIN_LEN_CELLS = 0.25
#: ``method="corners"``: points per batch of the stencil (its memory is ~64 vertices x 3 x 8 bytes per point).
CORNER_CHUNK = 8192
#: ``method="corners"``: a query nearer the surface than this (fine cells) takes the stencil's side.
ON_SURFACE_CELLS = 1e-3
#: ``orient="outward"``: probe distance along the normal for band grids, in fine cells.
ORIENT_CELLS = 0.5
#: ``orient="outward"``: probe distance along the normal for other fields.
ORIENT_STEP = 2e-3
#: Nearest-sheet rule of band grids: allowed off-plane distance, as a fraction of the distance
#: between closest points times the sine of the angle between their normals.
CURVATURE_ALLOWANCE = 0.5

# --------------------------------------------------------------------------- rendering

#: Normals of a traced hit: the field's direction backed off this far towards the viewer.
NORMAL_OFFSET = 3e-3
#: A bracket whose two sides' directions have a cosine below this is a clean sheet crossing.
CLEAN_FLIP_COS = -0.95
#: Newton steps shorter than this (along the ray) inside a bracket give way to bisection.
MIN_NEWTON_STEP = 1e-7

# --------------------------------------------------------------------------- fitting: the refined level of band grids

#: A cell is refined when a corner within this many fine cells of the surface...
REFINE_NEAR = 1.5
#: ...sees another sheet's closest point within this many fine cells of its own...
REFINE_GAP = 2.0
#: ...off its tangent plane by more than this many cells (plus the normals' sine times the tangential distance).
REFINE_OFFSET = 0.1
#: Also refined, after those: a neighbour of such a cell whose corners' values miss its centre's closest point by
#: more than this many cells (a sheet bending sharply beside its close neighbour).
REFINE_ROUGH = 0.05
#: At most about this many refined-level values per fine vertex (closest sheets first): bounds fit time and file.
REFINE_BUDGET = 4.0
#: ...but never fewer refined cells than this (small grids, e.g. a garment, need all their close-sheet cells).
REFINE_MIN_CELLS = 4096
#: ...and never more than this many (each costs about 80 exact closest points: a fit's time grows with them).
REFINE_MAX_CELLS = 16384

# --------------------------------------------------------------------------- extraction

#: Automatic topology grid of open band-grid CSP fields without a refined level, in field cells per grid cell.
TOPOLOGY_CELLS = 3.0
#: The same for fields with a refined level (tuned at extraction 256 on five open dev meshes).
TOPOLOGY_CELLS_REFINED = 1.5
#: A refined field whose mesh on that grid has pinched boundaries (two holes touching at a vertex: a
#: strip between them narrower than a grid cell) is also meshed on this finer grid (180 for the default
#: band grid), and the mesh with fewer defects is kept (:func:`deepcsp.extract.mesh.extract_mesh`).
TOPOLOGY_CELLS_PINCHED = 1.06
#: A face of a refined mesh (automatic topology grid, refined field) whose centroid lies more than this many
#: cells of the full grid off the field's surface is a wall between two sheets; the finer grid is then tried
#: (also where a few such faces sit at creases: fold 1, armor_jacket, tee_sim pay 1.5-2.5x the extraction time for
#: the same mesh, while lionstatue_scan gains 3 -> 1 loops and demosthenes_scan read back 2 -> 1 pieces).
WALL_CELLS = 0.75
#: A seam of inconsistent winding that a refined mesh keeps (a half twist at the rim of a small hole, at a sharp
#: thin edge) is cut out and the hole filled again when it spans at most this many cells of the refined mesh's
#: grid (:func:`deepcsp.extract.mend.untwist_holes`; airplane_holes' fin: 1 cell, fold 1: 4-8; a Moebius
#: strip's seam spans the strip and no fill closes its cut, so it stays).
TWIST_CELLS = 8.0

#: Close-sheet merge: a probe's closest point belongs to another sheet when it lies at least this
#: fraction of the merge gap along the normal from the first one (the same sheet, re-found, lies ~0 away)...
MERGE_MIN_SEPARATION = 0.05
#: ...and at most this far sideways, as a fraction of its distance along the normal (a boundary, crease
#: or wedge lies sideways). The merge's gate uses the refined level's REFINE_NEAR / GAP / OFFSET.
MERGE_MAX_SLANT = 0.15
#: Fields whose values are known only to within ``Field.value_error`` (read from a quantised file):
#: points closer to a sheet than this many of those errors aim the merge's probes along the normal
#: a probe half the gap out sees (their own direction is off by more than 1/this radians)...
MERGE_AIM_ERRORS = 100.0
#: ...where the cosine between the two lies in [lo, hi): above hi the aim hardly changes, below lo
#: the two do not describe the same sheet (unless the point lies on the sheet: no direction of its own).
MERGE_AIM_COS = (0.9, 0.9999)
#: Splitting merged sheets back into two layers (:mod:`deepcsp.extract.unmerge`): probes either side of
#: a vertex of the merged mesh see two sheets when their closest points lie at least this fraction of
#: the merge gap apart along the vertex normal (0.03 band cells at the default grids; a field in memory
#: errs ~0.005 cells on a lone sheet)...
SPLIT_MIN_SEPARATION = 0.02
#: ...and at least this many of the field's value errors (fields read from a quantised file).
SPLIT_VALUE_ERRORS = 4.0
#: ...where the two sheets' normals (seen from the probes) agree to this cosine...
SPLIT_MIN_COS = 0.9
#: ...and lie within this cosine of the vertex normal (loose: the mesh curls at its rim).
SPLIT_MIN_AIM = 0.5
#: At the merged mesh's rim, probes this many gaps across it from between the two sheets tell two sheets
#: ending together (they meet one of the two edges, half the separation off the mid-level) from a fold
#: (they meet its bend, at the mid-level): ends where their median level, over the separation and
#: averaged SPLIT_RIM_HOPS times over the neighbours along the rim, is at least SPLIT_ENDS_LEVEL.
#: Measured at 192 (levels 0.01-0.45 at folds, 0.1-0.6 where sheets 1 cell apart end; at 0.25 cells
#: the field rounds the two edges into each other and the two overlap); 6 rounds and 0.1 left the fewest
#: loops on rectangles and folds 0.1-1 cells apart at 64 and 192, against 3 or 12 rounds, 0.15 or 0.2,
#: and rays traced out across the rim for the least clearance (8-31 loops against 3-12).
SPLIT_FOLD_REACH = (0.5, 0.75, 1.0)
SPLIT_RIM_HOPS = 6
SPLIT_ENDS_LEVEL = 0.1
#: Rows of vertices into a fold's bend (probes see two points, not parallel sheets) that join a split beside them.
SPLIT_BEND_ROWS = 3
#: Single vertices with at least this share (numerator, denominator) of their neighbours split join them
#: (two passes; all of them before: a probe that missed left a spike between the layers, loops on a fold 7 -> 1).
SPLIT_FILL_SHARE = (2, 3)
#: Copies onto the lower sheet that would form a piece of less area than this many squared merge gaps
#: (topology cells) are not made (512 faces of the default extraction: about 64 squared gaps).
SPLIT_MIN_AREA = 64.0
#: A merged mesh with as many defects as the plain one is kept when at least this share of its vertices split...
UNMERGE_TIE_SHARE = 0.25
#: ...and the plain mesh has less than this many times its area (more: the plain mesh already has both layers).
UNMERGE_TIE_AREA = 1.5

# --------------------------------------------------------------------------- point-set surfaces

#: Patch sizes (neighbours) tried by ``geometry.pointset.select_patch_size``.
PATCH_SIZES = (8, 12, 16, 24, 32, 48, 64, 96, 128, 192, 256)
#: (neighbours, degree) tried per point by ``geometry.pointset.local_patch_sizes`` besides the cloud's own.
LOCAL_PATCH_SIZES = ((12, 1), (24, 1), (24, 2), (48, 2), (96, 2), (192, 2))

# --------------------------------------------------------------------------- size limits (memory caps on settings)

#: Largest extraction grid (cells per side of the normalised cube).
MAX_RESOLUTION = 2048
#: Most surface points one extraction may sample.
MAX_POINTS = 100_000_000
#: Most training samples one ``SampleConfig`` may ask for (all kinds together).
MAX_SAMPLES = 100_000_000
#: Largest band-grid resolution (vertices per axis): its lookup table holds res^3 int32 (4 GiB at 1024).
MAX_BAND_RESOLUTION = 1024
#: Largest dense-grid resolution (coarse band-grid level, multires levels): res^3 vertices.
MAX_DENSE_RESOLUTION = 512
#: Most active band-grid vertices (values are n_active x 4 float32 at most: 2 GiB).
MAX_ACTIVE = 2**27
#: Largest number of values in the dense grids of a multires_grid encoding (1 GiB of float32).
MAX_GRID_VALUES = 2**28
#: Most values (refined cells x sub-vertices per cell) a refined level may hold in memory.
MAX_REFINED_VALUES = 2**24
#: Most bytes one compressed tensor of a field file may inflate to.
MAX_INFLATED_BYTES = 2**31
#: Largest image side accepted (pixels).
MAX_SIDE = 16384
