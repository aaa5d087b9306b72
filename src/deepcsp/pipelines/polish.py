"""Pull a reconstruction through its samples where the cloud is clean.

A point-set surface fits smooth patches over many samples, so on a clean cloud it rounds off what
lies at the scale of a spacing (facets, creases, fine relief), and a mesh snapped onto it stays a
fraction of a spacing off its samples; ball pivoting, which interpolates the samples, is closer
there. :func:`polish` measures each sample's offset from the mesh and moves every vertex along its
normal by a smoothed inverse-distance average of the offsets of the samples near it, so the mesh
passes near its samples. It leaves noisy clouds alone (the median offset is then a sizeable
fraction of a spacing, and following a few samples would bring the noise back), and ignores
samples far off the mesh (outliers, another sheet). :func:`midpoint_subdivide` gives a mesh
coarser than its cloud the vertices to follow it. On a noisy cloud, :func:`taubin_smooth` takes
out the ripple the noise leaves at the scale of a few edges instead.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from deepcsp._arrays import unique, unique_counts
from deepcsp.extract.topology import _edges
from deepcsp.geometry.cleanup import face_cross, face_normals, vertex_normals
from deepcsp.geometry.closest import MeshOracle


@dataclass
class Polished:
    """A mesh moved onto its samples (``vertices (V, 3)``, the same ``faces``), whether it was
    (``applied``) and the median offset of the samples from the mesh before, in local spacings."""

    vertices: np.ndarray
    faces: np.ndarray
    applied: bool
    residual: float


def polish(
    vertices: np.ndarray,
    faces: np.ndarray,
    points: np.ndarray,
    spacing: np.ndarray,
    clean_below: float = 0.05,
    reach: float = 1.0,
    radius: float = 2.0,
    neighbors: int = 8,
    spread: float = 0.2,
    smoothing: int = 3,
    rounds: int = 2,
) -> Polished:
    """Move the vertices of ``vertices (V, 3)``, ``faces (F, 3)`` (consistently wound) onto the
    samples ``points (N, 3)`` with local spacings ``spacing (N,)``, when the median sample lies
    within ``clean_below`` spacings of the mesh.

    Each of ``rounds`` rounds: the samples within ``reach`` spacings of the mesh give their offsets
    from their closest points; each vertex takes the inverse-distance average (softened by a
    quarter spacing) of the normal offsets of its ``neighbors`` nearest such closest points within
    ``radius`` spacings (none where those offsets spread by more than ``spread`` spacings: two
    sheets merged into one, or noise), the averages are smoothed ``smoothing`` times over the
    mesh's edges, and the vertices move along their normals (a vertex whose faces would turn over
    stays)."""
    if len(faces) == 0 or len(points) == 0:
        return Polished(vertices, faces, False, 0.0)
    v = np.asarray(vertices, np.float64)
    points = np.asarray(points, np.float64)
    spacing = np.asarray(spacing, np.float64)
    residual = 0.0
    for r in range(rounds):
        cp = MeshOracle(v, faces).query(points)
        rel = cp.distances / spacing
        if r == 0:
            residual = float(np.median(rel))
            if residual >= clean_below:
                return Polished(vertices, faces, False, residual)
        near = rel < reach
        normals = vertex_normals(v, faces)
        move = _normal_offsets(
            v, normals, cp.points[near], points[near] - cp.points[near], spacing[near], radius, neighbors, spread
        )
        move = _smoothed(move, faces, len(v), smoothing)
        v = keep_orientation(v, v + move[:, None] * normals, faces)
    return Polished(v, faces, True, residual)


def taubin_smooth(
    vertices: np.ndarray,
    faces: np.ndarray,
    iterations: int,
    lam: float = 0.5,
    mu: float = -0.53,
    movable: np.ndarray | None = None,
) -> np.ndarray:
    """``vertices (V, 3)`` after ``iterations`` rounds of Taubin's lambda|mu smoothing over the
    mesh's edges (a low-pass filter that, unlike plain Laplacian smoothing, barely shrinks the
    mesh): the ripple a noisy cloud leaves at the scale of a few edges. Boundary vertices stay
    (an open sheet keeps its rim), and so do those outside ``movable (V,)`` bool when given; a
    vertex whose faces would turn over goes back."""
    v = np.asarray(vertices, np.float64)
    if iterations == 0 or len(faces) == 0:
        return v
    _, key, _ = _edges(faces, len(v))
    keys, uses = unique_counts(key)  # the undirected edges once each, and their faces
    a, b = keys // len(v), keys % len(v)
    count = np.bincount(a, minlength=len(v)) + np.bincount(b, minlength=len(v))
    rim = np.zeros(len(v), bool)
    rim[a[uses == 1]] = rim[b[uses == 1]] = True
    free = (count > 0) & ~rim
    if movable is not None:
        free &= movable
    out = v.copy()
    for _ in range(iterations):
        for step in (lam, mu):
            total = np.stack(
                [np.bincount(a, out[b, i], len(v)) + np.bincount(b, out[a, i], len(v)) for i in range(3)], 1
            )
            moved = out + step * (total / np.maximum(count, 1)[:, None] - out)
            out = np.where(free[:, None], moved, out)
    return keep_orientation(v, out, faces)


@dataclass
class TurnedSmoothing:
    """A mesh's ``vertices (V, 3)`` after :func:`smooth_turned_faces`, and how many of its faces
    were turned (``n_turned``)."""

    vertices: np.ndarray
    n_turned: int


def smooth_turned_faces(
    vertices: np.ndarray,
    faces: np.ndarray,
    reference: np.ndarray,
    degrees: float,
    rings: int = 2,
    iterations: int = 2,
) -> TurnedSmoothing:
    """Taubin-smooth a mesh only around its faces turned more than ``degrees`` away from
    ``reference (F, 3)``, unit normals of the surface near each face (sign ignored): those faces'
    vertices and ``rings`` rings of their neighbours get ``iterations`` rounds, the rest stays.
    A mesh snapped onto a point-set surface keeps small creases and folds a face or two across
    (next to true creases and close sheets) that one pass of global smoothing leaves and more
    passes would blur everywhere."""
    v = np.asarray(vertices, np.float64)
    if len(faces) == 0 or degrees <= 0:
        return TurnedSmoothing(v, 0)
    turned = np.abs(np.einsum("ij,ij->i", face_normals(v, faces), reference)) < np.cos(np.radians(degrees))
    n_turned = int(turned.sum())
    if n_turned == 0:
        return TurnedSmoothing(v, 0)
    movable = np.zeros(len(v), bool)
    movable[faces[turned].ravel()] = True
    for _ in range(rings):
        movable[faces[movable[faces].any(axis=1)].ravel()] = True
    # only the faces around movable vertices take part: each of those has all its edges there (so the
    # same neighbours and rim), and the smoothing of the whole mesh would move nothing else
    used, local = np.unique(faces[movable[faces].any(axis=1)], return_inverse=True)
    out = v.copy()
    out[used] = taubin_smooth(v[used], local.reshape(-1, 3), iterations, movable=movable[used])
    return TurnedSmoothing(out, n_turned)


def _normal_offsets(
    vertices: np.ndarray,
    normals: np.ndarray,
    anchors: np.ndarray,
    offsets: np.ndarray,
    spacing: np.ndarray,
    radius: float,
    neighbors: int,
    spread: float,
) -> np.ndarray:
    """``(V,)`` at each vertex, the inverse-distance average of ``offsets (M, 3) . normal`` over its
    ``neighbors`` nearest ``anchors (M, 3)`` within ``radius`` of their ``spacing (M,)``; 0 where
    none, or where their weighted standard deviation exceeds ``spread`` of their mean spacing."""
    from scipy.spatial import cKDTree

    if len(anchors) == 0:
        return np.zeros(len(vertices))
    k = min(neighbors, len(anchors))
    dist, idx = cKDTree(anchors).query(vertices, k=k, distance_upper_bound=radius * float(spacing.max()), workers=-1)
    dist, idx = dist.reshape(len(vertices), k), idx.reshape(len(vertices), k)
    found = idx < len(anchors)
    idx = np.where(found, idx, 0)
    s = spacing[idx]
    w = np.where(found & (dist < radius * s), 1.0 / (dist**2 + (0.25 * s) ** 2), 0.0)
    along = np.einsum("vkj,vj->vk", offsets[idx], normals)
    total = w.sum(1)
    norm = np.where(total > 0, total, 1.0)
    mean = (w * along).sum(1) / norm
    deviation = np.sqrt((w * (along - mean[:, None]) ** 2).sum(1) / norm)
    agree = (total > 0) & (deviation <= spread * (w * s).sum(1) / norm)
    return np.where(agree, mean, 0.0)


def _smoothed(values: np.ndarray, faces: np.ndarray, n_vertices: int, times: int) -> np.ndarray:
    """``values (V,)`` averaged ``times`` times halfway towards the mean of each vertex's neighbours."""
    if times == 0:
        return values
    a, b = _unique_edges(faces, n_vertices)
    count = np.bincount(a, minlength=n_vertices) + np.bincount(b, minlength=n_vertices)
    out = values.copy()
    for _ in range(times):
        total = np.bincount(a, out[b], n_vertices) + np.bincount(b, out[a], n_vertices)
        out = np.where(count > 0, 0.5 * out + 0.5 * total / np.maximum(count, 1), out)
    return out


