"""Tolerances and defaults shared by code and tests (one place, as in trimesh's ``constants``)."""

from __future__ import annotations

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
