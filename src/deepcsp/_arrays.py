"""Set operations on 1-D integer arrays (grid keys, vertex and face ids), by sorting.

numpy 2.3+ answers a plain ``np.unique(a)``, and the set functions built on it (``setdiff1d``,
``intersect1d``, ``union1d``, ``isin``), with a hash table that is far slower than a sort on the
millions of scattered grid keys the extraction makes (``benchmarks/bm_arrays.py``). These give the
same results (sorted, unique) for integer input."""

from __future__ import annotations

import numpy as np


def unique(a: np.ndarray) -> np.ndarray:
    """Sorted unique values of an integer array (flattened), as ``np.unique(a)``."""
    s = np.sort(np.asarray(a).ravel())
    if len(s) < 2:
        return s
    first = np.empty(len(s), bool)
    first[0] = True
    np.not_equal(s[1:], s[:-1], out=first[1:])
    return s[first]


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
