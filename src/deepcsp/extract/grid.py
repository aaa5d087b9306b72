"""Grid bookkeeping shared by the extraction paths: counted field queries, edge keys, cell faces, stage timings.

Grid corners are indexed ``lin = (i * n1 + j) * n1 + k`` (``n1 = resolution + 1``); an edge is
``lin * 3 + axis`` (from corner ``lin`` towards ``+axis``); a cell is named by its lowest corner.
"""

from __future__ import annotations

import time
from contextlib import contextmanager
from typing import Iterator

import numpy as np
import torch

from deepcsp._arrays import shifted_unique
from deepcsp.fields.batched import QUERY_CHUNK, map_rows
from deepcsp.fields.query import Field


class Queries:
    """Batched closest-point queries on normalised NumPy points, counting every point asked."""

    def __init__(self, field: Field):
        self.field = field
        self.count = 0

    def _map(self, x: np.ndarray, fn, empty_shape: tuple) -> tuple[np.ndarray, np.ndarray]:
        """Apply ``fn`` (a normalised-coordinate field query) in chunks; returns ``(x32, out)``."""
        self.count += len(x)
        x32 = np.asarray(x, np.float32)
        if not len(x32):
            return x32.astype(np.float64), np.zeros(empty_shape)
        chunk = int(getattr(self.field, "chunk", QUERY_CHUNK))
        out = map_rows(lambda c: fn(c).detach(), torch.as_tensor(x32, device=self.field.device), chunk)
        return x32.astype(np.float64), out.cpu().double().numpy()

    def closest(self, x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """``(x32, q)``: the points as the field saw them (float32 rounding) and their closest points."""
        return self._map(x, self.field.closest_points_normalized, (0, 3))

    def off_surface(self, x: np.ndarray, bias: float) -> np.ndarray:
        """``(N,)`` how far ``x`` lies from the surface, ``|x - CSP(x)| - bias`` (the field's distance bias
        removed; the walls of :mod:`deepcsp.extract.mesh` and :mod:`deepcsp.extract.mend`)."""
        x32, q = self.closest(x)
        return np.linalg.norm(x32 - q, axis=1) - bias

    def distances(self, x: np.ndarray) -> np.ndarray:
        return self._map(x, self.field.distances_normalized, (0,))[1]

    def signed(self, x: np.ndarray) -> np.ndarray:
        """Signed distances (negative inside; closed fields only)."""
        return self._map(x, self.field.signed_distances_normalized, (0,))[1]


def unit(d: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``(directions (N, 3), lengths (N,))`` of vectors ``d (N, 3)`` (zero vectors stay zero)."""
    u = np.linalg.norm(d, axis=1)
    return d / np.maximum(u, 1e-12)[:, None], u


# the two other axes of each axis, in the cyclic order that makes a quad's normal point along +axis
OTHER = np.array([[1, 2], [2, 0], [0, 1]])
QUAD = np.array([[0, 0], [1, 0], [1, 1], [0, 1]])
CORNER_OFFSETS = np.array([[i, j, k] for i in (0, 1) for j in (0, 1) for k in (0, 1)], dtype=np.int64)


def cell_edges(cells: np.ndarray, n1: int) -> np.ndarray:
    """Unique edge keys ``corner * 3 + axis`` of the 12 edges of every cell ``(M, 3)``."""
    stride = np.array([n1 * n1, n1, 1], dtype=np.int64)
    return shifted_unique(3 * (np.asarray(cells, np.int64) @ stride), cell_edge_offsets(n1))


def cell_edge_offsets(n1: int) -> np.ndarray:
    """``(12,)`` what to add to ``3 * key`` of a cell's lowest corner for the keys of its edges."""
    stride = np.array([n1 * n1, n1, 1], dtype=np.int64)
    return np.array(
        [
            3 * (d1 * stride[a1] + d2 * stride[a2]) + axis
            for axis, (a1, a2) in enumerate(OTHER)
            for d1 in (0, 1)
            for d2 in (0, 1)
        ],
        dtype=np.int64,
    )


def corner_keys(cells: np.ndarray, stride: np.ndarray) -> np.ndarray:
    """``(M, 8)`` keys ``corner . stride`` of the corners of cells ``(M, 3)`` (integer grid
    coordinates of their lowest corners), in ``CORNER_OFFSETS`` order."""
    return (np.asarray(cells, np.int64) @ stride)[:, None] + (CORNER_OFFSETS @ stride)[None]


def dense_edges(n1: int) -> np.ndarray:
    """Sorted keys of every edge of the dense grid with ``n1`` corners per side."""
    ax = np.arange(n1, dtype=np.int64)
    ijk = np.stack(np.meshgrid(ax, ax, ax, indexing="ij"), -1).reshape(-1, 3)
    lin = (ijk[:, 0] * n1 + ijk[:, 1]) * n1 + ijk[:, 2]
    keys = [lin[ijk[:, a] < n1 - 1] * 3 + a for a in range(3)]
    return np.sort(np.concatenate(keys))


def corner_ijk(lin: np.ndarray, n1: int) -> np.ndarray:
    """``(N, 3)`` integer grid coordinates of corner keys ``lin (N,)``."""
    return np.stack([lin // (n1 * n1), (lin // n1) % n1, lin % n1], -1)


def _face_edge_table() -> np.ndarray:
    """``(6, 4)`` local edge ids (``axis * 4 + o1 * 2 + o2``, offsets along ``OTHER[axis]``) of the
    six faces of a cell, each in cyclic order (consecutive edges share a corner)."""

    def local(ax: int, off: dict) -> int:
        a1, a2 = OTHER[ax]
        return int(ax * 4 + off[a1] * 2 + off[a2])

    table = []
    for f in range(3):
        u, v = OTHER[f]
        for s in (0, 1):
            table.append(
                [local(u, {f: s, v: 0}), local(v, {f: s, u: 1}), local(u, {f: s, v: 1}), local(v, {f: s, u: 0})]
            )
    return np.array(table, dtype=np.int64)


FACE_EDGES = _face_edge_table()


def _face_corner_table() -> np.ndarray:
    """``(6, 4)`` local corner ids (``i * 4 + j * 2 + k``, the order of ``CORNER_OFFSETS``) of the six
    faces of ``FACE_EDGES``: entry ``m`` is the corner shared by the face's edges ``m`` and ``m + 1``."""
    table = []
    for f in range(3):
        u, v = OTHER[f]
        for s in (0, 1):
            row = []
            for cu, cv in ((1, 0), (1, 1), (0, 1), (0, 0)):
                o = np.zeros(3, dtype=np.int64)
                o[f], o[u], o[v] = s, cu, cv
                row.append(int(o[0] * 4 + o[1] * 2 + o[2]))
            table.append(row)
    return np.array(table, dtype=np.int64)


FACE_CORNERS = _face_corner_table()


@contextmanager
def timed(timings: dict, stage: str) -> Iterator[None]:
    """Add the wall time of the ``with`` block to ``timings[stage]`` (seconds)."""
    tick = time.perf_counter()
    yield
    timings[stage] = timings.get(stage, 0.0) + time.perf_counter() - tick
