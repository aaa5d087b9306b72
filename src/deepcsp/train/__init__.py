"""Learned reconstruction from sparse point clouds: data preparation (meshes and procedural
shapes -> records), augmentation, training with PyTorch DDP, and inference."""

from deepcsp.train.data import AugmentConfig, PrepareConfig, PrepareReport, RecordDataset, prepare
from deepcsp.train.loop import TrainConfig, TrainResult, train
from deepcsp.train.reconstruct import ReconstructConfig, Reconstruction, reconstruct_points

__all__ = [
    "AugmentConfig",
    "PrepareConfig",
    "PrepareReport",
    "RecordDataset",
    "prepare",
    "TrainConfig",
    "TrainResult",
    "train",
    "Reconstruction",
    "ReconstructConfig",
    "reconstruct_points",
]
