"""Reading and writing surfaces: meshes and point clouds, validated, with normalisation."""

from deepcsp.io.surface import CLOUD_SUFFIXES, MESH_SUFFIXES, Surface, load_points, load_surface, save_mesh, save_points

__all__ = ["Surface", "load_surface", "load_points", "save_mesh", "save_points", "MESH_SUFFIXES", "CLOUD_SUFFIXES"]
