"""Boundary loops as ordered vertex cycles, and patches that close them.

``boundary_loops`` walks the boundary of a consistently wound mesh; ``ear_clip`` triangulates one
loop without new vertices, cutting the ear with the shortest diagonal first (a slit zips shut from
its ends, a round hole fills with short edges), wound against the loop so the closed mesh stays
consistently wound and never reusing an edge the mesh already has (no non-manifold edges).
Deciding *which* loops to close is the caller's (:func:`deepcsp.pipelines.holes.fill_covered_holes`
closes the ones a point cloud covers).
"""

from __future__ import annotations

import heapq

import numpy as np

from deepcsp._arrays import unique
from deepcsp.extract.topology import _edges, boundary_cycles, boundary_half_edges


def boundary_loops(faces: np.ndarray, n_vertices: int) -> list[np.ndarray]:
    """The simple boundary loops of a consistently wound mesh: each an ``(n,)`` array of vertex ids
    in the order of its boundary half-edges (``loop[i] -> loop[i + 1]`` is an edge of a face). Loops
    that visit a vertex twice or pass an inconsistently wound vertex are left out."""
    if len(faces) == 0:
        return []
    half = boundary_half_edges(faces, n_vertices)
    half = half[np.argsort(half.min(1) * n_vertices + half.max(1), kind="stable")]  # by edge: the walk order
    if len(half) == 0:
        return []
    n_cycles, label, simple = boundary_cycles(half, n_vertices)
    half, label = half[simple], label[simple]
    # the successor of a half-edge is the one of its cycle that starts where it ends
    starts = label.astype(np.int64) * n_vertices + half[:, 0]
    by_start = np.argsort(starts, kind="stable")
    succ = by_start[np.searchsorted(starts[by_start], label.astype(np.int64) * n_vertices + half[:, 1])]
    loops, seen = [], np.zeros(len(half), dtype=bool)
    for first in np.unique(label, return_index=True)[1]:
        walk, e = [], int(first)
        while not seen[e]:
            seen[e] = True
            walk.append(int(half[e, 0]))
            e = int(succ[e])
        loops.append(np.asarray(walk, dtype=np.int64))
    return loops


def edge_keys(faces: np.ndarray, n_vertices: int, among: list[np.ndarray] | None = None) -> set[int]:
    """The undirected edges of a mesh as a set of ``min * n_vertices + max`` keys (for ``ear_clip``);
    with ``among`` (vertex id arrays, e.g. boundary loops) only the edges joining two of those
    vertices: all that ``ear_clip`` asks about the loops, without a set of every edge of a
    million-face mesh."""
    _, key, _ = _edges(faces, n_vertices)
    if among is not None:
        on = np.zeros(n_vertices, dtype=bool)
        for ids in among:
            on[ids] = True
        key = key[on[key // n_vertices] & on[key % n_vertices]]
    return set(unique(key).tolist())


def ear_clip(vertices: np.ndarray, loop: np.ndarray, taken: set[int]) -> np.ndarray | None:
    """Triangles ``(n - 2, 3)`` closing the boundary loop ``loop (n,)`` (vertex ids, in the order
    of its boundary half-edges) with no new vertex, or None when every remaining ear's diagonal is
    an edge already in ``taken`` (edge keys of :func:`edge_keys`; not changed: add the triangles'
    edges to it when they are kept).

    Ears are cut shortest diagonal first; each triangle ``(v[i+1], v[i], v[i-1])`` runs against the
    loop's half-edges, so winding stays consistent with the faces around the hole."""
    n_v, n = len(vertices), len(loop)
    if n < 3:
        return None
    nxt, prv = list(range(1, n)) + [0], [n - 1] + list(range(n - 1))
    alive, version = [True] * n, [0] * n

    def key(a: int, b: int) -> int:
        a, b = int(loop[a]), int(loop[b])
        return min(a, b) * n_v + max(a, b)

    def cost(i: int) -> float:
        return float(np.linalg.norm(vertices[loop[prv[i]]] - vertices[loop[nxt[i]]]))

    heap = [(cost(i), i, 0) for i in range(n)]
    heapq.heapify(heap)
    out, left, added = [], n, set()
    while left > 3 and heap:
        _, i, ver = heapq.heappop(heap)
        a, b = prv[i], nxt[i]
        if not alive[i] or ver != version[i] or key(a, b) in taken or key(a, b) in added:
            continue
        out.append((loop[b], loop[i], loop[a]))
        added.add(key(a, b))
        alive[i], nxt[a], prv[b], left = False, b, a, left - 1
        for j in (a, b):
            version[j] += 1
            heapq.heappush(heap, (cost(j), j, version[j]))
    if left > 3:
        return None
    i = next(j for j in range(n) if alive[j])
    out.append((loop[nxt[i]], loop[i], loop[prv[i]]))
    return np.asarray(out, dtype=np.int64)
