"""Fitting a field to one shape: sampling, band-grid collocation, optimisation, checkpoints."""

from deepcsp.fit.config import FitConfig
from deepcsp.fit.loop import FitResult, fit_surface

__all__ = ["FitConfig", "FitResult", "fit_surface"]
