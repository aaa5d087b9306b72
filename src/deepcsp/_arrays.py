"""Set operations on 1-D integer arrays (grid keys, vertex and face ids), by sorting.

numpy 2.3+ answers a plain ``np.unique(a)``, and the set functions built on it (``setdiff1d``,
``intersect1d``, ``union1d``, ``isin``), with a hash table that is far slower than a sort on the
millions of scattered grid keys the extraction makes (``benchmarks/bm_arrays.py``). These give the
same results (sorted, unique) for integer input. Non-negative keys from a range at most
``BITMAP_SPAN`` times their count (and ``BITMAP_MAX`` in all) are deduplicated by marking them in
a bitmap instead of sorting: a grid's corner and edge keys, several times faster.

Also :func:`gather_rows`, the row gather of torch tensors that the grids and point-set patches use."""

from __future__ import annotations

import numpy as np

BITMAP_SPAN = 16
"""Deduplicate by a bitmap when the largest key is below this many times the number of keys."""
BITMAP_MAX = 2**28
"""... and below this (bytes of the bitmap)."""


def unique(a: np.ndarray) -> np.ndarray:
    """Sorted unique values of an integer array (flattened), as ``np.unique(a)``."""
    a = np.asarray(a).ravel()
    if a.dtype.kind in "iu" and len(a) > 1 and int(a.min()) >= 0 and _bitmap_fits(int(a.max()), len(a)):
        return bitmap_unique(a, int(a.max()))
    return sort_unique(a)


def _bitmap_fits(top: int, n: int) -> bool:
    """Whether ``n`` keys up to ``top`` are dense enough for a bitmap (``BITMAP_SPAN``, ``BITMAP_MAX``)."""
    return top < min(BITMAP_SPAN * n, BITMAP_MAX)


def shifted_unique(keys: np.ndarray, shifts: np.ndarray) -> np.ndarray:
    """Sorted unique values of ``keys[:, None] + shifts[None]``, as :func:`unique` gives them.

    Shifted copies of sorted keys are sorted runs, which a stable sort (timsort) merges instead of
    sorting afresh: the 12 edges of 1.7M grid cells at a 496 grid (keys too sparse for a bitmap) in
    0.3 s against 1.6 s (``benchmarks/bm_arrays.py``). Where :func:`unique` would use a bitmap,
    it does."""
    keys = np.asarray(keys).ravel()
    shifts = np.asarray(shifts).ravel()
    n = len(keys) * len(shifts)
    if n == 0:
        return np.zeros(0, np.result_type(keys, shifts))
    top = int(keys.max()) + int(shifts.max())
    if keys.dtype.kind in "iu" and int(keys.min()) + int(shifts.min()) >= 0 and _bitmap_fits(top, n):
        return bitmap_unique((keys[:, None] + shifts[None]).ravel(), top)
    sorted_keys = unique(keys)
    runs = np.sort(np.concatenate([sorted_keys + s for s in np.sort(shifts)]), kind="stable")
    return runs[_run_starts(runs)]


def bitmap_unique(a: np.ndarray, top: int) -> np.ndarray:
    """Sorted unique values of non-negative integers at most ``top``, marked in a bitmap."""
    seen = np.zeros(top + 1, bool)
    seen[a] = True
    return np.flatnonzero(seen).astype(a.dtype, copy=False)


def sort_unique(a: np.ndarray) -> np.ndarray:
    """Sorted unique values of an array (flattened), by sorting."""
    s = np.sort(np.asarray(a).ravel())
    return s[_run_starts(s)]


def unique_counts(a: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``(values, counts)``: the sorted unique values of an array (flattened) and how often each
    occurs, as ``np.unique(a, return_counts=True)``, by one sort."""
    s = np.sort(np.asarray(a).ravel())
    starts = np.flatnonzero(_run_starts(s))
    return s[starts], np.diff(np.append(starts, len(s)))


def _run_starts(s: np.ndarray) -> np.ndarray:
    """``(len(s),)`` bool: where a run of equal values of the sorted array ``s`` starts."""
    first = np.empty(len(s), bool)
    first[:1] = True
    np.not_equal(s[1:], s[:-1], out=first[1:])
    return first


def unique_rows(a: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``(first, inverse)`` of the distinct rows of an integer array ``(N, D)``, as
    ``np.unique(a, axis=0, return_index=True, return_inverse=True)`` gives them (rows in
    lexicographic order, each one's first occurrence; ``inverse`` flat), by a stable ``lexsort``:
    3-4x faster on a million rows."""
    a = np.asarray(a)
    order = np.lexsort(a.T[::-1])
    rows = a[order]
    start = np.ones(len(a), bool)
    np.any(rows[1:] != rows[:-1], axis=1, out=start[1:])
    inverse = np.empty(len(a), np.int64)
    inverse[order] = np.cumsum(start) - 1
    return order[start], inverse


def member(a: np.ndarray, sorted_keys: np.ndarray) -> np.ndarray:
    """``(len(a),)`` bool: which values of ``a`` occur in ``sorted_keys`` (sorted ascending)."""
    a = np.asarray(a)
    if len(sorted_keys) == 0:
        return np.zeros(a.shape, bool)
    i = np.minimum(np.searchsorted(sorted_keys, a), len(sorted_keys) - 1)
    return sorted_keys[i] == a


def setdiff(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Sorted unique values of ``a`` not in ``b``, as ``np.setdiff1d(a, b)``."""
    ua = unique(a)
    return ua[~member(ua, unique(b))]


def intersect(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Sorted unique values in both ``a`` and ``b``, as ``np.intersect1d(a, b)``."""
    ua = unique(a)
    return ua[member(ua, unique(b))]


def union(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Sorted unique values in ``a`` or ``b``, as ``np.union1d(a, b)``."""
    return unique(np.concatenate([np.asarray(a).ravel(), np.asarray(b).ravel()]))


def gather_rows(t, idx):
    """``t[idx]`` for a torch tensor ``t`` and an integer tensor ``idx`` of any shape, by
    ``index_select`` on the flattened index: the same values, 2-3x faster on CPU than advanced
    indexing for rows of a few floats (a grid's values, a patch's frame)."""
    return t.index_select(0, idx.reshape(-1)).reshape(*idx.shape, *t.shape[1:])
