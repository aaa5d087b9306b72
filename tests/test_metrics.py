"""Metrics: hand-computed cases, point-cloud-utils agreement, point-to-mesh comparisons."""

from __future__ import annotations

import numpy as np
import pytest

from deepcsp.geometry.analytic import Sphere
from deepcsp.geometry.metrics import chamfer, compare_surfaces, fscore, normal_angle_error


def test_chamfer_hand_case():
    a = np.array([[0.0, 0, 0], [1, 0, 0], [0, 3, 4]])
    b = np.array([[0.0, 0, 0], [0, 0, 2]])
    # d(a, B) = [0, 1, sqrt(9 + 4)];  d(b, A) = [0, 2]
    dab = np.array([0.0, 1.0, np.sqrt(13.0)])
    dba = np.array([0.0, 2.0])
    r = chamfer(a, b)
    assert r.a_to_b == pytest.approx(dab.mean())
    assert r.b_to_a == pytest.approx(dba.mean())
    assert r.l1 == pytest.approx(dab.mean() + 1.0)
    assert r.l2 == pytest.approx((0 + 1 + 13) / 3 + (0 + 4) / 2)
    assert r.hausdorff == pytest.approx(np.sqrt(13.0))
    # symmetric in its arguments
    s = chamfer(b, a)
    assert s.l1 == pytest.approx(r.l1) and s.a_to_b == pytest.approx(r.b_to_a)


@pytest.mark.parametrize("seed", [0, 1])
def test_chamfer_l1_equals_point_cloud_utils(seed):
    pcu = pytest.importorskip("point_cloud_utils")
    rng = np.random.default_rng(seed)
    a, b = rng.normal(size=(800, 3)), rng.normal(size=(600, 3)) + 0.1
    r = chamfer(a, b)
    assert r.l1 == pytest.approx(float(pcu.chamfer_distance(a, b)), rel=1e-12)
    assert r.hausdorff == pytest.approx(float(pcu.hausdorff_distance(a, b)), rel=1e-12)


def test_chamfer_against_brute_force(rng):
    from scipy.spatial.distance import cdist

    a, b = rng.random((300, 3)), rng.random((200, 3))
    d = cdist(a, b)
    r = chamfer(a, b)
    assert r.l2 == pytest.approx((d.min(1) ** 2).mean() + (d.min(0) ** 2).mean(), rel=1e-12)


def test_fscore_hand_cases():
    dab = np.array([0.1, 0.2, 0.5])
    dba = np.array([0.1, 0.6])
    # P = 2/3, R = 1/2 -> F = 2 PR / (P + R) = 4/7
    assert fscore(dab, dba, 0.3) == pytest.approx(4 / 7)
    assert fscore(dab, dba, 1.0) == 1.0
    assert fscore(dab, dba, 0.05) == 0.0
    assert fscore(dab, dba, 0.1) == 0.0  # strict inequality: d < tau


def test_hausdorff_is_the_worst_one_sided_distance():
    a = np.array([[0.0, 0, 0], [0.1, 0, 0]])
    b = np.array([[0.0, 0, 0], [0.0, 5, 0]])
    assert chamfer(a, b).hausdorff == pytest.approx(5.0)


def test_normal_angle_error():
    n = np.array([[0, 0, 1.0], [0, 0, 1], [1, 0, 0], [1, 1, 0]])
    ref = np.array([[0, 0, -2.0], [0, 1, 0], [1, 0, 0], [1, 0, 0]])
    np.testing.assert_allclose(normal_angle_error(n, ref), [0, 90, 0, 45], atol=1e-6)
    np.testing.assert_allclose(normal_angle_error(n, ref, unsigned=False), [180, 90, 0, 45], atol=1e-6)
    with pytest.raises(ValueError, match="normals and reference"):
        normal_angle_error(n, ref[:2])


def test_chamfer_input_checks():
    with pytest.raises(ValueError, match=r"a must have shape \(N, 3\)"):
        chamfer(np.zeros((3, 2)), np.zeros((3, 3)))
    with pytest.raises(ValueError, match="NaN"):
        chamfer(np.zeros((3, 3)), np.full((3, 3), np.nan))


