"""Interactive viewer in the browser (``deepcsp view``), built on viser.

* :mod:`~deepcsp.view.items`: inputs as :class:`ViewItem` (a field with its cached display mesh, a
  mesh, a point cloud), decimation for display, side-by-side layout;
* :mod:`~deepcsp.view.colors`, :mod:`~deepcsp.view.probe`, :mod:`~deepcsp.view.slices`,
  :mod:`~deepcsp.view.camera`: colour maps, the probe, distance slices with iso-lines, the
  browser's camera as a deepcsp camera; plain functions, testable without a browser;
* :mod:`~deepcsp.view.server`: :class:`Viewer`, the page itself.

Layering: uses ``render``, ``extract``, ``fields``, ``geometry`` and ``io``; only ``cli`` uses it.
viser is imported when a :class:`Viewer` is made, so this package imports without it
(``pip install 'deepcsp[view]'`` adds viser and fast-simplification).
"""

from deepcsp.view.config import COLOR_MODES, ViewConfig
from deepcsp.view.items import (
    Decimation,
    ViewItem,
    decimate_mesh,
    item_from_field,
    item_from_surface,
    load_item,
    subsample_points,
)
from deepcsp.view.probe import ProbeResult, probe
from deepcsp.view.server import TracedView, Viewer
from deepcsp.view.slices import DistanceSlice, distance_slice

__all__ = [
    "COLOR_MODES",
    "Decimation",
    "DistanceSlice",
    "ProbeResult",
    "TracedView",
    "ViewConfig",
    "ViewItem",
    "Viewer",
    "decimate_mesh",
    "distance_slice",
    "item_from_field",
    "item_from_surface",
    "load_item",
    "probe",
    "subsample_points",
]
