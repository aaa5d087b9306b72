"""Compact storage of a mesh-fitted band grid: each stored value is predicted as the closest point
on one triangle of the mesh it was collocated on, and only what the prediction misses is stored.

A band grid fitted to a mesh holds exact closest points, so a value is known once its triangle
is: the file keeps the (normalised) mesh once and, per grid value, which triangle. Triangles are
coded by reference: a value whose triangle also gives the closest point of its previous neighbour
along one lattice axis (k - 1, j - 1 or i - 1, in that order of preference) stores that axis (one
of four symbols, xz-compressed); the others store the triangle's index. Decoding follows the
references to their roots (pointer jumping: a reference always points to a smaller id, so there
are no cycles), projects every grid vertex onto its triangle and adds the residual: the value minus
the prediction, quantised to ``step`` as in :mod:`deepcsp.fields.codec` (zero wherever the
prediction is exact, so the stored values are within ``step / 2`` per component either way).
``benchmarks/bm_files.py`` measures it against :mod:`deepcsp.fields.codec` on the dev meshes.
"""

from __future__ import annotations

import lzma
import zlib
from dataclasses import dataclass

import numpy as np
import torch

from deepcsp.fields import codec

#: Codec name written into a field file's compression spec.
CODEC = "mesh-ref-q"
#: Chain-repair rounds before the remaining broken references become explicit triangles.
_REPAIR_ROUNDS = 32
#: Rounds of choosing references, each from the triangles the previous round resolved to (fewer
#: explicit triangles each time: 372k, 164k, 103k of spot's 1.4M values).
_PASSES = 3


@dataclass
class MeshSource:
    """The mesh a band grid was collocated on (normalised coordinates) and, per value tensor of the
    grid, the triangle of each value's closest point (``face_ids[key] (N,)``)."""

    vertices: np.ndarray
    faces: np.ndarray
    face_ids: dict