def test_compare_identical_meshes():
    v, f = Sphere(0.3).mesh(3)
    m = compare_surfaces(v, f, v, f, n_samples=5000)
    assert m.chamfer_l1 < 1e-9 and m.hausdorff < 1e-9
    assert m.fscore == 1.0
    assert m.normal_consistency == pytest.approx(1.0, abs=1e-9)
    assert set(m.to_dict()) >= {"chamfer_l1", "chamfer_l2", "hausdorff", "normal_consistency", "fscore"}


def test_compare_concentric_spheres_uses_exact_point_to_mesh():
    v, f = Sphere(0.3).mesh(4)
    m = compare_surfaces(v * 1.1, f, v, f, n_samples=4000)  # radius 0.33 vs 0.30
    # every point is ~0.03 from the other sphere (up to tessellation, < 1e-3 at subdivision 4)
    assert m.pred_to_gt == pytest.approx(0.03, abs=1e-3)
    assert m.gt_to_pred == pytest.approx(0.03, abs=1e-3)
    assert m.chamfer_l1 == pytest.approx(0.06, abs=2e-3)
    assert m.hausdorff == pytest.approx(0.03, abs=1.5e-3)
    assert m.normal_consistency > 0.99
    assert m.fscore == 0.0  # tau = 0.5% of the diagonal (0.003) < 0.03
    # sample-to-sample Chamfer overestimates the exact point-to-mesh one
    from deepcsp.geometry.sampling import sample_surface

    rng = np.random.default_rng(0)
    s2s = chamfer(sample_surface(v * 1.1, f, 4000, rng).points, sample_surface(v, f, 4000, rng).points)
    assert s2s.l1 > m.chamfer_l1


def test_compare_cloud_against_mesh(rng):
    v, f = Sphere(0.3).mesh(4)
    cloud = Sphere(0.3).closest_points(rng.normal(size=(3000, 3)))
    m = compare_surfaces(cloud, None, v, f, n_samples=3000)
    assert np.isnan(m.normal_consistency)  # clouds carry no normals
    assert m.pred_to_gt < 1e-3  # cloud points are on the exact sphere, mesh is inscribed
    assert m.gt_to_pred > m.pred_to_gt  # cloud-to-cloud side is sample-limited


def test_eval_values_match_point_cloud_utils_on_the_same_samples(rng):
    """compare_surfaces draws pred samples, then GT samples, from one seeded generator; with those
    samples its Chamfer-L1 is pcu's (clouds) or pcu's point-to-mesh means (meshes)."""
    pcu = pytest.importorskip("point_cloud_utils")
    from deepcsp.geometry.sampling import sample_surface

    n, seed = 3000, 5
    a, b = rng.normal(size=(1000, 3)), rng.normal(size=(900, 3)) * 1.1
    m = compare_surfaces(a, None, b, None, n_samples=n, seed=seed)
    g = np.random.default_rng(seed)
    pa, pb = sample_surface(a, None, n, g).points, sample_surface(b, None, n, g).points
    assert m.chamfer_l1 == pytest.approx(float(pcu.chamfer_distance(pa, pb)), rel=1e-12)

    v, f = Sphere(0.3).mesh(3)
    v2 = v * [1.1, 1.0, 0.9] + 0.01
    m = compare_surfaces(v2, f, v, f, n_samples=n, seed=seed)
    g = np.random.default_rng(seed)
    pa, pb = sample_surface(v2, f, n, g).points, sample_surface(v, f, n, g).points
    d_ab = pcu.closest_points_on_mesh(pa, v, f)[0]
    d_ba = pcu.closest_points_on_mesh(pb, v2, f)[0]
    assert m.chamfer_l1 == pytest.approx(float(d_ab.mean() + d_ba.mean()), rel=1e-6)
    assert m.hausdorff == pytest.approx(float(max(d_ab.max(), d_ba.max())), rel=1e-6)


def test_compare_surfaces_checks_inputs():
    v, f = Sphere(0.3).mesh(1)
    with pytest.raises(ValueError, match="n_samples"):
        compare_surfaces(v, f, v, f, n_samples=0)
    with pytest.raises(ValueError, match="pred_vertices"):
        compare_surfaces(v[:, :2], f, v, f)
