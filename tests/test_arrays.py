"""The sort-based set operations of deepcsp._arrays give numpy's answers."""

from __future__ import annotations

import numpy as np
import pytest

from deepcsp import _arrays


@pytest.mark.parametrize("n", [0, 1, 2, 1000])
def test_set_operations_match_numpy(rng, n):
    a = rng.integers(-50, 50, n)
    b = rng.integers(-50, 50, n // 2 + 1)
    assert np.array_equal(_arrays.unique(a), np.unique(a))
    assert np.array_equal(_arrays.setdiff(a, b), np.setdiff1d(a, b))
    assert np.array_equal(_arrays.intersect(a, b), np.intersect1d(a, b))
    assert np.array_equal(_arrays.union(a, b), np.union1d(a, b))
    assert np.array_equal(_arrays.member(a, _arrays.unique(b)), np.isin(a, b))
    assert _arrays.unique(a).dtype == a.dtype


def test_member_of_nothing_and_2d_unique():
    assert not _arrays.member(np.arange(3), np.zeros(0, np.int64)).any()
    faces = np.array([[3, 1, 2], [2, 1, 0]])
    assert np.array_equal(_arrays.unique(faces), [0, 1, 2, 3])  # flattened, as np.unique


@pytest.mark.parametrize("dtype", [np.int64, np.int32, np.uint16, np.uint8])
@pytest.mark.parametrize("top", [1, 200, 10**9])
def test_unique_by_bitmap_or_sort_gives_numpys_answer(rng, dtype, top):
    """Non-negative keys from a range within ``BITMAP_SPAN`` times their count go through the
    bitmap, wider ranges through the sort: both give np.unique's values and dtype."""
    top = min(top, np.iinfo(dtype).max)
    a = rng.integers(0, top + 1, 500).astype(dtype)
    u = _arrays.unique(a)
    assert np.array_equal(u, np.unique(a)) and u.dtype == a.dtype
    assert np.array_equal(_arrays.bitmap_unique(a, int(a.max())), np.unique(a))
    assert np.array_equal(_arrays.sort_unique(a), np.unique(a))


@pytest.mark.parametrize("n", [0, 1, 500])
@pytest.mark.parametrize("top", [40, 10**9])
@pytest.mark.parametrize("low", [0, -30])
def test_shifted_unique_gives_the_unique_sums(rng, n, top, low):
    """Keys plus every shift, repeated keys and shifts in any order: the sorted unique sums, by the
    bitmap (a dense range), the merged runs (a sparse one) or the sort (negative sums)."""
    keys = rng.integers(low, top, n)
    shifts = rng.permutation(np.array([0, 1, 7, 7, 2 * top, low], np.int64))
    expected = np.unique(keys[:, None] + shifts[None])
    got = _arrays.shifted_unique(keys, shifts)
    assert np.array_equal(got, expected) and got.dtype == expected.dtype


@pytest.mark.parametrize("n", [0, 1, 2, 1000])
def test_unique_counts_matches_numpy(rng, n):
    a = rng.integers(-50, 50, n)
    values, counts = np.unique(a, return_counts=True)
    got_values, got_counts = _arrays.unique_counts(a)
    assert np.array_equal(got_values, values) and np.array_equal(got_counts, counts)


@pytest.mark.parametrize("n", [0, 1, 2, 1000])
def test_unique_rows_matches_numpy(rng, n):
    a = rng.integers(-3, 3, (n, 3))
    _, first, inverse = np.unique(a, axis=0, return_index=True, return_inverse=True)
    got_first, got_inverse = _arrays.unique_rows(a)
    assert np.array_equal(got_first, first)
    assert np.array_equal(got_inverse, inverse.reshape(-1))
