"""``reconstruct_cloud``: an unoriented point cloud in, a mesh (and a CSP field) out.

Three steps, each a library call: a band-grid CSP field of the surface the cloud samples
(:func:`deepcsp.fit.fit_surface` on the point-set surface of :mod:`deepcsp.geometry.pointset`),
then a single-layer mesh extracted from it (:func:`deepcsp.extract.extract_mesh`: open sheets stay
open, closed surfaces come out closed), then its topology checks.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field, replace
from typing import Callable

import numpy as np

from deepcsp._validate import Fields, OptionError
from deepcsp.extract import ExtractConfig, MeshStats, extract_mesh
from deepcsp.fields.query import NeuralField
from deepcsp.fit import FitConfig, fit_surface
from deepcsp.geometry.pointset import CloudSummary


@dataclass
class ReconstructionConfig:
    """How a cloud becomes a mesh."""

    fit: FitConfig = field(default_factory=lambda: FitConfig(eval_points=0))
    """The field fitted to the cloud (``fit.cloud`` holds the point-set surface settings)."""
    mesh_resolution: int = 256
    """Grid cells per side of the extraction grid (the mesh's detail)."""

    def __post_init__(self) -> None:
        if not isinstance(self.fit, FitConfig):
            raise OptionError("ReconstructionConfig.fit", f"must be a FitConfig, got {type(self.fit).__name__}")
        Fields(self).integer("mesh_resolution", 8, 2048)


@dataclass
class CloudReconstruction:
    """A mesh in the cloud's coordinates (``vertices : (V, 3)``, ``faces : (F, 3)``), the CSP field
    it was extracted from, what was found in the cloud, the mesh's topology and seconds per step."""

    vertices: np.ndarray
    faces: np.ndarray
    field: NeuralField
    cloud: CloudSummary | None
    stats: MeshStats
    seconds: dict


def reconstruct_cloud(surface, config: ReconstructionConfig = ReconstructionConfig(), progress: Callable[[dict], None] | None = None) -> CloudReconstruction:
    """Reconstruct the surface sampled by ``surface`` (a point cloud :class:`deepcsp.io.Surface`)."""
    if surface.faces is not None:
        surface = replace(surface, faces=None)  # a mesh given here is read as its vertices
    t0 = time.perf_counter()
    fit = fit_surface(surface, config.fit, progress=progress)
    t1 = time.perf_counter()
    if progress is not None:
        progress({"stage": f"extracting a mesh at resolution {config.mesh_resolution}"})
    mesh = extract_mesh(fit.field, ExtractConfig(resolution=config.mesh_resolution))
    t2 = time.perf_counter()
    return CloudReconstruction(
        vertices=mesh.vertices,
        faces=mesh.faces,
        field=fit.field,
        cloud=fit.cloud,
        stats=mesh.stats,
        seconds={"field": t1 - t0, "mesh": t2 - t1, "total": t2 - t0},
    )
