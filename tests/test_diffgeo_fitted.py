"""Normals and curvatures of small fitted fields, the ExactField path and ``deepcsp query
--normals --curvature`` end to end."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from deepcsp.fields import FieldConfig
from deepcsp.fields import diffgeo as fdg
from deepcsp.fields.query import ExactField
from deepcsp.fit import fit_surface
from deepcsp.fit.config import FitConfig
from deepcsp.fit.presets import udf_baseline
from deepcsp.geometry import analytic
from deepcsp.geometry.analytic import box_mesh
from deepcsp.geometry.sampling import sample_surface
from deepcsp.io.surface import surface_from_arrays

SPHERE = analytic.Sphere(radius=0.3)
TINY = FitConfig(max_steps=0, eval_points=0, field=FieldConfig(resolution=64, coarse_resolution=24))


@pytest.fixture(scope="module")
def sphere_surface():
    return surface_from_arrays(*SPHERE.mesh(4), name="sphere")


@pytest.fixture(scope="module")
def csp_field(sphere_surface):
    return fit_surface(sphere_surface, TINY).field


@pytest.fixture(scope="module")
def udf_field(sphere_surface):
    return fit_surface(sphere_surface, udf_baseline(TINY)).field


@pytest.fixture(scope="module")
def samples(sphere_surface):
    s = sample_surface(sphere_surface.vertices, sphere_surface.faces, 1500, np.random.default_rng(0))
    return s.points, s.normals / np.linalg.norm(s.normals, axis=1, keepdims=True)


def _unsigned_deg(n, ref):
    return np.degrees(np.arccos(np.clip(np.abs((n * ref).sum(1)), 0, 1)))


@pytest.mark.parametrize("method", ["corners", "direction", "jacobian"])
def test_fitted_csp_normals_at_surface(csp_field, samples, method):
    q, nt = samples
    ang = _unsigned_deg(csp_field.normals(q, method=method), nt)
    assert np.median(ang) < 2.0 and np.percentile(ang, 95) < 6.0, (np.median(ang), np.percentile(ang, 95))


def test_corner_normals_fitted_sphere(csp_field, samples):
    """The default for band grids; measured 0.66 / 1.76 deg (median / p95) on this coarse fit."""
    q, nt = samples
    ang = _unsigned_deg(fdg.normals(csp_field, q), nt)
    assert np.median(ang) < 1.0 and np.percentile(ang, 95) < 2.5, (np.median(ang), np.percentile(ang, 95))


def _box(rotation=(0.3, 0.5, 0.2), half=(0.3, 0.2, 0.25)):
    from scipy.spatial.transform import Rotation

    v, f = box_mesh(2 * np.array(half))
    rot = Rotation.from_euler("xyz", rotation).as_matrix()
    return v @ rot.T, f, rot, np.array(half)


def test_corner_normals_exact_on_flat_faces():
    """On a rotated box the vertices projecting onto a sample's face carry that face's exact normal:
    corner normals are exact (float32) away from the edges, where Jacobian normals are not."""
    v, f, rot, half = _box()
    surf = surface_from_arrays(v, f, name="box")
    field = fit_surface(
        surf, FitConfig(max_steps=0, eval_points=0, field=FieldConfig(resolution=48, coarse_resolution=16))
    ).field
    s = sample_surface(v, f, 1000, np.random.default_rng(0))
    nt = s.normals / np.linalg.norm(s.normals, axis=1, keepdims=True)
    h = 1.0 / 47 / float(field.normalization.scale)
    edge_gap = np.sort(half - np.abs(s.points @ rot), axis=1)[:, 1]  # distance to the nearest edge
    far = edge_gap > 2 * h
    assert far.mean() > 0.5
    ang = _unsigned_deg(field.normals(s.points, method="corners"), nt)
    assert ang[far].max() < 0.1, ang[far].max()
    assert (
        field.closed
        and (
            np.degrees(np.arccos(np.clip((field.normals(s.points[far], method="auto") * nt[far]).sum(1), -1, 1))) < 0.1
        ).all()
    )  # outward


def test_fitted_closed_normals_outward(csp_field, samples):
    """Closed fields default to outward normals: at the surface, inside and outside."""
    q, nt = samples
    assert csp_field.closed
    rng = np.random.default_rng(2)
    t = rng.uniform(0.005, 0.04, len(q))[:, None]
    for pts in (q, q - t * nt, q + t * nt):
        for method in ("auto", "jacobian", "direction"):
            cos = (csp_field.normals(pts, method=method) * nt).sum(1)
            assert (cos > 0.9).all(), (method, (cos <= 0.9).sum())
    c = csp_field.curvatures(q - t * nt)  # inside queries; signs refer to the outward normals
    assert (c.normals * nt).sum(1).min() > 0.9
    assert np.median(np.abs(c.mean * SPHERE.radius - 1)) < 0.15


def test_orient_query_and_open_fields(sphere_surface, samples):
    q, nt = samples
    half = sphere_surface.faces[(sphere_surface.vertices[sphere_surface.faces].mean(1)[:, 2] > 0)]
    cap = ExactField(sphere_surface.vertices, half)
    assert not cap.closed
    with pytest.raises(ValueError, match="closed"):
        cap.normals(q[:5], orient="outward")
    top = q[:, 2] > 0.1
    p = q[top] - 0.02 * nt[top]  # under the cap: towards the query side = inward
    assert ((cap.normals(p, method="jacobian") * nt[top]).sum(1) < -0.9).mean() > 0.99
    with pytest.raises(ValueError, match="orient"):
        cap.normals(q[:5], orient="inward")


def test_fitted_normals_point_to_query_side(csp_field, udf_field, samples):
    q, nt = samples
    rng = np.random.default_rng(1)
    side = rng.choice([-1.0, 1.0], len(q))
    p = q + (side * rng.uniform(0.01, 0.04, len(q)))[:, None] * nt
    for field, method in [
        (csp_field, "corners"),
        (csp_field, "direction"),
        (csp_field, "jacobian"),
        (udf_field, "udf_gradient"),
    ]:
        cos = (field.normals(p, method=method, orient="query") * nt * side[:, None]).sum(1)
        assert (cos > 0.9).mean() > 0.99, method


def test_udf_gradient_degrades_on_surface(csp_field, udf_field, samples):
    """The paper's point: the UDF gradient is unreliable exactly on the surface, CSP's Jacobian is not."""
    q, nt = samples
    udf_at_p = np.median(_unsigned_deg(udf_field.normals(q, method="udf_gradient", offset=0.0), nt))
    csp_jac = np.median(_unsigned_deg(csp_field.normals(q, method="jacobian"), nt))
    assert udf_at_p > 5 * csp_jac


def test_fitted_sphere_curvature(csp_field, udf_field, samples):
    q, nt = samples
    for field in (csp_field, udf_field):
        c = field.curvatures(q)
        sign = np.sign((c.normals * nt).sum(1))
        rel = np.abs(c.mean * sign - 1 / SPHERE.radius) * SPHERE.radius
        assert np.median(rel) < 0.15, (field.kind, np.median(rel))
        assert np.median(np.abs(c.gaussian * SPHERE.radius**2 - 1)) < 0.3
        assert np.allclose(c.mean, (c.k1 + c.k2) / 2) and (c.k1 >= c.k2).all()


def test_exact_field_normals(sphere_surface, samples):
    field = ExactField(sphere_surface.vertices, sphere_surface.faces)
    q, nt = samples
    ang = _unsigned_deg(field.normals(q, method="jacobian"), nt)
    assert np.median(ang) < 0.5
    # Closed exact field: outward by default (method auto = the closest triangle's normal), also from inside.
    assert field.closed
    p = q[:300] - 0.03 * nt[:300]
    for pts in (q[:300], p):
        assert ((field.normals(pts) * nt[:300]).sum(1) > 0.99).all()
    assert ((field.normals(p, orient="query") * nt[:300]).sum(1) < -0.99).all()
    with pytest.raises(ValueError, match="band-grid"):
        field.normals(q[:5], method="corners")


def test_query_cli_normals_curvature(tmp_path, csp_field, samples):
    from deepcsp.cli.main import main

    q, nt = samples
    p = (q + 0.02 * nt)[:200]
    csp_field.save(tmp_path / "f.safetensors")
    np.save(tmp_path / "p.npy", p)
    rc = main(
        [
            "query",
            str(tmp_path / "f.safetensors"),
            str(tmp_path / "p.npy"),
            "-o",
            str(tmp_path / "o.npz"),
            "--normals",
            "--curvature",
        ]
    )
    assert rc == 0
    out = np.load(tmp_path / "o.npz")
    assert out["normals"].shape == (200, 3)
    for k in ("k1", "k2", "mean_curvature", "gaussian_curvature"):
        assert out[k].shape == (200,) and np.isfinite(out[k]).all()
    assert ((out["normals"] * nt[:200]).sum(1) > 0.99).all()
    assert np.median(np.abs(out["mean_curvature"] * SPHERE.radius - 1)) < 0.15
    # Queries inside the closed shape still get outward normals (and positive sphere curvature).
    np.save(tmp_path / "pin.npy", (q - 0.02 * nt)[:200])
    assert (
        main(
            [
                "query",
                str(tmp_path / "f.safetensors"),
                str(tmp_path / "pin.npy"),
                "-o",
                str(tmp_path / "i.npz"),
                "--normals",
                "--curvature",
            ]
        )
        == 0
    )
    inside = np.load(tmp_path / "i.npz")
    assert ((inside["normals"] * nt[:200]).sum(1) > 0.99).all()
    assert np.median(np.abs(inside["mean_curvature"] * SPHERE.radius - 1)) < 0.15
    rc = main(
        ["query", str(tmp_path / "f.safetensors"), str(tmp_path / "p.npy"), "-o", str(tmp_path / "n.npz"), "--normals"]
    )
    assert rc == 0 and set(np.load(tmp_path / "n.npz")) == {"closest_points", "distances", "normals"}


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_cuda_matches_cpu(csp_field, samples):
    q, _ = samples
    n_cpu = csp_field.normals(q[:300], method="jacobian")
    a_cpu = fdg.normals(csp_field, q[:300])  # corners, outward
    c_cpu = csp_field.curvatures(q[:300])
    csp_field.to("cuda")
    try:
        n_gpu = csp_field.normals(q[:300], method="jacobian")
        a_gpu = fdg.normals(csp_field, q[:300])
        c_gpu = csp_field.curvatures(q[:300])
    finally:
        csp_field.to("cpu")
    assert np.abs(np.abs((n_cpu * n_gpu).sum(1)) - 1).max() < 1e-3
    assert ((a_cpu * a_gpu).sum(1) > 1 - 1e-3).all()
    assert np.median(np.abs(c_cpu.mean - c_gpu.mean)) < 1e-2 * np.median(np.abs(c_cpu.mean))


def test_exact_spot_normals_outward(bundled_spot):
    """A closed mesh (the bundled spot) through its exact oracle: outward normals at, inside and
    outside the surface."""
    from deepcsp.io import load_surface

    s = load_surface(bundled_spot)
    field = ExactField(s.vertices, s.faces, s.normalization)
    assert field.closed
    smp = sample_surface(s.vertices, s.faces, 400, np.random.default_rng(3))
    nt = smp.normals / np.linalg.norm(smp.normals, axis=1, keepdims=True)
    for pts in (smp.points, smp.points - 0.003 * nt, smp.points + 0.003 * nt):
        cos = (field.normals(pts) * nt).sum(1)
        axis_ok = np.abs(cos) > 0.9  # (1.5% of the exact oracle's central-difference normals miss near edges)
        assert axis_ok.mean() > 0.95 and (cos[axis_ok] > 0).all(), (axis_ok.mean(), (cos[axis_ok] <= 0).sum())
