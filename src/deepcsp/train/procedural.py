"""Procedural training shapes made in code (no downloads): closed primitives, CSG unions of
primitives, open sheets and cloth-like bent, folded and cut surfaces.

Every generator returns a :class:`ProceduralShape` with ``vertices : (V, 3)`` and
``faces : (F, 3)``; shapes are random but reproducible from a ``np.random.Generator``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import numpy as np

from deepcsp.geometry.cleanup import drop_unused_vertices, repeats_index

KINDS = ("sphere", "box", "cylinder", "torus", "union", "sheet", "bent_sheet", "cloth", "open_tube", "hemisphere")
"""Shape families; open ones: sheet, bent_sheet, cloth, open_tube, hemisphere."""


@dataclass
class ProceduralShape:
    """A generated mesh: ``vertices : (V, 3)``, ``faces : (F, 3)``, its ``kind`` and ``name``."""

    name: str
    kind: str
    vertices: np.ndarray
    faces: np.ndarray


def grid_faces(nu: int, nv: int, wrap_u: bool = False) -> np.ndarray:
    """Triangles ``(F, 3)`` of a ``nu x nv`` vertex grid (index ``i * nv + j``); ``wrap_u`` closes u."""
    iu = np.arange(nu if wrap_u else nu - 1)
    iv = np.arange(nv - 1)
    i, j = np.meshgrid(iu, iv, indexing="ij")
    i, j = i.ravel(), j.ravel()
    i1 = (i + 1) % nu
    a, b, c, d = i * nv + j, i1 * nv + j, i1 * nv + j + 1, i * nv + j + 1
    return np.concatenate([np.stack([a, b, c], 1), np.stack([a, c, d], 1)]).astype(np.int64)


def _random_rotation(rng: np.random.Generator) -> np.ndarray:
    q = rng.normal(size=4)
    q /= np.linalg.norm(q)
    w, x, y, z = q
    return np.array(
        [
            [1 - 2 * (y * y + z * z), 2 * (x * y - z * w), 2 * (x * z + y * w)],
            [2 * (x * y + z * w), 1 - 2 * (x * x + z * z), 2 * (y * z - x * w)],
            [2 * (x * z - y * w), 2 * (y * z + x * w), 1 - 2 * (x * x + y * y)],
        ]
    )


def sphere(rng: np.random.Generator, n: int = 32) -> tuple[np.ndarray, np.ndarray]:
    """An ellipsoid (UV sphere with random radii, poles welded)."""
    r = rng.uniform(0.2, 0.45, 3)
    th = np.linspace(0, np.pi, n)
    ph = np.linspace(0, 2 * np.pi, 2 * n, endpoint=False)
    p, t = np.meshgrid(ph, th, indexing="ij")  # vertex index = i_phi * n + j_theta
    v = np.stack([np.sin(t) * np.cos(p), np.sin(t) * np.sin(p), np.cos(t)], -1).reshape(-1, 3) * r
    return _weld(v, grid_faces(2 * n, n, wrap_u=True))


def _weld(v: np.ndarray, f: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Merge coincident vertices, drop degenerate faces."""
    uniq, inv = np.unique(np.round(v, 9), axis=0, return_inverse=True)
    inv = inv.ravel()
    f = inv[f]
    ok = ~repeats_index(f)
    newv = np.zeros((len(uniq), 3))
    newv[inv] = v
    return drop_unused_vertices(newv, f[ok])


