"""Dual contouring shared by both extraction paths: the four cells around a crossed edge, one dual
vertex per sheet in a cell (its crossings linked through the cell's faces), vertices snapped onto
the surface, quads split into triangles.

A crossed edge ``e`` seen from the ``k``-th cell of its quad (``QUAD`` order) is entry ``4 e + k``;
a cell's crossed edges are named by their local id ``axis * 4 + o1 * 2 + o2`` (offsets along
``OTHER[axis]``), the numbering of ``FACE_EDGES``.
"""

from __future__ import annotations

from typing import Callable

import numpy as np

from deepcsp.extract.grid import FACE_EDGES, OTHER, QUAD, Queries, corner_ijk, unit


def quad_cells(edges: np.ndarray, n1: int) -> np.ndarray:
    """``(E, 4, 3)`` the cells around each edge key, in ``QUAD`` order (normal along +axis)."""
    axis = edges % 3
    base = corner_ijk(edges // 3, n1)
    qc = np.repeat(base[:, None, :], 4, axis=1)
    rows = np.arange(len(edges))
    for k in range(4):
        for j in range(2):
            qc[rows, k, OTHER[axis, j]] += QUAD[k, j] - 1
    return qc


def entry_table(cell_of: np.ndarray, n_cells: int, axis: np.ndarray) -> np.ndarray:
    """``(n_cells, 12)`` entry id of each cell's crossed local edges (-1: not crossed), from
    ``cell_of (4E,)`` the cell of every entry and ``axis (E,)`` the crossed edges' axes."""
    n = len(cell_of)
    k = np.tile(np.arange(4), n // 4)
    ax = np.repeat(axis, 4)
    local = ax * 4 + (1 - QUAD[k, 0]) * 2 + (1 - QUAD[k, 1])
    table = np.full((n_cells, 12), -1, dtype=np.int64)
    table[cell_of, local] = np.arange(n)
    return table


#: ``pair_first(face, four, ids)``: for the cells ``four (M,) bool`` whose ``face`` (row of
#: ``FACE_EDGES``) holds four crossings ``ids (K, 4)``, True where edges 0-1 and 2-3 pair up
#: (False: 1-2 and 3-0).
PairRule = Callable[[int, np.ndarray, np.ndarray], np.ndarray]


def link_cell_faces(table: np.ndarray, pair_first: PairRule) -> tuple[np.ndarray, np.ndarray]:
    """Links between the crossings of each cell through its six faces: on a face, two crossings
    (or an odd count, which consistent signs never give) are all linked; four are paired as
    ``pair_first`` decides. ``table (M, 12)`` as :func:`entry_table` gives it. Returns the entry ids
    ``(a, b)`` at the two ends of every link."""
    a_all, b_all = [], []
    for face, fe in enumerate(FACE_EDGES):
        ids = table[:, fe]
        cnt = (ids >= 0).sum(1)
        a, b = _link_few(ids)
        a_all += a
        b_all += b
        four = cnt == 4
        if four.any():
            sub = ids[four]
            first = pair_first(face, four, sub)
            a_all += [np.where(first, sub[:, 0], sub[:, 1]), np.where(first, sub[:, 2], sub[:, 3])]
            b_all += [np.where(first, sub[:, 1], sub[:, 2]), np.where(first, sub[:, 3], sub[:, 0])]
    a = np.concatenate(a_all) if a_all else np.zeros(0, dtype=np.int64)
    b = np.concatenate(b_all) if b_all else np.zeros(0, dtype=np.int64)
    return a, b


def link_components(a: np.ndarray, b: np.ndarray, n: int) -> tuple[int, np.ndarray]:
    """``(number of components, (n,) component label)`` of the graph on ``n`` entries with links ``(a, b)``."""
    from scipy.sparse import coo_matrix
    from scipy.sparse.csgraph import connected_components

    g = coo_matrix((np.ones(len(a), dtype=np.int8), (a, b)), shape=(n, n))
    return connected_components(g, directed=False)


def triangulate(quads: np.ndarray, vs: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Split quads ``(Q, 4)`` along the shorter diagonal, keeping their orientation. Returns the
    triangles ``(2Q, 3)`` and the quad of each ``(2Q,)``."""
    if len(quads) == 0:
        return np.zeros((0, 3), dtype=np.int64), np.zeros(0, dtype=np.int64)
    d02 = np.linalg.norm(vs[quads[:, 0]] - vs[quads[:, 2]], axis=1)
    d13 = np.linalg.norm(vs[quads[:, 1]] - vs[quads[:, 3]], axis=1)
    a = d02 <= d13
    ia, ib = np.nonzero(a)[0], np.nonzero(~a)[0]
    tri_a = np.concatenate([quads[a][:, [0, 1, 2]], quads[a][:, [0, 2, 3]]])
    tri_b = np.concatenate([quads[~a][:, [0, 1, 3]], quads[~a][:, [1, 2, 3]]])
    return np.concatenate([tri_a, tri_b]).astype(np.int64), np.concatenate([ia, ia, ib, ib])


def snapped_means(
    fq: Queries,
    labels: np.ndarray,
    points: np.ndarray,
    n: int,
    bias: float,
    h: float,
    planes: tuple[np.ndarray, np.ndarray, np.ndarray] | None = None,
) -> np.ndarray:
    """Dual vertices: the mean of the ``points`` carrying each of the ``n`` labels, moved onto the
    surface with the field itself (``CSP(v) + bias * n``); a snap longer than a cell diagonal is not
    applied (the mean is kept).

    ``planes = (feet (P, 3), normals (P, 3), labels (P,))`` (noisy distances): vertices that have
    tangent planes move along their planes' mean normal to the planes' mean height instead of
    being snapped by one query, which would carry the full noise of one distance."""
    cnt = np.bincount(labels, minlength=n).astype(np.float64)
    v0 = (
        np.stack([np.bincount(labels, weights=points[:, d], minlength=n) for d in range(3)], -1)
        / np.maximum(cnt, 1)[:, None]
    )
    vs = v0.copy()
    todo = np.ones(n, dtype=bool)
    if planes is not None and len(planes[2]):
        feet, nrm, pl = planes
        # planes on either side of a sheet may face opposite ways: turn them to the first one's side
        uq, first = np.unique(pl, return_index=True)
        ref = np.zeros((n, 3))
        ref[uq] = nrm[first]
        nrm = nrm * np.where((nrm * ref[pl]).sum(1, keepdims=True) < 0, -1.0, 1.0)
        nm, _ = unit(np.stack([np.bincount(pl, weights=nrm[:, d], minlength=n) for d in range(3)], -1))
        num = np.bincount(pl, weights=((feet - v0[pl]) * nrm).sum(1), minlength=n)
        den = np.bincount(pl, weights=(nrm * nm[pl]).sum(1), minlength=n)
        has = den > 1e-9
        vs[has] = v0[has] + (num[has] / den[has])[:, None] * nm[has]
        todo = ~has
    if todo.any():
        v32, qv = fq.closest(v0[todo])
        nv, _ = unit(v32 - qv)
        vs[todo] = qv + bias * nv
    far = np.linalg.norm(vs - v0, axis=1) > np.sqrt(3.0) * h
    vs[far] = v0[far]
    return vs


def _link_few(ids: np.ndarray) -> tuple[list[np.ndarray], list[np.ndarray]]:
    """Links between the crossings of cell faces that hold two (or, inconsistently, three): ``ids``
    ``(M, 4)`` crossing labels of each face's 4 edges (-1 where not crossed). Returns the two ends of
    each link (lists of arrays); linking the first crossed edge to each other one links them all."""
    cnt = (ids >= 0).sum(1)
    few = (cnt == 2) | (cnt == 3)
    a, b = [], []
    if few.any():
        big = np.iinfo(np.int64).max
        srt = np.sort(np.where(ids[few] >= 0, ids[few], big), axis=1)
        for j in range(2):
            ok = srt[:, j + 1] != big
            a.append(srt[ok, 0])
            b.append(srt[ok, j + 1])
    return a, b
