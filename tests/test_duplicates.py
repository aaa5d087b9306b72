"""Repeated samples (deepcsp.geometry.duplicates): merged before any rule measures sample spacings
(the pipeline on a cloud given twice: tests/test_reconstruct.py)."""

from __future__ import annotations

import numpy as np

from deepcsp.geometry.duplicates import merge_duplicates


def sphere_cloud(rng, n: int, radius: float = 0.3) -> np.ndarray:
    p = rng.normal(size=(n, 3))
    return radius * p / np.linalg.norm(p, axis=1, keepdims=True)


def test_a_randomly_sampled_cloud_is_left_as_it_is_though_some_samples_lie_very_close(rng):
    cloud = sphere_cloud(rng, 10_000)
    merged = merge_duplicates(cloud)
    assert merged.n_repeated == 0
    np.testing.assert_array_equal(merged.points, np.unique(cloud, axis=0))


def test_a_scanned_grid_of_close_samples_on_lines_far_apart_is_left_as_it_is():
    x, y = np.meshgrid(np.arange(400) * 0.001, np.arange(40) * 0.01)
    lines = np.stack([x.ravel(), y.ravel(), np.zeros(x.size)], 1)
    assert merge_duplicates(lines).n_repeated == 0


def test_exact_repeats_in_any_order_are_removed(rng):
    cloud = sphere_cloud(rng, 2000)
    given = np.concatenate([cloud, cloud[::-1], cloud[:500]])
    merged = merge_duplicates(given)
    assert merged.n_repeated == 2500
    np.testing.assert_array_equal(merged.points, np.unique(cloud, axis=0))
    np.testing.assert_array_equal(merge_duplicates(given, keep_order=True).points, cloud)


def test_samples_given_twice_a_rounding_apart_are_merged_into_one(rng):
    cloud = sphere_cloud(rng, 3000)  # spacing about 0.01
    twice = np.concatenate([cloud, cloud + rng.normal(size=cloud.shape) * 1e-6])
    merged = merge_duplicates(twice)
    # every pair merged; random sampling also puts about 1% of the samples within a tenth of a spacing
    assert 3000 <= merged.n_repeated < 3100
    from scipy.spatial import cKDTree

    assert cKDTree(cloud).query(merged.points)[0].max() < 0.002


def test_a_patch_whose_points_coincide_is_fitted_not_a_singular_matrix():
    from deepcsp.geometry.pointset import _weighted_quadric_lstsq

    u, v = np.zeros((2, 8)), np.zeros((2, 8))
    u[1], v[1] = np.cos(np.arange(8)), np.sin(np.arange(8))  # a well-posed row beside it
    z, w = np.full((2, 8), 0.25), np.ones((2, 8))
    c = _weighted_quadric_lstsq(u, v, z, w, np.array([[0.0, 0.0, 0.0, 1e-3, 1e-3, 1e-3]] * 2) * 8)
    assert np.isfinite(c).all()
    np.testing.assert_allclose(c[:, 0], 0.25, rtol=1e-5)  # the same height, all but the quadric ridge's bias