def box(rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """An axis-aligned box with random sides (subdivided faces), as 6 welded grids."""
    half = rng.uniform(0.12, 0.42, 3)
    n = 9
    s = np.linspace(-1, 1, n)
    vs, fs, off = [], [], 0
    for axis in range(3):
        for sign in (-1.0, 1.0):
            a, b = [k for k in range(3) if k != axis]
            u, w = np.meshgrid(s, s, indexing="ij")
            v = np.zeros((n * n, 3))
            v[:, axis] = sign
            v[:, a], v[:, b] = u.ravel(), w.ravel()
            vs.append(v * half)
            fs.append(grid_faces(n, n) + off)
            off += n * n
    return _weld(np.concatenate(vs), np.concatenate(fs))


def cylinder(rng: np.random.Generator, capped: bool = True) -> tuple[np.ndarray, np.ndarray]:
    """A (capped or open) cylinder of random radius and height along z."""
    r, h = rng.uniform(0.1, 0.35), rng.uniform(0.2, 0.45)
    nu, nv = 48, 12
    ph = np.linspace(0, 2 * np.pi, nu, endpoint=False)
    z = np.linspace(-h, h, nv)
    p, zz = np.meshgrid(ph, z, indexing="ij")
    v = np.stack([r * np.cos(p), r * np.sin(p), zz], -1).reshape(-1, 3)
    f = grid_faces(nu, nv, wrap_u=True)
    if capped:
        rings = [np.arange(nu) * nv, np.arange(nu) * nv + nv - 1]
        for k, ring in enumerate(rings):
            c = len(v)
            v = np.vstack([v, [[0, 0, -h if k == 0 else h]]])
            f = np.vstack([f, np.stack([ring, np.roll(ring, -1), np.full(nu, c)], 1)])
    return v, f


def torus(rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """A torus with random radii."""
    big, small = rng.uniform(0.2, 0.32), rng.uniform(0.04, 0.12)
    nu, nv = 48, 16
    a = np.linspace(0, 2 * np.pi, nu, endpoint=False)
    b = np.linspace(0, 2 * np.pi, nv, endpoint=False)
    A, B = np.meshgrid(a, b, indexing="ij")
    v = np.stack(
        [(big + small * np.cos(B)) * np.cos(A), (big + small * np.cos(B)) * np.sin(A), small * np.sin(B)], -1
    ).reshape(-1, 3)
    f = grid_faces(nu, nv, wrap_u=True)
    # close v: add faces between column nv-1 and 0
    i = np.arange(nu)
    i1 = (i + 1) % nu
    a0, b0, c0, d0 = i * nv + nv - 1, i1 * nv + nv - 1, i1 * nv, i * nv
    f = np.vstack([f, np.stack([a0, b0, c0], 1), np.stack([a0, c0, d0], 1)])
    return v, f


def union(rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """CSG union of 2-3 closed primitives: faces inside another primitive are removed (the
    result's surface is the union's boundary up to the mesh resolution)."""
    parts = []
    for _ in range(rng.integers(2, 4)):
        kind = ("sphere", "box", "cylinder")[rng.integers(0, 3)]
        v, f = {"sphere": sphere, "box": box, "cylinder": cylinder}[kind](rng)
        v = v * rng.uniform(0.5, 0.8)
        R = _random_rotation(rng)
        t = rng.uniform(-0.18, 0.18, 3)
        lo, hi = v.min(0), v.max(0)
        parts.append((kind, v @ R.T + t, f, R, t, lo, hi, v))
    vs, fs, off = [], [], 0
    for i, (kind, v, f, *_rest) in enumerate(parts):
        cent = v[f].mean(1)
        keep = np.ones(len(f), bool)
        for j, (kind2, _v2, _f2, R2, t2, lo2, hi2, vloc2) in enumerate(parts):
            if i != j:
                keep &= ~_inside_local(kind2, (cent - t2) @ R2, lo2, hi2)
        vs.append(v)
        fs.append(f[keep] + off)
        off += len(v)
    return drop_unused_vertices(np.concatenate(vs), np.concatenate(fs))


def _inside_local(kind: str, q: np.ndarray, lo: np.ndarray, hi: np.ndarray) -> np.ndarray:
    c, h = (lo + hi) / 2, (hi - lo) / 2
    d = (q - c) / np.maximum(h, 1e-9)
    if kind == "sphere":
        return (d**2).sum(1) < 1.0
    if kind == "box":
        return (np.abs(d) < 1.0).all(1)
    return ((d[:, :2] ** 2).sum(1) < 1.0) & (np.abs(d[:, 2]) < 1.0)  # cylinder along z


def _sheet_grid(rng: np.random.Generator, n: int = 40) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    s = np.linspace(-0.4, 0.4, n)
    u, w = np.meshgrid(s * rng.uniform(0.6, 1.0), s * rng.uniform(0.6, 1.0), indexing="ij")
    return u, w, grid_faces(n, n)


def sheet(rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """An open height-field sheet with random smooth bumps."""
    u, w, f = _sheet_grid(rng)
    z = np.zeros_like(u)
    for _ in range(rng.integers(1, 5)):
        c = rng.uniform(-0.4, 0.4, 2)
        z += rng.uniform(-0.15, 0.15) * np.exp(-((u - c[0]) ** 2 + (w - c[1]) ** 2) / rng.uniform(0.005, 0.04))
    return np.stack([u, w, z], -1).reshape(-1, 3), f


def bent_sheet(rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """A sheet rolled onto part of a cylinder (bend angle up to ~300 degrees)."""
    u, w, f = _sheet_grid(rng)
    angle = rng.uniform(0.5, 5.2)
    radius = (u.max() - u.min()) / angle
    phi = (u - u.min()) / (u.max() - u.min()) * angle - angle / 2
    v = np.stack([radius * np.sin(phi), w, radius * (1 - np.cos(phi))], -1).reshape(-1, 3)
    return v - (v.max(0) + v.min(0)) / 2, f


def cloth(rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """A cloth-like surface: folds (sinusoids along random directions), a bend, and cut holes/slits."""
    u, w, f = _sheet_grid(rng, 48)
    z = np.zeros_like(u)
    for _ in range(rng.integers(2, 5)):
        d = rng.normal(size=2)
        d /= np.linalg.norm(d)
        z += rng.uniform(0.01, 0.06) * np.sin(rng.uniform(6, 25) * (d[0] * u + d[1] * w) + rng.uniform(0, 6.3))
    v = np.stack([u, w, z], -1).reshape(-1, 3)
    bend = rng.uniform(-2.0, 2.0)
    if abs(bend) > 0.2:  # drape over a cylinder around the w axis
        radius = 0.8 / abs(bend)
        phi = v[:, 0] / radius
        rz = radius - v[:, 2] * np.sign(bend)
        v = np.stack([rz * np.sin(phi), v[:, 1], np.sign(bend) * (radius - rz * np.cos(phi))], -1)
    cent2 = np.stack([u, w], -1).reshape(-1, 2)[f].mean(1)
    keep = np.ones(len(f), bool)
    for _ in range(rng.integers(1, 4)):  # holes
        c = rng.uniform(-0.3, 0.3, 2)
        keep &= np.linalg.norm(cent2 - c, axis=1) > rng.uniform(0.03, 0.1)
    if rng.random() < 0.5:  # a slit
        c, d = rng.uniform(-0.2, 0.2, 2), rng.normal(size=2)
        d /= np.linalg.norm(d)
        rel = cent2 - c
        along, across = rel @ d, rel @ np.array([-d[1], d[0]])
        keep &= ~((np.abs(along) < rng.uniform(0.1, 0.3)) & (np.abs(across) < 0.012))
    v, f = drop_unused_vertices(v, f[keep])
    return v - (v.max(0) + v.min(0)) / 2, f


def open_tube(rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """An uncapped cylinder (open at both ends)."""
    return cylinder(rng, capped=False)


def hemisphere(rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """An open spherical cap (random opening angle)."""
    r, n = rng.uniform(0.2, 0.45), 24
    th = np.linspace(0, rng.uniform(0.4, 0.9) * np.pi, n)
    ph = np.linspace(0, 2 * np.pi, 2 * n, endpoint=False)
    p, t = np.meshgrid(ph, th, indexing="ij")
    v = np.stack([np.sin(t) * np.cos(p), np.sin(t) * np.sin(p), np.cos(t)], -1).reshape(-1, 3) * r
    return _weld(v, grid_faces(2 * n, n, wrap_u=True))


GENERATORS: dict[str, Callable[[np.random.Generator], tuple[np.ndarray, np.ndarray]]] = {
    "sphere": sphere,
    "box": box,
    "cylinder": cylinder,
    "torus": torus,
    "union": union,
    "sheet": sheet,
    "bent_sheet": bent_sheet,
    "cloth": cloth,
    "open_tube": open_tube,
    "hemisphere": hemisphere,
}


def make_shape(kind: str, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """One random shape of ``kind`` (see :data:`KINDS`), randomly rotated: ``(vertices, faces)``."""
    if kind not in GENERATORS:
        raise ValueError(f"unknown procedural kind {kind!r}; choose from {KINDS}")
    v, f = GENERATORS[kind](rng)
    return np.asarray(v, np.float64) @ _random_rotation(rng).T, np.asarray(f, np.int64)


def generate_shapes(n: int, seed: int = 0, kinds: tuple[str, ...] = KINDS) -> list[ProceduralShape]:
    """``n`` shapes cycling through ``kinds``, reproducible from ``seed``."""
    out = []
    for i in range(n):
        kind = kinds[i % len(kinds)]
        v, f = make_shape(kind, np.random.default_rng([seed, i]))
        out.append(ProceduralShape(name=f"proc_{i:04d}_{kind}", kind=kind, vertices=v, faces=f))
    return out