def lattice_positions(ids: np.ndarray, res: int, half: float) -> np.ndarray:
    """``(N, 3)`` float64 positions of flat ids on a lattice of ``res`` vertices per axis over ``[-half, half]``."""
    ids = np.asarray(ids, dtype=np.int64)
    ijk = np.stack([ids // (res * res), (ids // res) % res, ids % res], 1)
    return ijk.astype(np.float64) * (2 * half / (res - 1)) - half


def lattice_neighbours(ids: np.ndarray, res: int) -> np.ndarray:
    """``(N, 3)`` row of each entry's previous neighbour along k, j and i among the sorted flat ids
    ``ids (N,)`` of a ``res``-per-axis lattice (-1 where that neighbour is not stored)."""
    ids = np.asarray(ids, dtype=np.int64)
    out = np.full((len(ids), 3), -1, dtype=np.int64)
    if len(ids) == 0:
        return out
    firsts = (ids % res == 0, (ids // res) % res == 0, ids < res * res)
    for a, (step, first) in enumerate(zip((1, res, res * res), firsts)):
        want = ids - step
        row = np.minimum(np.searchsorted(ids, want), len(ids) - 1)
        ok = ~first & (ids[row] == want)
        out[ok, a] = row[ok]
    return out


def _roots(parent: np.ndarray) -> np.ndarray:
    """Root of each entry's reference chain (pointer jumping); chains must end at self-references."""
    p = parent
    for _ in range(64):
        q = p[p]
        if np.array_equal(q, p):
            return p
        p = q
    raise ValueError("triangle references form a cycle")


def triangles(vertices: np.ndarray, faces: np.ndarray) -> torch.Tensor:
    """``(9, F)`` float32 corners of each face, component-wise (a_x, a_y, a_z, b_x, ..., c_z)."""
    v = np.asarray(vertices, dtype=np.float32)
    return torch.from_numpy(np.ascontiguousarray(v[np.asarray(faces, dtype=np.int64)].reshape(-1, 9).T))


def _closest(p: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
    """Closest points ``(3, N)`` on triangles ``t (9, N)`` to points ``p (3, N)``, component-wise
    (Ericson's Voronoi-region tests; the first region that holds wins: vertex a, b, c, edge ab, ac,
    bc, else the face)."""
    a, b, c = t[0:3], t[3:6], t[6:9]
    ab, ac = b - a, c - a

    def dot(u, w):
        return u[0] * w[0] + u[1] * w[1] + u[2] * w[2]

    ap, bp, cp = p - a, p - b, p - c
    d1, d2, d3, d4, d5, d6 = dot(ap, ab), dot(ap, ac), dot(bp, ab), dot(bp, ac), dot(cp, ab), dot(cp, ac)
    vc, vb, va = d1 * d4 - d3 * d2, d5 * d2 - d1 * d6, d3 * d6 - d5 * d4
    e, g = d4 - d3, d5 - d6
    den = va + vb + vc
    out = a + (vb / den) * ab + (vc / den) * ac
    for holds, point in (  # from the last region to the first, so that the first that holds wins
        ((va <= 0) & (e >= 0) & (g >= 0), lambda: b + (e / (e + g)) * (c - b)),
        ((vb <= 0) & (d2 >= 0) & (d6 <= 0), lambda: a + (d2 / (d2 - d6)) * ac),
        ((vc <= 0) & (d1 >= 0) & (d3 <= 0), lambda: a + (d1 / (d1 - d3)) * ab),
        ((d6 >= 0) & (d5 <= d6), lambda: c),
        ((d3 >= 0) & (d4 <= d3), lambda: b),
        ((d1 <= 0) & (d2 <= 0), lambda: a),
    ):
        out = torch.where(holds, point(), out)
    return out


def _predict(pos: np.ndarray, tris: torch.Tensor, faces: np.ndarray) -> np.ndarray:
    """Displacements ``(N, 3)`` from ``pos (N, 3)`` to the closest point on triangles ``faces (N,)``
    of ``tris`` (:func:`triangles`), in float32 (their error, ~1e-7, is far below any quantisation
    step); zero for degenerate triangles, whose values the residuals then keep."""
    p = torch.from_numpy(np.ascontiguousarray(np.asarray(pos).T, dtype=np.float32))
    d = (_closest(p, tris[:, torch.from_numpy(np.asarray(faces, dtype=np.int64))]) - p).T.double().numpy()
    d[~np.isfinite(d).all(1)] = 0.0
    return d


def _inflate(data: bytes, size: int, limit: int, xz: bool = False) -> bytes:
    return codec.inflate(data, size, limit, "compressed section", xz)


def _zigzag_bytes(b: np.ndarray, xz: bool = False) -> bytes:
    """zlib (or xz) of signed integers ``b`` zigzag-mapped to uint32 and byte-shuffled."""
    raw = codec.shuffled(codec.zigzag(np.asarray(b).reshape(-1)))
    return lzma.compress(raw) if xz else zlib.compress(raw, 9)


def _unzigzag(data: bytes, count: int, limit: int, xz: bool = False) -> np.ndarray:
    """Inverse of :func:`_zigzag_bytes` for ``count`` integers."""
    return codec.unzigzag(codec.unshuffled(_inflate(data, 4 * count, limit, xz), np.uint32, count))


def choose_references(pos: np.ndarray, target: np.ndarray, face_ids: np.ndarray, tris: np.ndarray, nb, tol: float):
    """``(sym (N,) uint8, roots (N,))``: per entry 0 (its own triangle ``face_ids`` stored) or 1 +
    the axis of the neighbour whose triangle it takes (k before j before i), such that following
    the references to their roots reproduces every displacement ``target`` within ``tol`` (per
    component) wherever its own triangle does."""
    n = len(pos)
    own = np.asarray(face_ids, dtype=np.int64)
    parent, sym = np.arange(n), np.zeros(n, dtype=np.uint8)
    roots, checked = parent, own.copy()  # the triangle each entry was last found to reproduce it
    for a in range(3):
        j = nb[:, a]
        m = np.flatnonzero((sym == 0) & (j >= 0))
        cand = own[roots[j[m]]]
        other = cand != own[m]
        ok = ~other
        ok[other] = _reproduces(pos[m[other]], target[m[other]], tris, cand[other], tol)
        parent[m[ok]], sym[m[ok]], checked[m[ok]] = j[m[ok]], a + 1, cand[ok]
        roots = _roots(parent)
    # a chain may now end on a triangle that misses an entry along it: cut it there
    for _ in range(_REPAIR_ROUNDS):
        face = own[roots]
        m = np.flatnonzero(face != checked)
        ok = _reproduces(pos[m], target[m], tris, face[m], tol)
        checked[m[ok]] = face[m[ok]]
        bad = m[~ok]
        if len(bad) == 0:
            break
        parent[bad], sym[bad], checked[bad] = bad, 0, own[bad]
        roots = _roots(parent)
    return sym, roots


def _reproduces(pos: np.ndarray, target: np.ndarray, tris: np.ndarray, faces: np.ndarray, tol: float) -> np.ndarray:
    """``(N,)`` bool: triangle ``faces[i]`` gives displacement ``target[i]`` from ``pos[i]`` within ``tol``."""
    return np.abs(_predict(pos, tris, faces) - target).max(1) <= tol


def encode(
    values: np.ndarray, ids: np.ndarray, res: int, half: float, source: MeshSource, face_ids: np.ndarray, step: float
) -> tuple[bytes, dict]:
    """Compressed bytes and spec of displacements ``values (N, 3)`` at sorted flat ids ``ids`` of a
    ``res``-per-axis lattice, predicted from ``source``'s triangles ``face_ids (N,)``."""
    v = np.asarray(values, dtype=np.float64).reshape(len(ids), 3)
    pos = lattice_positions(ids, res, half)
    tris = triangles(source.vertices, source.faces)
    nb, own = lattice_neighbours(ids, res), np.asarray(face_ids, dtype=np.int64)
    for _ in range(_PASSES):
        sym, roots = choose_references(pos, v, own, tris, nb, step / 2)
        own = own[roots]  # what every entry resolved to: the next round's own triangles
    explicit = own[sym == 0]
    pred = _predict(pos, tris, own) if len(pos) else np.zeros((0, 3))
    residual = np.round((v - pred) / step).astype(np.int64)
    if len(residual) and np.abs(residual).max() >= 2**31:
        raise ValueError(f"values too large for step {step:g}")
    sections = [
        lzma.compress(sym.tobytes()),
        _zigzag_bytes(np.diff(explicit, prepend=0), xz=True),
        _zigzag_bytes(residual),
    ]
    spec = {
        "shape": [len(ids), 3],
        "dtype": "float32",
        "codec": CODEC,
        "step": float(step),
        "lattice": int(res),
        "sections": [len(s) for s in sections],
    }
    return b"".join(sections), spec


def decode(
    blob: bytes, spec: dict, ids: np.ndarray, half: float, vertices: np.ndarray, faces: np.ndarray, limit: int
) -> tuple[np.ndarray, np.ndarray]:
    """Inverse of :func:`encode`: displacements ``(N, 3)`` float32 at the sorted flat ids ``ids``
    and the triangle of each; nothing inflates past ``limit`` bytes. Raises ValueError on any
    inconsistency."""
    n, res, step = len(ids), int(spec["lattice"]), float(spec["step"])
    if list(spec["shape"]) != [n, 3]:
        raise ValueError(f"shape {spec['shape']} for {n} grid vertices")
    if not np.isfinite(step) or step <= 0:
        raise ValueError(f"quantisation step must be positive, got {step!r}")
    sizes = [int(s) for s in spec["sections"]]
    if len(sizes) != 3 or min(sizes) < 0 or sum(sizes) != len(blob):
        raise ValueError("section sizes do not match the stored bytes")
    ends = np.cumsum(sizes)
    refs, explicit, residual = (blob[e - s : e] for s, e in zip(sizes, ends))
    sym = np.frombuffer(_inflate(refs, n, limit, xz=True), np.uint8)
    if len(sym) and sym.max() > 3:
        raise ValueError("unknown triangle reference")
    nb = lattice_neighbours(ids, res)
    parent = np.arange(n)
    for a in range(3):
        m = sym == a + 1
        if (nb[m, a] < 0).any():
            raise ValueError("a triangle reference points outside the grid")
        parent[m] = nb[m, a]
    own = np.zeros(n, dtype=np.int64)
    own[sym == 0] = np.cumsum(_unzigzag(explicit, int((sym == 0).sum()), limit, xz=True))
    if (sym == 0).any() and (own[sym == 0].min() < 0 or own[sym == 0].max() >= len(faces)):
        raise ValueError(f"triangle index outside the stored mesh's {len(faces)} faces")
    face = own[_roots(parent)]
    pos = lattice_positions(ids, res, half)
    tris = triangles(vertices, faces)
    pred = _predict(pos, tris, face) if n else np.zeros((0, 3))
    out = pred + _unzigzag(residual, 3 * n, limit).reshape(n, 3) * step
    return out.astype(np.float32), face


def pack_mesh(vertices: np.ndarray, faces: np.ndarray) -> tuple[bytes, dict]:
    """zlib'd float32 vertices (byte-shuffled) and int32 faces (differences from the previous face)."""
    v = np.ascontiguousarray(vertices, dtype=np.float32)
    f = np.asarray(faces, dtype=np.int64)
    vb = zlib.compress(codec.shuffled(v), 9)
    fb = _zigzag_bytes(np.diff(f, axis=0, prepend=np.zeros((1, 3), np.int64)))
    return vb + fb, {"n_vertices": len(v), "n_faces": len(f), "sections": [len(vb), len(fb)]}


def unpack_mesh(blob: bytes, spec: dict, limit: int) -> tuple[np.ndarray, np.ndarray]:
    """Inverse of :func:`pack_mesh` (nothing inflates past ``limit`` bytes); raises ValueError on
    inconsistent or non-finite data."""
    nv, nf = int(spec["n_vertices"]), int(spec["n_faces"])
    sizes = [int(s) for s in spec["sections"]]
    if nv < 3 or nf < 1 or len(sizes) != 2 or min(sizes) < 0 or sum(sizes) != len(blob):
        raise ValueError("stored mesh sizes do not match its bytes")
    v = codec.unshuffled(_inflate(blob[: sizes[0]], 12 * nv, limit), np.float32, 3 * nv).reshape(nv, 3)
    if not np.isfinite(v).all():
        raise ValueError("stored mesh vertices contain NaN or inf")
    f = np.cumsum(_unzigzag(blob[sizes[0] :], 3 * nf, limit).reshape(nf, 3), axis=0)
    if f.min() < 0 or f.max() >= nv:
        raise ValueError("stored mesh faces index missing vertices")
    return v, f
