"""Coarse-to-fine search for the grid cells that can contain surface.

A block of side ``s`` whose centre lies farther than ``(sqrt(3) / 2) s`` from the surface cannot
contain any of it (the distance is 1-Lipschitz). Blocks are tested at their centres, the
survivors split in eight, down to single cells; ``margin`` widens the test for fields whose
distances carry error.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import numpy as np

_OCT = np.array([[i, j, k] for i in (0, 1) for j in (0, 1) for k in (0, 1)], dtype=np.int64)


@dataclass
class CandidateCells:
    """``blocks : (M, 3) int64`` indices of blocks of ``block_size`` cells (block ``b`` covers cells
    ``b * block_size`` to ``(b + 1) * block_size - 1``) that may contain surface, and
    ``n_evaluations``: distance queries spent finding them."""

    blocks: np.ndarray
    block_size: int
    n_evaluations: int

    def cells(self, resolution: int) -> np.ndarray:
        """``(M * block_size^3, 3)`` the cells of the blocks (inside the grid)."""
        s = self.block_size
        ax = np.arange(s, dtype=np.int64)
        sub = np.stack(np.meshgrid(ax, ax, ax, indexing="ij"), -1).reshape(-1, 3)
        c = (self.blocks[:, None, :] * s + sub[None]).reshape(-1, 3)
        return c[(c < resolution).all(1)]


def candidate_cells(
    distance_fn: Callable[[np.ndarray], np.ndarray],
    resolution: int,
    origin: float,
    margin: float,
    top_blocks: int = 8,
    stop_size: int = 1,
) -> CandidateCells:
    """Cells of the grid ``origin + (i, j, k) / resolution`` that may hold surface.

    Parameters
    ----------
    distance_fn
        Maps normalised points ``(N, 3)`` to unsigned distances ``(N,)``.
    resolution
        Cells per side; the cell size is ``1 / resolution``.
    origin
        Coordinate of corner 0 along every axis (normalised units).
    margin
        Added to the half-diagonal bound (normalised units), to cover field error.
    top_blocks
        The search starts with blocks of ``2^L`` cells, about ``top_blocks`` per side.
    stop_size
        Stop at blocks of this many cells per side (a power of two); the caller refines further
        from the corners of their cells.
    """
    h = 1.0 / resolution
    level = max(0, int(np.floor(np.log2(max(resolution / max(top_blocks, 1), 1.0)))))
    size = 1 << level
    nb = -(-resolution // size)
    ax = np.arange(nb, dtype=np.int64)
    blocks = np.stack(np.meshgrid(ax, ax, ax, indexing="ij"), -1).reshape(-1, 3)
    n_eval = 0
    while True:
        centers = origin + (blocks * size + size / 2.0) * h
        d = distance_fn(centers)
        n_eval += len(blocks)
        blocks = blocks[d <= np.sqrt(3.0) / 2.0 * size * h + margin]
        if size <= stop_size or len(blocks) == 0:
            break
        size //= 2
        blocks = (blocks[:, None, :] * 2 + _OCT[None]).reshape(-1, 3)
        blocks = blocks[(blocks * size < resolution).all(1)]
    return CandidateCells(blocks=blocks, block_size=size, n_evaluations=n_eval)
