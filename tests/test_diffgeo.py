"""Differential geometry from CSP: formulas on exact analytic CSP maps (to 1e-4), then fitted fields."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from deepcsp.fields import diffgeo as fdg
from deepcsp.fields.query import Field
from deepcsp.geometry import analytic
from deepcsp.geometry import diffgeo as dg
from deepcsp.geometry.normalize import Normalization


class AnalyticField(Field):
    """An exact, differentiable CSP map of an analytic surface (torch, any dtype)."""

    kind = "csp"

    def __init__(self, shape, normalization: Normalization | None = None):
        self.shape = shape
        self.normalization = normalization or Normalization.identity()
        self.device = torch.device("cpu")

    def closest_points_normalized(self, x: torch.Tensor) -> torch.Tensor:
        s = self.shape
        p = self.normalization.to_input(x)  # the shapes are given in input coordinates
        if isinstance(s, analytic.Sphere):
            c = torch.as_tensor(s.center, dtype=p.dtype)
            d = p - c
            q = c + s.radius * d / d.norm(dim=1, keepdim=True)
        elif isinstance(s, analytic.Plane):
            n = torch.as_tensor(s.normal, dtype=p.dtype)
            n = n / n.norm()
            q = p - ((p - torch.as_tensor(s.origin, dtype=p.dtype)) @ n)[:, None] * n
        elif isinstance(s, analytic.Cylinder):
            xy = p[:, :2]
            q = torch.cat([s.radius * xy / xy.norm(dim=1, keepdim=True), p[:, 2:]], 1)
        elif isinstance(s, analytic.Torus):
            xy = p[:, :2]
            ring = torch.cat([s.R * xy / xy.norm(dim=1, keepdim=True), torch.zeros_like(p[:, 2:])], 1)
            d = p - ring
            q = ring + s.r * d / d.norm(dim=1, keepdim=True)
        else:
            raise TypeError(s)
        return self.normalization.to_normalized(q)


SHAPES = {
    "sphere": analytic.Sphere(radius=0.3, center=(0.05, -0.02, 0.01)),
    "plane": analytic.Plane(normal=(0.2, -0.3, 1.0), origin=(0.0, 0.1, 0.0)),
    "cylinder": analytic.Cylinder(radius=0.25),
    "torus": analytic.Torus(R=0.3, r=0.1),
}


def _surface_samples(shape, n: int, rng) -> np.ndarray:
    """Points on ``shape`` (closest points of random points in a shell around it)."""
    if isinstance(shape, analytic.Torus):
        u, v = rng.uniform(0, 2 * np.pi, (2, n))
        rho = shape.R + shape.r * np.cos(v)
        return np.stack([rho * np.cos(u), rho * np.sin(u), shape.r * np.sin(v)], 1)
    p = rng.uniform(-0.4, 0.4, (n, 3))
    return shape.closest_points(p)


def _queries(name: str, n: int, rng, side: float = 1.0):
    """Surface points q, true outward normals and query points q + t n (t in [0.01, 0.04])."""
    shape = SHAPES[name]
    q = _surface_samples(shape, n, rng)
    nt = shape.normals(q)
    t = rng.uniform(0.01, 0.04, n)
    return q, nt, q + side * t[:, None] * nt


@pytest.fixture
def rng():
    return np.random.default_rng(0)


# ----------------------------------------------------------------------- pure formulas


def test_formulas_roundtrip_synthetic_jacobian(rng):
    n = torch.as_tensor(rng.normal(size=(50, 3)))
    n = n / n.norm(dim=1, keepdim=True)
    T = dg.tangent_basis(n)
    ang = torch.as_tensor(rng.uniform(0, np.pi, 50))
    e1 = T[..., 0] * torch.cos(ang)[:, None] + T[..., 1] * torch.sin(ang)[:, None]
    e2 = torch.linalg.cross(n, e1)
    k1 = torch.as_tensor(rng.uniform(0.5, 5, 50))
    k2 = torch.as_tensor(rng.uniform(-5, 0.4, 50))
    t = torch.as_tensor(rng.uniform(0.01, 0.1, 50))
    J = dg.jacobian_of_offset_surface(n, t, k1, k2, e1, e2)
    assert torch.allclose(J @ n[:, :, None], torch.zeros(50, 3, 1, dtype=J.dtype), atol=1e-12)
    # The normal spans J's null space and is orthogonal to its range (the tangent plane).
    nj = dg.normal_from_jacobian(J, orient=n)
    assert torch.allclose(nj, n, atol=1e-9)
    c = dg.curvatures_from_jacobian(J, n, t)
    assert torch.allclose(c.k1, k1, rtol=1e-9) and torch.allclose(c.k2, k2, rtol=1e-9)
    assert torch.allclose((c.dir1 * e1).sum(1).abs(), torch.ones(50, dtype=J.dtype), atol=1e-7)
    assert torch.allclose(c.mean, (k1 + k2) / 2) and torch.allclose(c.gaussian, k1 * k2)
    # Hessian of the distance: mu = k / (1 + t k) on the tangent plane.
    H = (k1 / (1 + t * k1))[:, None, None] * e1[:, :, None] * e1[:, None, :] + (k2 / (1 + t * k2))[:, None, None] * e2[
        :, :, None
    ] * e2[:, None, :]
    ch = dg.curvatures_from_hessian(H, n, t)
    assert torch.allclose(ch.k1, k1, rtol=1e-9) and torch.allclose(ch.k2, k2, rtol=1e-9)


def test_formulas_reject_bad_shapes():
    with pytest.raises(ValueError, match=r"\(N, 3, 3\)"):
        dg.normal_from_jacobian(torch.zeros(4, 3))
    with pytest.raises(ValueError, match="normals"):
        dg.curvatures_from_jacobian(torch.zeros(4, 3, 3), torch.zeros(5, 3), torch.zeros(4))


# ----------------------------------------------------------------------- exact analytic CSP maps


@pytest.mark.parametrize("name", list(SHAPES))
@pytest.mark.parametrize("jac", ["autograd", "central"])
def test_analytic_curvatures(name, jac, rng):
    shape, field = SHAPES[name], AnalyticField(SHAPES[name])
    q, nt, p = _queries(name, 200, rng)
    step = 1e-5 if jac == "central" else None
    tol = 1e-4
    for at in ("query", "offset"):
        c = fdg.curvatures(field, p, at=at, jacobian=jac, step=step)
        k1, k2 = shape.curvatures(q)
        np.testing.assert_allclose(c.normals, nt, atol=1e-6)
        np.testing.assert_allclose(c.k1, k1, atol=tol, rtol=tol)
        np.testing.assert_allclose(c.k2, k2, atol=tol, rtol=tol)
        np.testing.assert_allclose(c.mean, (k1 + k2) / 2, atol=tol, rtol=tol)
        np.testing.assert_allclose(c.gaussian, k1 * k2, atol=tol * 50, rtol=tol)
        # Principal directions are tangent and orthonormal.
        assert np.abs((c.dir1 * nt).sum(1)).max() < 1e-6
        assert np.abs((c.dir1 * c.dir2).sum(1)).max() < 1e-6


def test_analytic_curvature_flips_with_query_side(rng):
    """From inside the sphere the normal points inwards, so k = -1/r."""
    shape, field = SHAPES["sphere"], AnalyticField(SHAPES["sphere"])
    q, nt, p = _queries("sphere", 100, rng, side=-1.0)
    c = fdg.curvatures(field, p, at="query", jacobian="autograd")
    np.testing.assert_allclose(c.normals, -nt, atol=1e-6)
    np.testing.assert_allclose(c.k1, -1 / shape.radius, rtol=1e-4)
    np.testing.assert_allclose(c.gaussian, 1 / shape.radius**2, rtol=1e-4)


def test_torus_principal_directions(rng):
    """Tube direction (curvature 1/r) is the meridian; ring direction is the azimuth."""
    field = AnalyticField(SHAPES["torus"])
    q, nt, p = _queries("torus", 100, rng)
    c = fdg.curvatures(field, p, at="query", jacobian="autograd")
    az = np.stack([-q[:, 1], q[:, 0], np.zeros(len(q))], 1)
    az /= np.linalg.norm(az, axis=1, keepdims=True)
    assert np.abs((c.dir2 * az).sum(1)).min() > 1 - 1e-6  # k2 = ring curvature < 1/r


@pytest.mark.parametrize("name", list(SHAPES))
@pytest.mark.parametrize("method", ["direction", "jacobian", "udf_gradient"])
def test_analytic_normals(name, method, rng):
    field = AnalyticField(SHAPES[name])
    q, nt, p = _queries(name, 200, rng)
    n = fdg.normals(field, p, method=method, jacobian="autograd", offset=0.005)  # all queries off the surface
    np.testing.assert_allclose(n, nt, atol=1e-6)
    # The direction p - CSP(p) is orthogonal to the tangent plane (range of J).
    x = torch.as_tensor(p)
    J = fdg.jacobian(field.closest_points_normalized, x, "autograd")
    d = torch.as_tensor(p - q)
    assert (d[:, None, :] @ J).abs().max() < 1e-9


@pytest.mark.parametrize("method", ["direction", "jacobian", "udf_gradient"])
def test_normals_on_surface_unsigned(method, rng):
    """Points exactly on the surface: back-off (direction, udf_gradient) or the Jacobian's null
    space give the normal up to sign."""
    field = AnalyticField(SHAPES["torus"])
    q = _surface_samples(SHAPES["torus"], 200, rng)
    n = fdg.normals(field, q, method=method, jacobian="autograd", offset=0.01)
    cos = np.abs((n * SHAPES["torus"].normals(q)).sum(1))
    assert cos.min() > 1 - 1e-6  # back-off refinement leaves ~(offset k)^3 rad


def test_input_coordinates_scale_curvature(rng):
    """A field over a normalisation: curvature and offsets are in input units."""
    shape = analytic.Sphere(radius=3.0, center=(10.0, 0.0, 0.0))
    field = AnalyticField(shape, Normalization(center=(10.0, 0.0, 0.0), scale=0.1))
    q = shape.closest_points(rng.normal(size=(50, 3)) + np.array([10.0, 0, 0]))
    c = field.curvatures(q, offset=0.2, jacobian="autograd")
    np.testing.assert_allclose(np.abs(c.k1), 1 / 3.0, rtol=1e-4)
    np.testing.assert_allclose(np.abs(c.k2), 1 / 3.0, rtol=1e-4)
    np.testing.assert_allclose(c.gaussian, 1 / 9.0, rtol=1e-4)


def test_public_entry_checks():
    field = AnalyticField(SHAPES["sphere"])
    with pytest.raises(ValueError, match=r"\(N, 3\)"):
        field.normals(np.zeros((4, 2)))
    with pytest.raises(ValueError, match="NaN"):
        field.curvatures(np.full((2, 3), np.nan))
    with pytest.raises(ValueError, match="method"):
        field.normals(np.ones((2, 3)), method="nope")
    with pytest.raises(ValueError, match="offset"):
        field.curvatures(np.ones((2, 3)), offset=-1.0)
    assert field.normals(np.zeros((0, 3))).shape == (0, 3)
    assert field.curvatures(np.zeros((0, 3))).k1.shape == (0,)
