"""Local neighbourhoods of a point cloud in a canonical frame: the input of local learned
operators (:mod:`deepcsp.fields.local`).

For each query, its ``k`` nearest cloud points are expressed in a frame centred at the query,
turned to the principal axes of the neighbourhood (rows: two tangents, the normal) and scaled by
the neighbourhood's size, so that what a network sees does not depend on where the query is, how
the cloud is turned, or how dense it is::

    nb = local_neighborhoods(cloud, tree, queries, k=64)   # Neighborhoods(points (Q, k, 3), frames, scales)
    world = queries + nb.to_world(local_offsets)           # (Q, 3)
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass
class Neighborhoods:
    """``points : (Q, k, 3)`` neighbours in the canonical frame (unit-scaled), ``frames : (Q, 3, 3)``
    rotations from world to frame (rows: tangent, tangent, normal; the principal axes, each signed
    so that the neighbours' third moment along it is positive) and ``scales : (Q,)`` the world
    length of one frame unit (the RMS distance of the neighbours to the query)."""

    points: np.ndarray
    frames: np.ndarray
    scales: np.ndarray

    def to_world(self, offsets: np.ndarray) -> np.ndarray:
        """World displacements ``(Q, 3)`` of frame offsets ``(Q, 3)``."""
        return np.einsum("qji,qj->qi", self.frames, offsets) * self.scales[:, None]

    def to_frame(self, displacements: np.ndarray) -> np.ndarray:
        """Frame offsets ``(Q, 3)`` of world displacements ``(Q, 3)`` (inverse of :meth:`to_world`)."""
        return np.einsum("qij,qj->qi", self.frames, displacements) / self.scales[:, None]


def local_neighborhoods(
    cloud: np.ndarray, tree, queries: np.ndarray, k: int = 64, skip_self: bool = False
) -> Neighborhoods:
    """Canonical neighbourhoods of ``queries : (Q, 3)`` in ``cloud : (N, 3)`` (``tree``: a cKDTree of
    it). ``skip_self`` leaves out the nearest point (for queries that are cloud points, in training
    on held-out points)."""
    k = min(k, len(cloud) - int(skip_self))
    _, ii = tree.query(queries, k=k + int(skip_self), workers=-1)
    ii = ii.reshape(len(queries), -1)[:, int(skip_self) :]
    off = cloud[ii] - queries[:, None]
    scales = np.sqrt((off**2).sum(-1).mean(1)) + 1e-300
    centred = off - off.mean(1, keepdims=True)
    _, vecs = np.linalg.eigh(np.einsum("qki,qkj->qij", centred, centred))
    normal = _skewed_positive(vecs[:, :, 0], off)
    t1 = _skewed_positive(vecs[:, :, 2], off)
    frames = np.stack([t1, np.cross(normal, t1), normal], 1)
    pts = np.einsum("qij,qkj->qki", frames, off) / scales[:, None, None]
    return Neighborhoods(pts.astype(np.float32), frames, scales)


def _skewed_positive(axes: np.ndarray, offsets: np.ndarray) -> np.ndarray:
    """``axes : (Q, 3)`` flipped where the third moment of ``offsets : (Q, k, 3)`` along them is
    negative: a sign fixed by the data, so that turning the cloud turns the frame with it."""
    moment = (np.einsum("qki,qi->qk", offsets, axes) ** 3).sum(1)
    return axes * np.where(moment < 0, -1.0, 1.0)[:, None]
