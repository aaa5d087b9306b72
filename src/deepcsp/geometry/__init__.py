"""Pure geometry (NumPy): exact closest points, sampling, metrics, analytic shapes.

This layer imports nothing else from deepcsp except ``errors``, ``constants`` and ``_arrays``.
"""

from deepcsp.geometry.closest import ClosestPoints, CloudOracle, MeshOracle, make_oracle
from deepcsp.geometry.normalize import Normalization

__all__ = ["ClosestPoints", "CloudOracle", "MeshOracle", "make_oracle", "Normalization"]
