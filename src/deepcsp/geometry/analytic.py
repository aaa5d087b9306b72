"""Exact closest-point oracles of analytic surfaces, in closed form (for tests and benchmarks).

Each oracle maps ``points : (N, 3)`` to closest points and knows its normals and principal
curvatures, with the convention: curvature is positive where the surface bends away from its
normal (a sphere with outward normals has k1 = k2 = 1/r).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class Sphere:
    """Sphere of ``radius`` around ``center``; outward normals; k1 = k2 = 1/r."""

    radius: float = 0.3
    center: tuple[float, float, float] = (0.0, 0.0, 0.0)

    def closest_points(self, p: np.ndarray) -> np.ndarray:
        c = np.asarray(self.center)
        d = p - c
        return c + self.radius * d / np.linalg.norm(d, axis=-1, keepdims=True)

    def normals(self, q: np.ndarray) -> np.ndarray:
        d = q - np.asarray(self.center)
        return d / np.linalg.norm(d, axis=-1, keepdims=True)

    def curvatures(self, q: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        k = np.full(len(q), 1.0 / self.radius)
        return k, k.copy()

    def mesh(self, subdivisions: int = 4):
        import trimesh

        m = trimesh.creation.icosphere(subdivisions=subdivisions, radius=self.radius)
        return np.asarray(m.vertices) + np.asarray(self.center), np.asarray(m.faces)


@dataclass(frozen=True)
class Plane:
    """The plane through ``origin`` with unit ``normal``; k1 = k2 = 0."""

    normal: tuple[float, float, float] = (0.0, 0.0, 1.0)
    origin: tuple[float, float, float] = (0.0, 0.0, 0.0)

    def closest_points(self, p: np.ndarray) -> np.ndarray:
        n = np.asarray(self.normal) / np.linalg.norm(self.normal)
        return p - ((p - np.asarray(self.origin)) @ n)[:, None] * n

    def normals(self, q: np.ndarray) -> np.ndarray:
        n = np.asarray(self.normal) / np.linalg.norm(self.normal)
        return np.broadcast_to(n, q.shape).copy()

    def curvatures(self, q: np.ndarray):
        z = np.zeros(len(q))
        return z, z.copy()


@dataclass(frozen=True)
class Cylinder:
    """Infinite cylinder of ``radius`` around the z axis; outward normals; k = (1/r, 0)."""

    radius: float = 0.25

    def closest_points(self, p: np.ndarray) -> np.ndarray:
        r = np.linalg.norm(p[:, :2], axis=1, keepdims=True)
        out = p.copy()
        out[:, :2] = self.radius * p[:, :2] / r
        return out

    def normals(self, q: np.ndarray) -> np.ndarray:
        n = np.zeros_like(q)
        n[:, :2] = q[:, :2] / np.linalg.norm(q[:, :2], axis=1, keepdims=True)
        return n

    def curvatures(self, q: np.ndarray):
        return np.full(len(q), 1.0 / self.radius), np.zeros(len(q))


@dataclass(frozen=True)
class Torus:
    """Torus around the z axis, tube centre radius ``R``, tube radius ``r``; outward normals.

    Principal curvatures at a point with tube angle v (``cos v = (rho - R) / r``):
    ``k_tube = 1/r`` and ``k_ring = cos v / (R + r cos v)``.
    """

    R: float = 0.3
    r: float = 0.1

    def _ring(self, p: np.ndarray) -> np.ndarray:
        rho = np.linalg.norm(p[:, :2], axis=1, keepdims=True)
        ring = np.zeros_like(p)
        ring[:, :2] = self.R * p[:, :2] / rho
        return ring

    def closest_points(self, p: np.ndarray) -> np.ndarray:
        ring = self._ring(p)
        d = p - ring
        return ring + self.r * d / np.linalg.norm(d, axis=1, keepdims=True)

    def normals(self, q: np.ndarray) -> np.ndarray:
        d = q - self._ring(q)
        return d / np.linalg.norm(d, axis=1, keepdims=True)

    def curvatures(self, q: np.ndarray):
        rho = np.linalg.norm(q[:, :2], axis=1)
        cos_v = np.clip((rho - self.R) / self.r, -1, 1)
        k_tube = np.full(len(q), 1.0 / self.r)
        k_ring = cos_v / (self.R + self.r * cos_v)
        return np.maximum(k_tube, k_ring), np.minimum(k_tube, k_ring)

    def mesh(self, n_major: int = 96, n_minor: int = 48):
        u = np.linspace(0, 2 * np.pi, n_major, endpoint=False)
        v = np.linspace(0, 2 * np.pi, n_minor, endpoint=False)
        uu, vv = np.meshgrid(u, v, indexing="ij")
        x = (self.R + self.r * np.cos(vv)) * np.cos(uu)
        y = (self.R + self.r * np.cos(vv)) * np.sin(uu)
        z = self.r * np.sin(vv)
        verts = np.stack([x, y, z], -1).reshape(-1, 3)
        i, j = np.meshgrid(np.arange(n_major), np.arange(n_minor), indexing="ij")
        a = i * n_minor + j
        b = ((i + 1) % n_major) * n_minor + j
        c = ((i + 1) % n_major) * n_minor + (j + 1) % n_minor
        d = i * n_minor + (j + 1) % n_minor
        faces = np.concatenate([np.stack([a, b, c], -1).reshape(-1, 3), np.stack([a, c, d], -1).reshape(-1, 3)])
        return verts, faces


def open_hemisphere(radius: float = 0.35, subdivisions: int = 5):
    """An open hemisphere (z >= 0 half of an icosphere), as (vertices, faces)."""
    import trimesh

    m = trimesh.creation.icosphere(subdivisions=subdivisions, radius=radius)
    keep = m.triangles_center[:, 2] >= 0
    sub = m.submesh([np.nonzero(keep)[0]], append=True)
    return np.asarray(sub.vertices), np.asarray(sub.faces)


def box_mesh(extents, center=(0.0, 0.0, 0.0)) -> tuple[np.ndarray, np.ndarray]:
    """A closed box ``extents`` (3,) around ``center``, outward-wound, as ``(vertices (8, 3),
    faces (12, 3))``; corner ``4 i + 2 j + k`` lies on the ``-``/``+`` side of x, y, z for 0/1."""
    corners = np.array([[i, j, k] for i in (0, 1) for j in (0, 1) for k in (0, 1)], dtype=np.float64) - 0.5
    quads = [(0, 1, 3, 2), (4, 6, 7, 5), (0, 4, 5, 1), (2, 3, 7, 6), (0, 2, 6, 4), (1, 5, 7, 3)]
    faces = np.array([[q[0], q[1], q[2]] for q in quads] + [[q[0], q[2], q[3]] for q in quads], dtype=np.int64)
    return corners * np.asarray(extents, np.float64) + np.asarray(center, np.float64), faces
