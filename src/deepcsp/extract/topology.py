"""Mesh bookkeeping for extraction: consistent orientation, component and fin removal, and the
checks (boundary loops, winding consistency, components) that tests and benchmarks report.
Welding and cleanup (``weld_and_clean``, ``face_areas``) live in :mod:`deepcsp.geometry.cleanup`
and are re-exported here.

All functions take ``vertices : (V, 3) float`` and ``faces : (F, 3) int`` and are pure.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np

from deepcsp._arrays import unique
from deepcsp.geometry.cleanup import (  # noqa: F401 (weld_and_clean re-exported)
    distinct_faces,
    drop_unused_vertices,
    face_areas,
    repeats_index,
    weld_and_clean,
)


@dataclass
class MeshStats:
    """Topology and quality of a triangle mesh.

    ``n_inconsistent_edges`` counts edges shared by exactly two faces that traverse it in the
    same direction (0 = winding consistent); ``n_nonmanifold_edges`` edges with more than two
    faces; ``n_boundary_loops`` the connected components of the boundary-edge graph.
    """

    n_vertices: int
    n_faces: int
    area: float
    n_components: int
    n_boundary_edges: int
    n_boundary_loops: int
    n_nonmanifold_edges: int
    n_inconsistent_edges: int
    n_degenerate_faces: int
    n_duplicate_faces: int

    @property
    def winding_consistent(self) -> bool:
        return self.n_inconsistent_edges == 0

    def to_dict(self) -> dict:
        d = asdict(self)
        d["winding_consistent"] = self.winding_consistent
        return d


def _edges(faces: np.ndarray, n_vertices: int):
    """Directed half-edges ``(3F, 2)``, their undirected keys ``(3F,)`` and owning faces ``(3F,)``."""
    he = np.concatenate([faces[:, [0, 1]], faces[:, [1, 2]], faces[:, [2, 0]]])
    owner = np.tile(np.arange(len(faces)), 3)
    lo, hi = he.min(1), he.max(1)
    return he, lo.astype(np.int64) * n_vertices + hi, owner


def _components(n: int, a: np.ndarray, b: np.ndarray) -> tuple[int, np.ndarray]:
    from scipy.sparse import coo_matrix
    from scipy.sparse.csgraph import connected_components

    g = coo_matrix((np.ones(len(a), dtype=np.int8), (a, b)), shape=(n, n))
    return connected_components(g, directed=False)


def boundary_cycles(half_edges: np.ndarray, n_vertices: int) -> tuple[int, np.ndarray, np.ndarray]:
    """Split directed boundary half-edges ``(B, 2)`` (of a consistently wound mesh) into cycles.

    Where several boundary loops touch at one vertex (a pinch, degree 4 or more) the loops are
    separated: the k-th half-edge ending at the vertex continues with the k-th one leaving it.
    Returns ``(n_cycles, cycle label per half-edge (B,), simple (B,))``; ``simple`` is False on the
    half-edges of cycles that pass a vertex whose in- and out-degrees differ (winding not
    consistent there) or visit a vertex twice."""
    B = len(half_edges)
    if B == 0:
        return 0, np.zeros(0, dtype=np.int64), np.zeros(0, dtype=bool)
    indeg = np.bincount(half_edges[:, 1], minlength=n_vertices)
    outdeg = np.bincount(half_edges[:, 0], minlength=n_vertices)
    balanced = indeg == outdeg
    o_in = np.argsort(half_edges[:, 1], kind="stable")  # grouped by end vertex
    o_out = np.argsort(half_edges[:, 0], kind="stable")  # grouped by start vertex
    v_in, v_out = half_edges[o_in, 1], half_edges[o_out, 0]
    rank = np.arange(B) - np.searchsorted(v_in, v_in)
    pos = np.searchsorted(v_out, v_in) + rank
    ok = balanced[v_in] & (pos < B)
    ok[ok] &= v_out[pos[ok]] == v_in[ok]
    succ = np.arange(B)
    succ[o_in[ok]] = o_out[pos[ok]]
    n_cycles, label = _components(B, np.arange(B), succ)
    keys, counts = np.unique(label.astype(np.int64) * n_vertices + half_edges[:, 0], return_counts=True)
    label, n_cycles = _split_repeats(half_edges, succ, label, n_cycles, unique(keys[counts > 1] // n_vertices))
    bad = np.zeros(n_cycles, dtype=bool)
    bad[label[~balanced[half_edges[:, 0]] | ~balanced[half_edges[:, 1]]]] = True
    keys, counts = np.unique(label.astype(np.int64) * n_vertices + half_edges[:, 0], return_counts=True)
    bad[keys[counts > 1] // n_vertices] = True
    return n_cycles, label, ~bad[label]


def boundary_vertex_mask(faces: np.ndarray, n_vertices: int) -> np.ndarray:
    """``(n_vertices,)`` bool: the vertices of the edges only one face uses."""
    on = np.zeros(n_vertices, dtype=bool)
    on[boundary_half_edges(faces, n_vertices).ravel()] = True
    return on


def boundary_half_edges(faces: np.ndarray, n_vertices: int) -> np.ndarray:
    """``(B, 2)`` the half-edges of the edges only one face uses, in the order of :func:`_edges`
    (found by sorting the edge keys, not with ``np.unique``'s hash path)."""
    he, key, _ = _edges(faces, n_vertices)
    order = np.argsort(key, kind="stable")
    k = key[order]
    single = np.ones(len(k), dtype=bool)
    single[1:] &= k[1:] != k[:-1]
    single[:-1] &= k[:-1] != k[1:]
    mask = np.zeros(len(k), dtype=bool)
    mask[order[single]] = True
    return he[mask]


def pinched_vertices(faces: np.ndarray, n_vertices: int) -> np.ndarray:
    """Ids of the vertices where boundary loops touch (two or more boundary edges leave them): a strip
    between two holes, or between a hole and the rim, cut to a point."""
    half = boundary_half_edges(faces, n_vertices)
    return np.flatnonzero(np.bincount(half[:, 0], minlength=n_vertices) > 1) if len(half) else np.zeros(0, np.int64)


def boundary_loop_lengths(vertices: np.ndarray, faces: np.ndarray) -> np.ndarray:
    """Lengths ``(L,)`` of the boundary loops of a mesh ``vertices : (V, 3)``, ``faces : (F, 3)``
    (edges used by one face, split into cycles by :func:`boundary_cycles`); empty when it is closed."""
    boundary = boundary_half_edges(faces, len(vertices))
    if len(boundary) == 0:
        return np.zeros(0)
    _, label, _ = boundary_cycles(boundary, len(vertices))
    edge_lengths = np.linalg.norm(vertices[boundary[:, 0]] - vertices[boundary[:, 1]], axis=1)
    return np.bincount(label, weights=edge_lengths)


def _split_repeats(
    half_edges: np.ndarray, succ: np.ndarray, label: np.ndarray, n_cycles: int, cycles: np.ndarray, max_len: int = 4096
) -> tuple[np.ndarray, int]:
    """Split the closed walks ``cycles`` (labels; ``succ`` the next half-edge) that visit a vertex
    twice into simple cycles (a walk ``v .. v .. v`` is two loops touching at ``v``); walks longer
    than ``max_len`` half-edges are left whole. Returns the new labels and their count."""
    label = label.copy()
    for c in cycles:
        first = int(np.nonzero(label == c)[0][0])
        walk = [first]
        while succ[walk[-1]] != first and len(walk) <= max_len:
            walk.append(int(succ[walk[-1]]))
        if len(walk) > max_len:
            continue
        stack: list[int] = []
        seen: dict[int, int] = {}
        for e in walk:
            v = int(half_edges[e, 0])
            if v in seen:  # close the loop that returned to v
                j = seen[v]
                for e2 in stack[j:]:
                    label[e2] = n_cycles
                    seen.pop(int(half_edges[e2, 0]), None)
                n_cycles += 1
                del stack[j:]
            seen[v] = len(stack)
            stack.append(e)
    return label, n_cycles


def face_components(faces: np.ndarray, n_vertices: int) -> tuple[int, np.ndarray]:
    """Edge-connected components of the faces: ``(count, labels (F,))``."""
    if len(faces) == 0:
        return 0, np.zeros(0, dtype=np.int64)
    _, key, owner = _edges(faces, n_vertices)
    order = np.argsort(key, kind="stable")
    k, o = key[order], owner[order]
    same = k[1:] == k[:-1]
    return _components(len(faces), o[:-1][same], o[1:][same])


def _edge_uses(faces: np.ndarray, n_vertices: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The undirected edges as sorted keys ``lo * n_vertices + hi`` ``(E,)``, how many faces use
    each ``(E,)`` and how many of those run ``lo -> hi`` ``(E,)``."""
    he, key, _ = _edges(faces, n_vertices)
    uniq, inv, counts = np.unique(key, return_inverse=True, return_counts=True)
    forward = np.bincount(inv, weights=(he[:, 0] < he[:, 1]).astype(np.int64), minlength=len(uniq))
    return uniq, counts, forward


def inconsistent_edge_count(faces: np.ndarray, n_vertices: int) -> int:
    """Edges shared by two faces that traverse it in the same direction (winding not consistent)."""
    _, counts, forward = _edge_uses(faces, n_vertices)
    return int(((counts == 2) & (forward != 1)).sum())


def nonmanifold_edge_vertices(faces: np.ndarray, n_vertices: int) -> np.ndarray:
    """The vertices ``(K,)`` of the edges that more than two faces share."""
    uniq, counts, _ = _edge_uses(faces, n_vertices)
    shared = uniq[counts > 2]
    return unique(np.concatenate([shared // n_vertices, shared % n_vertices]))


def mesh_stats(vertices: np.ndarray, faces: np.ndarray) -> MeshStats:
    """Count components, boundary loops, non-manifold and inconsistently wound edges,
    degenerate (zero-area or repeated-index) and duplicate faces."""
    vertices = np.asarray(vertices, np.float64)
    faces = np.asarray(faces, np.int64).reshape(-1, 3)
    nv = len(vertices)
    if len(faces) == 0:
        return MeshStats(nv, 0, 0.0, 0, 0, 0, 0, 0, 0, 0)
    areas = face_areas(vertices, faces)
    diag2 = float(((vertices.max(0) - vertices.min(0)) ** 2).sum()) if nv else 0.0
    repeated = repeats_index(faces)
    degenerate = repeated | (areas <= 1e-14 * max(diag2, 1e-300))
    n_dup = len(faces) - len(distinct_faces(faces, nv))
    uniq, counts, n_fwd = _edge_uses(faces, nv)
    # winding: for edges with two faces, the two half-edges must run in opposite directions
    inconsistent = int(((counts == 2) & (n_fwd != 1)).sum())
    boundary = uniq[counts == 1]
    n_loops = _loop_count(boundary, nv)
    n_comp, _ = face_components(faces, nv)
    return MeshStats(
        n_vertices=nv,
        n_faces=len(faces),
        area=float(areas.sum()),
        n_components=int(n_comp),
        n_boundary_edges=int(len(boundary)),
        n_boundary_loops=int(n_loops),
        n_nonmanifold_edges=int((counts > 2).sum()),
        n_inconsistent_edges=inconsistent,
        n_degenerate_faces=int(degenerate.sum()),
        n_duplicate_faces=int(n_dup),
    )


def defect_count(faces: np.ndarray, n_vertices: int) -> int:
    """Pieces + boundary loops + inconsistently wound edges (as :func:`mesh_stats` counts them): what
    the extraction's alternatives are compared by."""
    pieces, _ = face_components(faces, n_vertices)
    return pieces + boundary_loop_count(faces, n_vertices) + inconsistent_edge_count(faces, n_vertices)


def boundary_loop_count(faces: np.ndarray, n_vertices: int) -> int:
    """The boundary loops of a mesh (connected runs of edges only one face uses), as
    :func:`mesh_stats` counts them."""
    if len(faces) == 0:
        return 0
    uniq, counts, _ = _edge_uses(faces, n_vertices)
    return _loop_count(uniq[counts == 1], n_vertices)


def _loop_count(boundary: np.ndarray, n_vertices: int) -> int:
    """Connected components of the edges with keys ``boundary : (B,)``."""
    if len(boundary) == 0:
        return 0
    a, b = boundary // n_vertices, boundary % n_vertices
    verts = unique(np.concatenate([a, b]))
    remap = np.searchsorted(verts, np.concatenate([a, b]))
    return int(_components(len(verts), remap[: len(a)], remap[len(a) :])[0])


def orient_faces(vertices: np.ndarray, faces: np.ndarray) -> np.ndarray:
    """Flip faces so that every two-face edge is traversed once in each direction, then turn each
    component so that its signed volume about its own centroid is positive (outward for closed
    surfaces).

    The relative orientation is propagated along a spanning tree of the faces (per component) that
    prefers the smoothest links (neighbours whose normals agree once made consistent;
    :func:`_smooth_tree`). An orientable component comes out consistently wound whatever the tree.
    A non-orientable one (a Moebius strip, or a surface with a small twisted defect) must keep a
    seam of inconsistent edges; this tree puts it across creases and crumpled faces, where it is
    short, instead of wherever two breadth-first fronts happen to meet, where it can run across
    the whole surface and spoil its winding numbers.

    Returns the reoriented ``faces : (F, 3)``.
    """
    faces = faces.copy()
    if len(faces) == 0:
        return faces
    links = _face_links(vertices, faces)
    parity = _tree_parity(_smooth_tree(links, len(faces)), links, len(faces))
    faces[parity == 1] = faces[parity == 1][:, ::-1]
    return _outward(vertices, faces)


@dataclass
class _FaceLinks:
    """The two faces ``a``, ``b`` ``(E,)`` of each manifold edge, whether they traverse it the same
    way (``flip``: one must turn for the pair to be consistent) and ``smooth`` ``(E,)``, the cosine
    between their normals once consistent."""

    a: np.ndarray
    b: np.ndarray
    flip: np.ndarray
    smooth: np.ndarray


def _face_links(vertices: np.ndarray, faces: np.ndarray) -> _FaceLinks:
    he, key, owner = _edges(faces, len(vertices))
    order = np.argsort(key, kind="stable")
    k = key[order]
    _, start, counts = np.unique(k, return_index=True, return_counts=True)
    pairs = start[counts == 2]
    i0, i1 = order[pairs], order[pairs + 1]
    a, b = owner[i0], owner[i1]
    flip = he[i0, 0] == he[i1, 0]
    t = vertices[faces].astype(np.float64)
    n = np.cross(t[:, 1] - t[:, 0], t[:, 2] - t[:, 0])
    n /= np.linalg.norm(n, axis=1, keepdims=True) + 1e-300
    return _FaceLinks(a, b, flip, np.einsum("ij,ij->i", n[a], n[b]) * np.where(flip, -1.0, 1.0))


def _smooth_tree(links: _FaceLinks, n_faces: int):
    """A minimum spanning forest of the face graph weighted ``2 - smooth`` (1 where neighbours
    continue each other, 3 where one folds back onto the other), its components joined to one extra
    root node ``n_faces``: a symmetric sparse matrix over ``n_faces + 1`` nodes."""
    from scipy.sparse import coo_matrix
    from scipy.sparse.csgraph import connected_components, minimum_spanning_tree

    n = n_faces + 1
    forest = minimum_spanning_tree(coo_matrix((2.0 - links.smooth, (links.a, links.b)), shape=(n, n)).tocsr())
    _, label = connected_components(forest[:n_faces, :n_faces], directed=False)
    _, first = np.unique(label, return_index=True)
    roots = coo_matrix((np.ones(len(first)), (np.full(len(first), n_faces), first)), shape=(n, n))
    tree = forest + roots
    return (tree + tree.T).tocsr()


def _tree_parity(tree, links: _FaceLinks, n_faces: int) -> np.ndarray:
    """``(F,)`` int8: 1 for the faces to flip, propagated from the extra root along the tree's
    breadth-first order (a parent's parity, toggled where the link says ``flip``)."""
    from scipy.sparse import coo_matrix
    from scipy.sparse.csgraph import breadth_first_order

    order, pred = breadth_first_order(tree, n_faces, directed=False, return_predecessors=True)
    child = order[1:]
    parent = pred[child]
    n = n_faces + 1
    flips = coo_matrix(
        (
            np.concatenate([links.flip, links.flip]).astype(np.int8) + 1,  # 1/2 so zeros survive
            (np.concatenate([links.a, links.b]), np.concatenate([links.b, links.a])),
        ),
        shape=(n, n),
    ).tocsr()
    flip = (np.asarray(flips[parent, child]).ravel() - 1).clip(0)  # root links: 0
    parity = [0] * n
    for node, up, f in zip(child.tolist(), parent.tolist(), flip.tolist()):
        parity[node] = parity[up] ^ f
    return np.asarray(parity[:n_faces], dtype=np.int8)


def _outward(vertices: np.ndarray, faces: np.ndarray) -> np.ndarray:
    """Each component turned so that its signed volume about its own centroid is positive."""
    n_comp, labels = face_components(faces, len(vertices))
    t = vertices[faces]
    for c in range(n_comp):
        sel = labels == c
        tc = t[sel]
        center = tc.reshape(-1, 3).mean(0)
        vol = np.einsum("ij,ij->i", tc[:, 0] - center, np.cross(tc[:, 1] - center, tc[:, 2] - center)).sum()
        if vol < 0:
            faces[sel] = faces[sel][:, ::-1]
    return faces


def remove_small_components(
    vertices: np.ndarray, faces: np.ndarray, min_faces: int = 0, min_area: float = 0.0
) -> tuple[np.ndarray, np.ndarray]:
    """Drop edge-connected components with fewer than ``min_faces`` faces or less area than
    ``min_area`` (and unused vertices)."""
    if (min_faces <= 1 and min_area <= 0) or len(faces) == 0:
        return vertices, faces
    _, labels = face_components(faces, len(vertices))
    keep = np.bincount(labels)[labels] >= min_faces
    if min_area > 0:
        keep &= np.bincount(labels, weights=face_areas(vertices, faces))[labels] >= min_area
    return drop_unused_vertices(vertices, faces[keep])


def drop_specks(
    vertices: np.ndarray, faces: np.ndarray, max_faces: int, reach: float, ratio: float = 10.0
) -> tuple[np.ndarray, np.ndarray]:
    """Drop edge-connected components of at most ``max_faces`` faces that have a vertex within
    ``reach`` of a vertex of a component at least ``ratio`` times larger (and unused vertices)."""
    if max_faces <= 0 or len(faces) == 0:
        return vertices, faces
    _, labels = face_components(faces, len(vertices))
    sizes = np.bincount(labels)
    small = np.flatnonzero(sizes <= max_faces)
    if len(small) == 0 or len(small) == len(sizes):
        return vertices, faces
    from scipy.spatial import cKDTree

    owner = np.full(len(vertices), -1, np.int64)
    owner[faces.reshape(-1)] = np.repeat(labels, 3)
    drop = np.zeros(len(sizes), bool)
    for size in np.unique(sizes[small]):
        big = np.flatnonzero(owner >= 0)
        big = big[sizes[owner[big]] >= ratio * size]
        if len(big) == 0:
            continue
        these = np.flatnonzero(np.isin(owner, small[sizes[small] == size]))
        d, _ = cKDTree(vertices[big]).query(vertices[these], k=1, distance_upper_bound=reach)
        drop[unique(owner[these[np.isfinite(d)]])] = True
    if not drop.any():
        return vertices, faces
    return drop_unused_vertices(vertices, faces[~drop[labels]])


@dataclass
class CutSeams:
    """A mesh with its short seams of inconsistent winding cut out (:func:`cut_short_seams`):
    ``vertices``, ``faces`` (unused vertices dropped) and the inconsistent edges before and cut."""

    vertices: np.ndarray
    faces: np.ndarray
    n_seam_edges: int
    n_cut_edges: int


def cut_short_seams(vertices: np.ndarray, faces: np.ndarray, max_extent: float) -> CutSeams:
    """Drop the two faces of every inconsistently wound edge (two faces that traverse it the same
    way) whose seam, a connected run of such edges, spans at most ``max_extent`` along every axis.

    A mesh whose faces were oriented as consistently as it allows (:func:`orient_faces`) keeps such
    a seam only where it is not orientable: a twist where an extraction joined two layers of a
    fold, or a real Moebius strip. A short seam is a defect: with its faces gone the winding is
    consistent around it and the boundary loops it touched become simple (loops through an
    inconsistently wound vertex are skipped by hole filling, :func:`deepcsp.extract.holes.boundary_loops`).
    Longer seams (a Moebius strip's, across its width) stay. The other faces keep their winding."""
    seams = short_seam_faces(vertices, faces, max_extent)
    if len(seams.faces) == 0:
        return CutSeams(vertices, faces, seams.n_seam_edges, 0)
    v, f = drop_unused_vertices(vertices, np.delete(faces, seams.faces, axis=0))
    return CutSeams(v, f, seams.n_seam_edges, seams.n_short_edges)


@dataclass
class ShortSeams:
    """The faces ``(K,)`` of the short seams of :func:`short_seam_faces`, the inconsistent edges and
    the short seams' edges."""

    faces: np.ndarray
    n_seam_edges: int
    n_short_edges: int


def short_seam_faces(vertices: np.ndarray, faces: np.ndarray, max_extent: float) -> ShortSeams:
    """The faces of the inconsistently wound edges whose seam (a connected run of them) spans at
    most ``max_extent`` along every axis (what :func:`cut_short_seams` drops)."""
    n, none = len(vertices), np.zeros(0, dtype=np.int64)
    if len(faces) == 0 or max_extent <= 0:
        return ShortSeams(none, 0, 0)
    keys, counts, forward = _edge_uses(faces, n)
    seam = keys[(counts == 2) & (forward != 1)]  # as inconsistent_edge_count counts them
    if len(seam) == 0:
        return ShortSeams(none, 0, 0)
    a, b = seam // n, seam % n
    _, label = _components(n, a, b)
    piece = label[a]
    lo = np.full((label.max() + 1, 3), np.inf)
    hi = np.full((label.max() + 1, 3), -np.inf)
    for end in (a, b):
        np.minimum.at(lo, piece, vertices[end])
        np.maximum.at(hi, piece, vertices[end])
    short = ((hi - lo).max(1) <= max_extent)[piece]
    if not short.any():
        return ShortSeams(none, len(seam), 0)
    _, key, owner = _edges(faces, n)
    return ShortSeams(unique(owner[np.isin(key, seam[short])]), len(seam), int(short.sum()))


def drop_nonmanifold_faces(vertices: np.ndarray, faces: np.ndarray) -> np.ndarray:
    """``faces`` without those that make an edge non-manifold: where more than two faces share an
    edge, the two largest stay (a fin or a flap of a few faces goes; boundary loops may appear)."""
    if len(faces) == 0:
        return faces
    _, key, owner = _edges(faces, len(vertices))
    _, edge, counts = np.unique(key, return_inverse=True, return_counts=True)
    shared = np.flatnonzero(counts[edge] > 2)
    if len(shared) == 0:
        return faces
    area = face_areas(vertices, faces)
    shared = shared[np.lexsort((-area[owner[shared]], edge[shared]))]  # by edge, largest face first
    rank = np.arange(len(shared)) - np.searchsorted(edge[shared], edge[shared])
    return np.delete(faces, unique(owner[shared[rank >= 2]]), axis=0)


@dataclass
class BridgedPinches:
    """A mesh whose pinched vertices were bridged (:func:`bridge_pinches`): ``faces`` over the old
    vertices plus one copy per bridged pinch, ``source : (V',)`` the vertex each copies (``arange(V)``
    first), ``n_bridged`` the pinches bridged."""

    faces: np.ndarray
    source: np.ndarray
    n_bridged: int


def bridge_pinches(faces: np.ndarray, n_vertices: int) -> BridgedPinches:
    """Put back the strip that a pinch cut to a point: a vertex where two boundary loops touch, its
    faces in two fans (each running from one hole to the other), becomes two vertices, one on each
    hole's side, joined by an edge that a new triangle in each fan shares. The copies start where the
    vertex is (the new triangles have no area until the vertices move, as a refinement's boundary
    snapping moves them onto their holes' rims). Pinches whose faces do not make exactly two fans
    wound one way are left as they are. ``faces`` must be consistently wound."""
    faces = np.array(faces, np.int64).reshape(-1, 3)  # a copy: pinched vertices are replaced in it
    pinched = pinched_vertices(faces, n_vertices)
    new_faces, copies = [], []
    for v in pinched:
        fans = _fans(faces, int(v))
        if fans is None:
            continue
        c0, c1 = int(v), n_vertices + len(copies)  # c0 beside the hole before the first fan, c1 the other
        copies.append(int(v))
        for fan, (near, far) in zip(fans, ((c0, c1), (c1, c0))):
            ids, spokes = fan
            m = (len(ids) + 1) // 2
            faces[ids[m:]] = np.where(faces[ids[m:]] == v, far, faces[ids[m:]])
            faces[ids[:m]] = np.where(faces[ids[:m]] == v, near, faces[ids[:m]])
            new_faces.append([near, spokes[m], far])
    out = np.concatenate([faces, np.asarray(new_faces, np.int64).reshape(-1, 3)])
    return BridgedPinches(out, np.concatenate([np.arange(n_vertices), np.asarray(copies, np.int64)]), len(copies))


def _fans(faces: np.ndarray, v: int):
    """The two fans of faces around vertex ``v``, each as ``(face ids, spokes)`` in winding order
    (face ``i`` of a fan is ``(v, spokes[i], spokes[i + 1])`` up to rotation), or None when the faces
    around ``v`` do not make exactly two such fans."""
    ids = np.flatnonzero((faces == v).any(1))
    rot = faces[ids]
    k = np.argmax(rot == v, axis=1)
    a = rot[np.arange(len(ids)), (k + 1) % 3]  # the face runs v -> a -> b
    b = rot[np.arange(len(ids)), (k + 2) % 3]
    if len(np.unique(a)) != len(a) or len(np.unique(b)) != len(b):
        return None
    after = {int(x): i for i, x in enumerate(a)}  # the face whose first spoke is x
    ends = set(b.tolist())
    starts = [i for i, x in enumerate(a) if int(x) not in ends]  # faces after a boundary edge
    if len(starts) != 2:
        return None
    fans = []
    for s in starts:
        chain, i = [s], s
        while int(b[i]) in after and len(chain) <= len(ids):
            i = after[int(b[i])]
            chain.append(i)
        fans.append((ids[chain], [int(a[chain[0]])] + [int(b[j]) for j in chain]))
    if sum(len(f[0]) for f in fans) != len(ids):
        return None
    return fans