def midpoint_subdivide(vertices: np.ndarray, faces: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Each triangle split into four at its edges' midpoints (shared between neighbours): the
    vertices ``(V + E, 3)`` (the first ``V`` kept) and faces ``(4F, 3)``, wound as before."""
    n, m = len(vertices), len(faces)
    if m == 0:
        return vertices, faces
    _, key, _ = _edges(faces, n)
    edges, mid = np.unique(key, return_inverse=True)
    mid = mid.reshape(3, m) + n  # midpoints of edges 01, 12, 20 of each face
    a, b = edges // n, edges % n
    new = np.concatenate([vertices, 0.5 * (vertices[a] + vertices[b])])
    f0, f1, f2 = faces.T
    m01, m12, m20 = mid
    out = np.concatenate(
        [
            np.stack([f0, m01, m20], 1),
            np.stack([m01, f1, m12], 1),
            np.stack([m20, m12, f2], 1),
            np.stack([m01, m12, m20], 1),
        ]
    )
    return new, out


def _unique_edges(faces: np.ndarray, n_vertices: int) -> tuple[np.ndarray, np.ndarray]:
    """The undirected edges of a mesh, each once: their lower and higher vertex ids ``(E,)``, ``(E,)``."""
    _, key, _ = _edges(faces, n_vertices)
    edges = unique(key)
    return edges // n_vertices, edges % n_vertices


def median_edge_length(vertices: np.ndarray, faces: np.ndarray) -> float:
    """Median length of a mesh's edges (0 without faces)."""
    if len(faces) == 0:
        return 0.0
    a, b = _unique_edges(faces, len(vertices))
    return float(np.median(np.linalg.norm(vertices[a] - vertices[b], axis=1)))


def keep_orientation(before: np.ndarray, after: np.ndarray, faces: np.ndarray, rounds: int = 4) -> np.ndarray:
    """``after`` with the vertices of faces whose normal turned by more than 90 degrees from
    ``before`` (a fold where a vertex moved past its neighbours) put back where they were."""
    out = after.copy()
    reference = face_cross(before, faces)
    check = None  # every face; after the first round only faces with a vertex put back can change
    for _ in range(rounds):
        rows = slice(None) if check is None else check  # a slice: views, no copies of every face
        turned = np.einsum("ij,ij->i", reference[rows], face_cross(out, faces[rows])) < 0
        folded = np.flatnonzero(turned) if check is None else check[turned]
        if len(folded) == 0:
            break
        back = unique(faces[folded])
        out[back] = before[back]
        moved = np.zeros(len(out), bool)
        moved[back] = True
        check = np.flatnonzero(moved[faces].any(axis=1))
    return out
