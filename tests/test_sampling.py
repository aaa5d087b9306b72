"""Surface / near-surface / uniform samples: seeded, area-weighted, exact, cached by content."""

from __future__ import annotations

import numpy as np
import pytest

from deepcsp.constants import EXACT_ATOL
from deepcsp.geometry import sampling
from deepcsp.geometry.analytic import Sphere
from deepcsp.geometry.closest import CloudOracle, MeshOracle
from deepcsp.geometry.sampling import (
    SampleConfig,
    cached_training_samples,
    make_training_samples,
    sample_band,
    sample_surface,
)

SMALL = SampleConfig(n_surface=500, near_scales=(0.003, 0.03), n_near_per_scale=1000, n_uniform=700, seed=3)


@pytest.fixture(scope="module")
def sphere_mesh():
    return Sphere(0.3).mesh(3)


def test_sample_surface_is_seeded(sphere_mesh):
    v, f = sphere_mesh
    a = sample_surface(v, f, 1000, np.random.default_rng(7))
    b = sample_surface(v, f, 1000, np.random.default_rng(7))
    c = sample_surface(v, f, 1000, np.random.default_rng(8))
    np.testing.assert_array_equal(a.points, b.points)
    np.testing.assert_array_equal(a.face_ids, b.face_ids)
    assert not np.allclose(a.points, c.points)


def test_surface_samples_lie_on_their_faces(sphere_mesh, rng):
    v, f = sphere_mesh
    s = sample_surface(v, f, 5000, rng)
    r = MeshOracle(v, f).query(s.points)
    assert r.distances.max() < EXACT_ATOL
    # the sample is inside its own face: barycentrics in [0, 1]
    from deepcsp.geometry.closest import triangle_barycentrics

    bary = triangle_barycentrics(s.points, v[f[s.face_ids]])
    assert bary.min() > -1e-9 and bary.max() < 1 + 1e-9
    np.testing.assert_allclose(np.linalg.norm(s.normals, axis=1), 1.0, atol=1e-12)
    np.testing.assert_allclose(s.normals, MeshOracle(v, f).face_normals()[s.face_ids], atol=1e-12)


def test_sampling_is_area_weighted(rng):
    # two disjoint triangles with areas 1 and 3: a quarter of the samples land on the first
    v = np.array([[0, 0, 0], [2, 0, 0], [0, 1, 0], [5, 0, 0], [8, 0, 0], [5, 2, 0]], float)
    f = np.array([[0, 1, 2], [3, 4, 5]])
    n = 40_000
    s = sample_surface(v, f, n, rng)
    frac = float((s.face_ids == 0).mean())
    assert abs(frac - 0.25) < 4 * np.sqrt(0.25 * 0.75 / n)
    # uniform inside a triangle: the mean is the centroid
    on0 = s.points[s.face_ids == 0]
    np.testing.assert_allclose(on0.mean(0), v[:3].mean(0), atol=0.02)


def test_cloud_samples_are_input_points(rng):
    cloud = rng.random((100, 3))
    s = sample_surface(cloud, None, 300, rng)
    np.testing.assert_array_equal(s.points, cloud[s.face_ids])


def test_training_samples(sphere_mesh):
    v, f = sphere_mesh
    oracle = MeshOracle(v, f)
    s = make_training_samples(v, f, oracle, SMALL)
    n = SMALL.n_surface + SMALL.n_near_per_scale * len(SMALL.near_scales) + SMALL.n_uniform
    assert len(s) == n and s.points.shape == (n, 3) and s.closest.shape == (n, 3)
    assert [int((s.kind == k).sum()) for k in (0, 1, 2)] == [500, 2000, 700]
    # ground truth is exact for every sample
    r = oracle.query(s.points)
    np.testing.assert_allclose(s.distances, r.distances, atol=EXACT_ATOL)
    np.testing.assert_allclose(s.closest, r.points, atol=EXACT_ATOL)
    np.testing.assert_allclose(np.linalg.norm(s.points - s.closest, axis=1), s.distances, atol=1e-12)
    assert s.distances[s.kind == 0].max() < EXACT_ATOL
    assert np.abs(s.points).max() <= SMALL.box_half
    # near samples follow their Gaussian scales (|offset| ~ sigma * sqrt(2/pi) along the normal)
    near = s.distances[s.kind == 1]
    med_small, med_large = np.median(near[:1000]), np.median(near[1000:])
    assert 0.001 < med_small < 0.004 and 0.01 < med_large < 0.04
    # seeded: the same config gives the same samples
    again = make_training_samples(v, f, oracle, SMALL)
    np.testing.assert_array_equal(again.points, s.points)


