"""Typed configuration of ``deepcsp fit``; field docstrings become ``--help``."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from dataclasses import field as _field
from typing import Literal

from deepcsp._validate import Fields, OptionError
from deepcsp.fields.modules import FieldConfig
from deepcsp.geometry.pointset import PointSetConfig
from deepcsp.geometry.sampling import SampleConfig


@dataclass
class CloudConfig:
    """How a field is fitted to a point cloud: the surface the cloud samples, not its points."""

    surface: PointSetConfig = _field(default_factory=PointSetConfig)
    """The point-set surface whose closest points are collocated (:mod:`deepcsp.geometry.pointset`)."""
    resolution: int = 0
    """Fine vertices per axis of the band grid; 0 = from the sample spacing (about one vertex per
    spacing, 192-512; ``field.resolution`` is then ignored)."""
    vertices_per_spacing: float = 1.0
    """Automatic ``resolution``: fine vertices per sample spacing (within 192-512 per axis)."""
    layered_vertices_per_spacing: float = 1.4
    """Automatic ``resolution`` of a layered cloud (see ``layered_above``): sheets a few spacings
    apart need a finer grid to stay apart."""
    layered_above: float = 0.15
    """A cloud is layered when at least this share of its samples has another sheet 1.5-5 spacings
    above or below (:func:`deepcsp.geometry.pointset.close_layers`; measured on 100k-point clouds of the
    dev meshes: 0.24-0.31 for a two-layer jacket, a truck and a scanned dragon, at most 0.10 for the
    other 21); in (0, 1]."""

    band_cells: float = 4.0
    """Half-width of the fine band in fine cells (meshes use ``FitConfig.band``)."""
    projection: Literal["auto", "learned", "off"] = "auto"
    """Project the points with the learned local CSP operator before the patches are fitted:
    ``auto`` when the estimated noise is at least ``projection_above`` sample spacings and the cloud
    is no flat sheet, and below that averaged with a noisy cloud's self-projection
    (``PointSetConfig.self_project_blend``); ``learned`` always; ``off`` never."""
    projection_above: float = 0.35
    """``auto`` projection: noise threshold, in sample spacings (the estimate also reads curvature and
    sparse sampling as noise, so clean clouds stay below it; see benchmarks/RESULTS.md)."""
    model: str | None = None
    """Local CSP model (safetensors from ``deepcsp train-local``); None: the one shipped with deepcsp."""

    def __post_init__(self) -> None:
        if not isinstance(self.surface, PointSetConfig):
            raise OptionError("CloudConfig.surface", f"must be a PointSetConfig, got {type(self.surface).__name__}")
        f = Fields(self)
        f.auto_or_at_least("resolution", 8, 1024)
        f.number("vertices_per_spacing", 0.1, 16.0)
        f.number("layered_vertices_per_spacing", 0.1, 16.0)
        f.number("layered_above", 0.0, 1.0, min_open=True)
        f.number("band_cells", 1.0, 1000.0)
        f.literal("projection")
        f.number("projection_above", 0.0, 1e6)
        if self.model is not None:
            from pathlib import Path

            if not (Path(self.model).is_file() and Path(self.model).suffix == ".safetensors"):
                raise OptionError(
                    "CloudConfig.model", f"must be an existing .safetensors model file, got {self.model!r}"
                )

    def is_layered(self, close_layers: float) -> bool:
        """Whether a cloud whose ``close_layers`` share is given gets the layered grid."""
        return close_layers >= self.layered_above


@dataclass
class FitConfig:
    """How a field is fitted to one shape."""

    field: FieldConfig = _field(default_factory=FieldConfig)
    """Architecture of the field."""
    samples: SampleConfig = _field(default_factory=SampleConfig)
    """Training samples (normalised units)."""
    cloud: CloudConfig = _field(default_factory=CloudConfig)
    """Point-cloud inputs only: the surface they sample and its band."""
    time_budget: float = 45.0
    """Wall-clock seconds for the whole fit (sampling and ground truth included); 0 = no limit."""
    max_steps: int | None = None
    """Upper bound on optimisation steps; None = automatic: 0 for ``band_grid`` (collocation is exact
    at its vertices), 100000 (the time budget decides) for network encodings."""
    batch_size: int = 16384
    """Points per optimisation step."""
    lr: float = 1e-3
    """Adam learning rate for network weights."""
    grid_lr: float = 2e-4
    """Adam learning rate for band-grid vertex values (already exact after collocation)."""
    lr_decay: float = 0.1
    """Final learning rate as a fraction of the initial one (cosine schedule over the budget)."""
    band: float = 0.06
    """band_grid: half-width of the fine band as a fraction of the bbox diagonal."""
    inside_outside: Literal["auto", "off"] = "auto"
    """band_grid CSP: ``auto`` stores an inside/outside bit per vertex for closed, consistently wound
    meshes (signed distances, outward normals, watertight extraction); ``off`` never does."""
    idempotence_weight: float = 0.0
    """Weight of |CSP(CSP(p)) - CSP(p)| (a closest point is its own closest point)."""
    orthogonality_weight: float = 0.0
    """Weight of the tangential part of (p - CSP(p)) w.r.t. the true surface normal."""
    seed: int = 0
    """Seed of sampling, initialisation and batching."""
    checkpoint_every: float = 10.0
    """Seconds between checkpoints."""
    device: str = "cpu"
    """``cpu`` or ``cuda``."""
    threads: int = 0
    """Torch CPU threads (0 = leave torch's default)."""
    eval_points: int = 50_000
    """Band points for the final error report (0 to skip)."""

    def __post_init__(self) -> None:
        f = Fields(self)
        for name, cls in (("field", FieldConfig), ("samples", SampleConfig), ("cloud", CloudConfig)):
            if not isinstance(getattr(self, name), cls):
                raise OptionError(
                    f"FitConfig.{name}", f"must be a {cls.__name__}, got {type(getattr(self, name)).__name__}"
                )
        f.number("time_budget", 0.0, 1e7)
        f.optional_integer("max_steps", 0, 10**9)
        f.integer("batch_size", 1, 2**24)
        f.number("lr", 0.0, 10.0, min_open=True)
        f.number("grid_lr", 0.0, 10.0, min_open=True)
        f.number("lr_decay", 0.0, 1.0)
        f.number("band", 0.0, 1.0, min_open=True)
        f.literal("inside_outside")
        f.number("idempotence_weight", 0.0, 1e6)
        f.number("orthogonality_weight", 0.0, 1e6)
        f.integer("seed", 0, 2**63 - 1)
        f.number("checkpoint_every", 0.0, 1e7)
        f.device("device")
        f.integer("threads", 0, 1024)
        f.integer("eval_points", 0, 10**8)

    def resolved_steps(self) -> int:
        """:attr:`max_steps` with ``None`` resolved for this config's encoding."""
        if self.max_steps is not None:
            return self.max_steps
        return 0 if self.field.encoding == "band_grid" else 100_000

    def to_dict(self) -> dict:
        d = asdict(self)
        d["field"] = self.field.to_dict()
        return d
