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


@pytest.mark.parametrize("method", ["direction", "jacobian"])
def test_fitted_csp_normals_at_surface(csp_field, samples, method):
    q, nt = samples
    ang = _unsigned_deg(csp_field.normals(q, method=method), nt)
    assert np.median(ang) < 2.0 and np.percentile(ang, 95) < 6.0, (np.median(ang), np.percentile(ang, 95))


def test_fitted_normals_point_to_query_side(csp_field, udf_field, samples):
    q, nt = samples
    rng = np.random.default_rng(1)
    side = rng.choice([-1.0, 1.0], len(q))
    p = q + (side * rng.uniform(0.01, 0.04, len(q)))[:, None] * nt
    for field, method in [(csp_field, "direction"), (csp_field, "jacobian"), (udf_field, "udf_gradient")]:
        cos = (field.normals(p, method=method) * nt * side[:, None]).sum(1)
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


def test_query_cli_normals_curvature(tmp_path, csp_field, samples):
    from deepcsp.cli.main import main

    q, nt = samples
    p = (q + 0.02 * nt)[:200]
    csp_field.save(tmp_path / "f.safetensors")
    np.save(tmp_path / "p.npy", p)
    rc = main(["query", str(tmp_path / "f.safetensors"), str(tmp_path / "p.npy"), "-o", str(tmp_path / "o.npz"), "--normals", "--curvature"])
    assert rc == 0
    out = np.load(tmp_path / "o.npz")
    assert out["normals"].shape == (200, 3)
    for k in ("k1", "k2", "mean_curvature", "gaussian_curvature"):
        assert out[k].shape == (200,) and np.isfinite(out[k]).all()
    assert ((out["normals"] * nt[:200]).sum(1) > 0.99).all()
    assert np.median(np.abs(out["mean_curvature"] * SPHERE.radius - 1)) < 0.15
    rc = main(["query", str(tmp_path / "f.safetensors"), str(tmp_path / "p.npy"), "-o", str(tmp_path / "n.npz"), "--normals"])
    assert rc == 0 and set(np.load(tmp_path / "n.npz")) == {"closest_points", "distances", "normals"}


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_cuda_matches_cpu(csp_field, samples):
    q, _ = samples
    n_cpu = csp_field.normals(q[:300], method="jacobian")
    c_cpu = csp_field.curvatures(q[:300])
    csp_field.to("cuda")
    try:
        n_gpu = csp_field.normals(q[:300], method="jacobian")
        c_gpu = csp_field.curvatures(q[:300])
    finally:
        csp_field.to("cpu")
    assert np.abs(np.abs((n_cpu * n_gpu).sum(1)) - 1).max() < 1e-3
    assert np.median(np.abs(c_cpu.mean - c_gpu.mean)) < 1e-2 * np.median(np.abs(c_cpu.mean))
