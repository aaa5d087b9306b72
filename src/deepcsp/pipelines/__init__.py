"""End-to-end pipelines built from the layers below (fit, extract, train): what one command does."""

from deepcsp.pipelines.reconstruct import CloudReconstruction, ReconstructionConfig, close_if_closed, reconstruct_cloud

__all__ = ["CloudReconstruction", "ReconstructionConfig", "close_if_closed", "reconstruct_cloud"]
