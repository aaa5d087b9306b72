"""Typed configuration of the viewer (``deepcsp view``); field docstrings become ``--help``."""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

ColorMode = Literal["normal", "curvature", "reference", "plain"]
COLOR_MODES: tuple[str, ...] = ("normal", "curvature", "reference", "plain")


@dataclass
class ViewConfig:
    """How the viewer serves and draws its inputs."""

    host: str = "127.0.0.1"
    """Address to serve on (``0.0.0.0`` makes the viewer reachable from other machines)."""
    port: int = 8080
    """Port to serve on; the next free port is taken when it is busy (0 = any free port)."""
    color: Literal["auto", "normal", "curvature", "reference", "plain"] = "auto"
    """Initial colouring: ``normal`` (RGB = (n + 1) / 2), ``curvature`` (mean), ``reference`` (distance to
    ``--reference``), ``plain``; ``auto``: ``reference`` when one is given, else ``normal``."""
    layout: Literal["row", "overlay"] = "row"
    """Several inputs: ``row`` puts them side by side along +x, ``overlay`` in their own coordinates."""
    slice: Literal["none", "x", "y", "z"] = "none"
    """Initial distance slice: the plane through the probed input's centre across this axis."""
    mesh_resolution: int = 128
    """Grid cells per side for a field's display mesh, extracted once and cached beside the field
    as FIELD.view.npz."""
    max_faces: int = 300_000
    """Meshes with more faces are decimated for display (fast-simplification) to about this many;
    metrics and probes use the full mesh."""
    max_points: int = 500_000
    """Point clouds with more points are randomly subsampled for display to this many."""
    slice_resolution: int = 160
    """Samples along the longer side of the distance slice."""
    iso_lines: int = 10
    """Iso-distance lines on the slice (0 = none)."""
    trace_size: int = 384
    """Longer side, in pixels, of the sphere-traced view."""
    metric_samples: int = 20_000
    """Points sampled on each surface for the Chamfer / F-score figures against the reference."""
    fscore_tau: float = 0.005
    """F-score threshold as a fraction of the reference's bounding-box diagonal."""
    save_dir: Path = Path(".")
    """Folder for screenshots and traced views (fresh names: an existing file is never overwritten)."""
    seed: int = 0
    """Seed of display subsampling and metric sampling."""
    device: str = "cpu"
    """``cpu`` or ``cuda`` for field queries."""

    def validate(self) -> "ViewConfig":
        """Raise ValueError naming the first bad option (as its command-line flag); return self."""
        ints = {
            "port": (self.port, 0, 65535),
            "mesh-resolution": (self.mesh_resolution, 8, 1024),
            "max-faces": (self.max_faces, 100, 100_000_000),
            "max-points": (self.max_points, 100, 100_000_000),
            "slice-resolution": (self.slice_resolution, 8, 2048),
            "iso-lines": (self.iso_lines, 0, 100),
            "trace-size": (self.trace_size, 16, 4096),
            "metric-samples": (self.metric_samples, 100, 10_000_000),
        }
        for name, (value, lo, hi) in ints.items():
            if isinstance(value, bool) or not isinstance(value, int) or not lo <= value <= hi:
                raise ValueError(f"--{name} must be an integer in [{lo}, {hi}], got {value!r}")
        if not (
            isinstance(self.fscore_tau, (int, float)) and math.isfinite(self.fscore_tau) and 0 < self.fscore_tau < 1
        ):
            raise ValueError(f"--fscore-tau must be in (0, 1), got {self.fscore_tau!r}")
        if self.color not in ("auto", *COLOR_MODES):
            raise ValueError(f"--color must be one of auto, {', '.join(COLOR_MODES)}; got {self.color!r}")
        if self.layout not in ("row", "overlay"):
            raise ValueError(f"--layout must be row or overlay, got {self.layout!r}")
        if self.slice not in ("none", "x", "y", "z"):
            raise ValueError(f"--slice must be none, x, y or z, got {self.slice!r}")
        if not self.host:
            raise ValueError("--host must not be empty")
        return self

    def initial_color(self, has_reference: bool) -> str:
        """The colour mode to start in (``auto`` resolved)."""
        if self.color == "auto":
            return "reference" if has_reference else "normal"
        return self.color