def test_training_samples_of_a_cloud(rng):
    cloud = Sphere(0.3).closest_points(rng.normal(size=(2000, 3)))
    s = make_training_samples(cloud, None, CloudOracle(cloud), SMALL)
    # surface samples are input points; every closest point is an input point
    assert s.distances[s.kind == 0].max() == 0.0
    np.testing.assert_array_equal(s.closest, cloud[s.face_ids])


def test_cache_is_keyed_by_content_and_reused(sphere_mesh, tmp_path, monkeypatch):
    v, f = sphere_mesh
    oracle = MeshOracle(v, f)
    first = cached_training_samples(v, f, oracle, SMALL, tmp_path)
    files = sorted(tmp_path.glob("samples-*.npz"))
    assert len(files) == 1

    calls = []
    real = sampling.make_training_samples

    def counting(*a, **k):
        calls.append(1)
        return real(*a, **k)

    monkeypatch.setattr(sampling, "make_training_samples", counting)
    # same content (a copy of the arrays): loaded from the cache, not recomputed
    second = cached_training_samples(v.copy(), f.copy(), oracle, SMALL, tmp_path)
    assert calls == []
    for name in ("points", "closest", "distances", "face_ids", "kind"):
        np.testing.assert_array_equal(getattr(second, name), getattr(first, name))
    # other config or other geometry: a new entry
    cached_training_samples(v, f, oracle, SampleConfig(**{**SMALL.__dict__, "seed": 4}), tmp_path)
    v2 = v * 1.01
    cached_training_samples(v2, f, MeshOracle(v2, f), SMALL, tmp_path)
    assert len(calls) == 2 and len(list(tmp_path.glob("samples-*.npz"))) == 3
    # a corrupt cache file is rebuilt, not trusted
    files[0].write_bytes(b"not a zip at all")
    rebuilt = cached_training_samples(v, f, oracle, SMALL, tmp_path)
    assert len(calls) == 3
    np.testing.assert_array_equal(rebuilt.points, first.points)
    with np.load(files[0]) as z:  # and the file is valid again
        np.testing.assert_array_equal(z["points"], first.points)
    # no temporary files are left behind
    assert not list(tmp_path.glob(".*tmp*"))


def test_cache_dir_none_computes(sphere_mesh):
    v, f = sphere_mesh
    s = cached_training_samples(v, f, MeshOracle(v, f), SMALL, None)
    assert len(s) == 3200


def test_sample_band(sphere_mesh, rng):
    v, f = sphere_mesh
    oracle = MeshOracle(v, f)
    b = sample_band(v, f, oracle, 3000, 0.02, rng)
    assert b.points.shape == (3000, 3)
    assert b.distances.max() <= 0.02
    np.testing.assert_allclose(oracle.query(b.points).distances, b.distances, atol=EXACT_ATOL)
    # uniform in the band: both sides of the sphere, roughly by volume (outer shell is larger)
    outside = float((np.linalg.norm(b.points, axis=1) > 0.3).mean())
    assert 0.5 < outside < 0.62
    again = sample_band(v, f, oracle, 3000, 0.02, np.random.default_rng(12345))
    np.testing.assert_array_equal(again.points, b.points)
