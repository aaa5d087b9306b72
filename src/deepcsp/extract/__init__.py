"""Mesh and point-cloud extraction from closest-surface-point fields.

``extract_mesh(field, ExtractConfig(...)) -> ExtractResult``: a single-layer, consistently wound
mesh (open sheets stay open, closed surfaces come out closed), evaluated sparsely near the surface.
"""

from deepcsp.extract.config import ExtractConfig, ExtractResult
from deepcsp.extract.mesh import extract_mesh, project_points
from deepcsp.extract.perturb import PerturbedField
from deepcsp.extract.topology import MeshStats, mesh_stats, orient_faces

__all__ = [
    "ExtractConfig",
    "ExtractResult",
    "extract_mesh",
    "project_points",
    "PerturbedField",
    "MeshStats",
    "mesh_stats",
    "orient_faces",
]
