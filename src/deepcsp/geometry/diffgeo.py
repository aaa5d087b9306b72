"""Differential geometry from closest-point maps and distance fields, in closed form (torch).

Conventions (used by the whole package)
---------------------------------------
* The **normal** ``n`` points towards the query side: at a point ``p`` off the surface with
  closest point ``q = CSP(p)``, ``n = (p - q) / |p - q|`` and ``t = |p - q| >= 0``, so
  ``p = q + t n``. For a closed surface queried from outside this is the outward normal; from
  inside, the inward one. Exactly on the surface the orientation is not defined by the field.
* **Curvature is positive where the surface bends away from the normal**: a sphere of radius
  ``r`` with outward normals has ``k1 = k2 = 1/r`` (as in :mod:`deepcsp.geometry.analytic`).
  Flipping the normal flips the sign of ``k1, k2`` and of the mean curvature; the Gaussian
  curvature is unchanged.
* ``k1 >= k2``; ``mean = (k1 + k2) / 2``; ``gaussian = k1 * k2``.

Closest-point Jacobian
----------------------
With principal directions ``e_i`` and curvatures ``k_i`` at ``q``, moving ``p`` along ``e_i``
moves ``q`` by a factor ``1 / (1 + t k_i)`` (``dp = (1 + t k_i) dq`` since ``dn = k_i dq``), so

    J = dCSP/dp = sum_i  e_i e_i^T / (1 + t k_i),         J n = 0.

The issue text writes ``1 / (1 - t kappa_i)``: that is the same formula with the opposite sign
convention ``kappa = -k`` (curvature positive where the surface bends towards the normal).
Hence the normal spans the null space of ``J``, the tangent plane is its range, and from the
eigenvalues ``lambda_i`` of ``J`` restricted to the tangent plane

    k_i = (1 / lambda_i - 1) / t.

At ``t = 0`` the Jacobian is the tangent projector and carries no curvature: evaluate it at a
small offset ``q + t n`` instead (the field layer does that).

Distance Hessian (UDF baseline)
-------------------------------
For the unsigned distance ``u``, ``grad u = n`` and the Hessian restricted to the tangent plane
has eigenvalues ``mu_i = k_i / (1 + t k_i)``, so ``k_i = mu_i / (1 - t mu_i)`` (consistent with
``J = I - n n^T - u H``).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch


@dataclass
class PrincipalCurvatures:
    """Principal curvatures and directions at N points (see the module's sign convention).

    ``k1, k2 : (N,)`` with ``k1 >= k2``; ``dir1, dir2 : (N, 3)`` unit principal directions;
    ``mean, gaussian : (N,)``; ``normals : (N, 3)`` the normals the signs refer to.
    """

    k1: torch.Tensor
    k2: torch.Tensor
    dir1: torch.Tensor
    dir2: torch.Tensor
    mean: torch.Tensor
    gaussian: torch.Tensor
    normals: torch.Tensor


def _check(name: str, x: torch.Tensor, shape: tuple) -> None:
    if not isinstance(x, torch.Tensor):
        raise ValueError(f"{name} must be a torch tensor, got {type(x).__name__}")
    if x.ndim != len(shape) or any(s is not None and a != s for a, s in zip(x.shape, shape)):
        want = "(" + ", ".join("N" if s is None else str(s) for s in shape) + ")"
        raise ValueError(f"{name} must have shape {want}, got {tuple(x.shape)}")


def symmetric_part(m: torch.Tensor) -> torch.Tensor:
    """``(m + m^T) / 2`` for ``m : (N, 3, 3)``."""
    return 0.5 * (m + m.transpose(-1, -2))


def normal_from_jacobian(jacobian: torch.Tensor, orient: torch.Tensor | None = None) -> torch.Tensor:
    """Unit normals ``(N, 3)`` spanning the null space of the closest-point Jacobian.

    ``jacobian : (N, 3, 3)`` with ``J[i, a, b] = d CSP_a / d p_b``. The normal is the eigenvector
    of the symmetric part of ``J`` whose eigenvalue has the smallest magnitude (exact maps have
    eigenvalues ``(0, 1/(1+t k1), 1/(1+t k2))``). ``orient : (N, 3)``, if given, flips each normal
    to have a non-negative dot product with it (e.g. ``p - CSP(p)``, the query side).
    """
    _check("jacobian", jacobian, (None, 3, 3))
    evals, evecs = torch.linalg.eigh(symmetric_part(jacobian))
    idx = evals.abs().argmin(dim=1)
    n = torch.gather(evecs, 2, idx[:, None, None].expand(-1, 3, 1))[..., 0]
    if orient is not None:
        _check("orient", orient, (len(jacobian), 3))
        s = torch.where((n * orient).sum(1) < 0, -1.0, 1.0).to(n.dtype)
        n = n * s[:, None]
    return n


def tangent_basis(normals: torch.Tensor) -> torch.Tensor:
    """Orthonormal tangent frames ``(N, 3, 2)`` (columns ``u, v``) with ``u x v = n`` for unit
    ``normals : (N, 3)``."""
    _check("normals", normals, (None, 3))
    n = normals
    # Pick the axis least aligned with n to avoid a degenerate cross product.
    a = torch.zeros_like(n)
    a.scatter_(1, n.abs().argmin(dim=1, keepdim=True), 1.0)
    u = torch.linalg.cross(a, n)
    u = u / u.norm(dim=1, keepdim=True)
    v = torch.linalg.cross(n, u)
    return torch.stack([u, v], dim=2)


def _restricted_eig(m: torch.Tensor, normals: torch.Tensor):
    """Eigen-decomposition of the symmetric part of ``m : (N, 3, 3)`` restricted to the tangent
    plane of ``normals``: eigenvalues ``(N, 2)`` ascending and 3D eigenvectors ``(N, 3, 2)``."""
    T = tangent_basis(normals)
    A = T.transpose(1, 2) @ symmetric_part(m) @ T  # (N, 2, 2)
    evals, evecs = torch.linalg.eigh(A)
    return evals, T @ evecs


def _assemble(
    ka: torch.Tensor, kb: torch.Tensor, da: torch.Tensor, db: torch.Tensor, normals: torch.Tensor
) -> PrincipalCurvatures:
    swap = kb > ka
    k1 = torch.where(swap, kb, ka)
    k2 = torch.where(swap, ka, kb)
    d1 = torch.where(swap[:, None], db, da)
    d2 = torch.where(swap[:, None], da, db)
    return PrincipalCurvatures(k1=k1, k2=k2, dir1=d1, dir2=d2, mean=0.5 * (k1 + k2), gaussian=k1 * k2, normals=normals)


def curvatures_from_jacobian(
    jacobian: torch.Tensor, normals: torch.Tensor, distances: torch.Tensor
) -> PrincipalCurvatures:
    """Principal curvatures from the closest-point Jacobian at ``p = q + t n``.

    Parameters
    ----------
    jacobian : (N, 3, 3)
        ``d CSP / d p`` at the query points.
    normals : (N, 3)
        Unit normals ``(p - q) / t`` (the query side); the signs of ``k`` refer to them.
    distances : (N,)
        ``t = |p - q| > 0``. Points with ``t = 0`` give NaN (no curvature in the limit).

    Returns ``k_i = (1 / lambda_i - 1) / t`` with ``lambda_i`` the eigenvalues of ``J``
    restricted to the tangent plane, and the matching eigenvectors as directions.
    """
    _check("jacobian", jacobian, (None, 3, 3))
    _check("normals", normals, (len(jacobian), 3))
    _check("distances", distances, (len(jacobian),))
    lam, dirs = _restricted_eig(jacobian, normals)
    t = distances[:, None]
    k = torch.where(t > 0, (1.0 / lam - 1.0) / t, torch.full_like(lam, float("nan")))
    return _assemble(k[:, 0], k[:, 1], dirs[..., 0], dirs[..., 1], normals)


def curvatures_from_hessian(
    hessian: torch.Tensor, normals: torch.Tensor, distances: torch.Tensor
) -> PrincipalCurvatures:
    """Principal curvatures from the Hessian of the unsigned distance ``u`` at ``p = q + t n``.

    ``hessian : (N, 3, 3)``, ``normals : (N, 3)`` = ``grad u / |grad u|``, ``distances : (N,)`` =
    ``u(p) = t``. With ``mu_i`` the eigenvalues of the Hessian restricted to the tangent plane,
    ``k_i = mu_i / (1 - t mu_i)`` (at ``t = 0``, ``k_i = mu_i``, the limit of a smooth distance).
    """
    _check("hessian", hessian, (None, 3, 3))
    _check("normals", normals, (len(hessian), 3))
    _check("distances", distances, (len(hessian),))
    mu, dirs = _restricted_eig(hessian, normals)
    k = mu / (1.0 - distances[:, None] * mu)
    return _assemble(k[:, 0], k[:, 1], dirs[..., 0], dirs[..., 1], normals)


def jacobian_of_offset_surface(
    normals: torch.Tensor,
    distances: torch.Tensor,
    k1: torch.Tensor,
    k2: torch.Tensor,
    dir1: torch.Tensor,
    dir2: torch.Tensor,
) -> torch.Tensor:
    """The exact closest-point Jacobian ``(N, 3, 3)`` = ``sum_i e_i e_i^T / (1 + t k_i)`` (the
    forward formula, for tests and synthetic checks)."""
    l1 = 1.0 / (1.0 + distances * k1)
    l2 = 1.0 / (1.0 + distances * k2)
    return (
        l1[:, None, None] * dir1[:, :, None] * dir1[:, None, :]
        + l2[:, None, None] * dir2[:, :, None] * dir2[:, None, :]
    )
