"""Watertight extraction for closed fields: dual contouring on true inside/outside signs.

When a field knows inside from outside (``field.closed``), every grid corner gets a sign and the
crossed edges are exactly the edges whose corners differ. One quad per crossed edge, joining the
dual vertices of its four cells, gives the boundary of the union of the inside corners' dual
cubes: closed and consistently oriented by construction, whatever the signs are (a wrong sign
makes a bump or a small closed blob, never a hole). Steps, normalised coordinates, grid
``origin + (i, j, k) h``:

1. **Cells**: candidate cells (coarse to fine, :mod:`deepcsp.extract.sparse`), signed distances at
   all their corners. Corners on the grid's outer layer count as outside, so the surface closes
   inside the grid.
1a. **Dilation** (``dilate``, default half a cell): a corner counts as inside when its signed
   distance is below ``dilate`` (the level set ``d = dilate`` is contoured), and every crossing and
   vertex is then moved onto the surface by CSP. A part thinner than a cell (a plate, a wing tip)
   always has inside corners next to it, so it comes out closed, both sides snapped onto their own
   side of the part, instead of vanishing between corners; the price is that gaps narrower than
   about a cell between two parts close (as they may without it).
1b. **Thin parts** (``thin_parts``): a part thinner than a cell that falls between two outside
   corners has no sign change; where the corners' CSP directions say such a part lies between them
   (:func:`_thin_flips`) one corner is made inside, so the part is kept (not marching cubes' loss).
2. **Closure**: the four cells around every sign-changing edge must be present (all their corners
   evaluated). Missing ones (a field whose distances are too large near the band's edge) are
   added and evaluated, and the test repeated.
3. **Bias**: as for open fields, ``u_a + u_b`` on a crossed edge exceeds the edge's extent along the
   normal by twice a constant distance bias; the median over the crossed edges estimates it (one
   closest-point query at the crossed edges' corners).
4. **Crossings**: ``t = (|s_a| - b) / (|s_a| + |s_b| - 2 b)``, the point snapped with
   ``CSP(x) + b n``. With noisy distances (estimated noise above ``noisy_above`` cells) each
   crossed edge is sampled instead and the crossing placed by its samples' tangent planes
   (:mod:`deepcsp.extract.planes`); the vertices of step 5 then take the mean height of those
   planes instead of one snap.
5. **Dual vertices**: one per sign component of a cell, i.e. per marching-cubes patch: a cell's
   crossings are linked on its faces (two crossings on a face: linked; four: the bilinear saddle
   of the face's signed distances decides which diagonal's corners connect; the decision uses
   only the face's corners, so both cells sharing the face agree and no edge gets four faces).
   The vertex is the mean of its crossings, snapped with CSP.
6. **Quads** oriented from the sign: the normal points from the inside corner to the outside one.
   Components made only of faces around thin-part flips (other than the largest) are dropped, and
   flips next to a face whose patches cannot be separated are undone (so no edge gets four faces).
"""

from __future__ import annotations

import time
from dataclasses import dataclass

import numpy as np

from deepcsp._arrays import intersect, member, setdiff, union, unique
from deepcsp.extract.config import PathMesh
from deepcsp.extract.dual import entry_table, link_cell_faces, link_components, quad_cells, snapped_means, triangulate
from deepcsp.extract.grid import CORNER_OFFSETS, FACE_CORNERS, Queries, cell_edges, corner_ijk, corner_keys, unit
from deepcsp.extract.planes import flat_planes, straddles
from deepcsp.extract.sparse import candidate_cells
from deepcsp.geometry.cleanup import drop_unused_vertices, repeats_index, weld_map


class _SignedCorners:
    """Signed distances at evaluated grid corners, kept sorted by corner key."""

    def __init__(self, fq: Queries, resolution: int, origin: float, dilate: float = 0.0):
        self.fq = fq
        self.dilate = dilate
        self.R = resolution
        self.n1 = resolution + 1
        self.origin = origin
        self.keys = np.zeros(0, dtype=np.int64)
        self.values = np.zeros(0)
        self.n_evaluations = 0

    def add(self, keys: np.ndarray) -> None:
        """Evaluate the corners among ``keys`` not seen yet."""
        new = setdiff(keys, self.keys)
        if len(new) == 0:
            return
        ijk = corner_ijk(new, self.n1)
        s = self.fq.signed(self.origin + ijk * (1.0 / self.R)) - self.dilate
        self.n_evaluations += len(new)
        border = ((ijk == 0) | (ijk == self.R)).any(1)
        s[border] = np.abs(s[border])  # the grid's outer layer is outside: the surface closes inside
        keys = np.concatenate([self.keys, new])
        order = np.argsort(keys, kind="stable")
        self.keys, self.values = keys[order], np.concatenate([self.values, s])[order]

    def index(self, keys: np.ndarray) -> np.ndarray:
        return np.searchsorted(self.keys, keys)

    def lookup(self, keys: np.ndarray) -> np.ndarray:
        """Signed distances at ``keys`` (NaN where a corner was not evaluated)."""
        i = np.minimum(self.index(keys), max(len(self.keys) - 1, 0))
        ok = (self.keys[i] == keys) if len(self.keys) else np.zeros(np.shape(keys), dtype=bool)
        return np.where(ok, self.values[i] if len(self.keys) else np.nan, np.nan)


def _crossed_edges(cells: np.ndarray, sc: _SignedCorners, stride: np.ndarray) -> np.ndarray:
    """Sorted keys of the sign-changing edges of ``cells``."""
    edges = cell_edges(cells, sc.n1)
    axis = edges % 3
    ia = sc.index(edges // 3)
    ib = sc.index(edges // 3 + stride[axis])
    return edges[(sc.values[ia] < 0) != (sc.values[ib] < 0)]


def _close(
    cells: np.ndarray, sc: _SignedCorners, stride: np.ndarray, max_rounds: int = 32
) -> tuple[np.ndarray, np.ndarray, int]:
    """Add the missing cells around sign-changing edges until every such edge has its four cells
    (a field whose signs are wrong far from the surface could make this run on: after
    ``max_rounds`` it warns and stops). Returns ``(cells, crossed edge keys, number of cells added)``."""
    R = sc.R
    key = lambda c: (c * stride).sum(-1)  # noqa: E731  (cell = its lowest corner)
    have = unique(key(cells))
    added = 0
    edges = _crossed_edges(cells, sc, stride)
    for rnd in range(max_rounds + 1):
        qc = quad_cells(edges, sc.n1).reshape(-1, 3)
        qc = qc[((qc >= 0) & (qc < R)).all(1)]
        need = setdiff(key(qc), have)
        if len(need) == 0:
            return cells, edges, added
        if rnd == max_rounds:
            break
        new = corner_ijk(need, sc.n1)
        sc.add(unique(corner_keys(new, stride)))
        cells = np.concatenate([cells, new])
        have = union(have, need)
        added += len(need)
        # the corners evaluated before keep their signs: only the new cells' edges can add crossings
        edges = union(edges, _crossed_edges(new, sc, stride))
    import warnings

    warnings.warn(
        f"signed extraction: cells were still missing around sign-changing edges after {max_rounds} rounds "
        f"({added} cells added); the mesh may have holes",
        stacklevel=3,
    )
    return cells, edges, added


def _thin_flips(
    fq: Queries,
    cells: np.ndarray,
    sc: _SignedCorners,
    stride: np.ndarray,
    h: float,
    agree: float,
    min_axis: float = 0.2,
) -> np.ndarray:
    """Give corner signs to parts thinner than a cell that fall between two outside grid corners
    (a plate, a claw, a wing tip), which corner signs alone miss.

    An edge ``a -> b`` (along +axis) whose corners are both outside has such a part between them
    when ``s_a + s_b < h``, both CSP directions point away from the other corner
    (``n_a[axis] < -min_axis``, ``n_b[axis] > min_axis``: the closest points lie between them; across a
    medial axis they point towards each other) and the two closest points agree (within ``agree h``).
    The lower corner ``a`` of every such edge is made inside, so the part gets sign changes around
    it; the vertices are then snapped onto it with CSP. Flips that would leave a corner with a sign
    unlike all six neighbours (a closed blob of its own) are undone. Gaps thinner than a cell between
    two inside corners are left alone (flipping those made spurious cavities on fitted fields). One
    closest-point query at the corners of the outside edges with ``s_a + s_b < h``. Returns the keys
    of the flipped corners.
    """
    edges = cell_edges(cells, sc.n1)
    axis = edges % 3
    ia = sc.index(edges // 3)
    ib = sc.index(edges // 3 + stride[axis])
    sa, sb = sc.values[ia], sc.values[ib]
    sus = (sa >= 0) & (sb >= 0) & (sa + sb < h)
    ia, ib, axis = ia[sus], ib[sus], axis[sus]
    if len(ia) == 0:
        return np.zeros(0, dtype=np.int64)
    cc, inv = np.unique(np.concatenate([ia, ib]), return_inverse=True)
    p, q = fq.closest(sc.origin + corner_ijk(sc.keys[cc], sc.n1) * h)
    n, u = unit(p - q)
    ja, jb = inv[: len(ia)], inv[len(ia) :]
    thin = (
        (n[ja, axis] < -min_axis)
        & (n[jb, axis] > min_axis)
        & (np.linalg.norm(q[ja] - q[jb], axis=1) < agree * h)
        & (u[ja] > 0)
        & (u[jb] > 0)
    )
    flip = sc.index(unique(sc.keys[ia[thin]]))
    sc.values[flip] = -sc.values[flip]
    # a corner whose sign differs from all six neighbours makes a closed blob of its own (a flat box
    # around one corner, off the rest of the surface): undo the flips that isolate a corner
    for _ in range(4):
        undo = _isolating_flips(sc, stride, flip)
        if len(undo) == 0:
            break
        sc.values[undo] = -sc.values[undo]
        flip = setdiff(flip, undo)
    return sc.keys[flip].copy()


def _neighbours(sc: _SignedCorners, idx: np.ndarray, stride: np.ndarray) -> np.ndarray:
    """``(len(idx), 6)`` indices of the six axis neighbours of corners ``idx`` (-1: not evaluated)."""
    ijk = corner_ijk(sc.keys[idx], sc.n1)
    out = np.full((len(idx), 6), -1, dtype=np.int64)
    for j, (d, step) in enumerate((d, step) for d in range(3) for step in (-1, 1)):
        nb = ijk.copy()
        nb[:, d] += step
        key = (nb * stride).sum(1)
        pos = np.minimum(sc.index(key), len(sc.keys) - 1)
        ok = (nb[:, d] >= 0) & (nb[:, d] <= sc.R) & (sc.keys[pos] == key)
        out[ok, j] = pos[ok]
    return out


def _isolating_flips(sc: _SignedCorners, stride: np.ndarray, flip: np.ndarray) -> np.ndarray:
    """Flipped corners (indices into ``sc``) that leave some corner with a sign unlike all of its
    evaluated neighbours: the isolated flipped corners themselves and the flipped neighbours of
    isolated unflipped ones."""
    if len(flip) == 0:
        return flip
    nb_f = _neighbours(sc, flip, stride)
    near = unique(np.concatenate([flip, nb_f[nb_f >= 0]]))
    nb = _neighbours(sc, near, stride)
    inside = sc.values < 0
    differs = np.where(nb >= 0, inside[np.maximum(nb, 0)] != inside[near][:, None], True)
    isolated = differs.all(1) & (nb >= 0).any(1)
    iso = near[isolated]
    is_flip = member(iso, unique(flip))
    nbs = nb[isolated][~is_flip]
    return unique(np.concatenate([iso[is_flip], intersect(nbs[nbs >= 0], flip)]))


def _bias(
    fq: Queries, sc: _SignedCorners, ia: np.ndarray, ib: np.ndarray, axis: np.ndarray, h: float, agree: float
) -> tuple[float, float]:
    """Constant distance bias and noise from the crossed edges' corners (see the module docstring)."""
    cc, inv = np.unique(np.concatenate([ia, ib]), return_inverse=True)
    if len(cc) == 0:
        return 0.0, 0.0
    p, q = fq.closest(sc.origin + corner_ijk(sc.keys[cc], sc.n1) * h)
    n, u = unit(p - q)
    ja, jb = inv[: len(ia)], inv[len(ia) :]
    clear = (
        ((n[ja] * n[jb]).sum(1) < 0) & (np.linalg.norm(q[ja] - q[jb], axis=1) < agree * h) & (u[ja] > 0) & (u[jb] > 0)
    )
    if not clear.any():
        return 0.0, 0.0
    ja, jb, ax = ja[clear], jb[clear], axis[clear]
    ne, _ = unit(n[ja] - n[jb])
    excess = 0.5 * (u[ja] + u[jb] - h * np.abs(ne[np.arange(len(ne)), ax]))
    med = float(np.median(excess))
    return med, float(np.sqrt(2.0) * 1.4826 * np.median(np.abs(excess - med)))


def _face_ids(cell_keys: np.ndarray, stride: np.ndarray) -> np.ndarray:
    """``(M, 6)`` grid-wide ids of the six faces of cells (keys of their lowest corners), in
    ``FACE_EDGES`` order: both cells sharing a face get the same id."""
    out = np.empty((len(cell_keys), 6), dtype=np.int64)
    for i in range(6):
        f, side = divmod(i, 2)
        out[:, i] = (cell_keys + side * stride[f]) * 3 + f
    return out


def _link_faces(
    table: np.ndarray, values: np.ndarray, face_ids: np.ndarray, flipped: np.ndarray
) -> tuple[np.ndarray, np.ndarray, list]:
    """Links between the crossings of each cell through its faces.

    ``table : (M, 12)`` entry ids of the cells' crossed local edges (-1: not crossed),
    ``values : (M, 8)`` signed distances at the cells' corners, ``face_ids : (M, 6)`` grid-wide
    face ids, ``flipped``: sorted ids of faces whose saddle decision is reversed. Returns entry id
    pairs ``(a, b)`` and, per four-crossing face, ``(face ids, (K, 4) entry ids)``.
    """
    fours = []

    def saddle_pairing(face: int, four: np.ndarray, sub: np.ndarray) -> np.ndarray:
        f = values[four][:, FACE_CORNERS[face]]  # corners shared by edges (0,1), (1,2), (2,3), (3,0)
        f10, f11, f01, f00 = f[:, 0], f[:, 1], f[:, 2], f[:, 3]
        den = f00 + f11 - f10 - f01
        saddle = (f00 * f11 - f10 * f01) / np.where(np.abs(den) > 1e-300, den, 1e-300)
        # corners (0,0) and (1,1) connected through the face: the other two are cut off, i.e.
        # edges 0,1 (around corner (1,0)) and 2,3 (around (0,1)) pair up
        first = (saddle < 0) == (f00 < 0)
        fid = face_ids[four, face]
        if len(flipped):
            first ^= member(fid, unique(flipped))
        fours.append((fid, sub))
        return first

    a, b = link_cell_faces(table, saddle_pairing)
    return a, b, fours


def _patch_vertices(edges: np.ndarray, sc: _SignedCorners, stride: np.ndarray) -> tuple[np.ndarray, int, np.ndarray]:
    """``(4E,)`` dual vertex id of entry ``4 e + k`` (edge ``e`` seen from its ``k``-th cell): one id
    per sign component (marching-cubes patch) of each cell, the number of ids, and the ids of the
    faces whose dual edge still gets four quads (reversing their decision did not split the
    patches; normally none)."""
    n = 4 * len(edges)
    if n == 0:
        return np.zeros(0, dtype=np.int64), 0, np.zeros(0, dtype=np.int64)
    qc = quad_cells(edges, sc.n1)
    ckeys = (qc * stride).sum(-1).reshape(-1)
    uniq, cell_of = np.unique(ckeys, return_inverse=True)
    cell_of = cell_of.reshape(-1)
    table = entry_table(cell_of, len(uniq), edges % 3)
    values = sc.lookup(corner_keys(corner_ijk(uniq, sc.n1), stride))
    face_ids = _face_ids(uniq, stride)
    flipped = np.zeros(0, dtype=np.int64)
    for _ in range(4):
        a, b, fours = _link_faces(table, values, face_ids, flipped)
        n_lab, labels = link_components(a, b, n)
        # a patch that crosses a four-crossing face twice on both sides would give the dual edge
        # across that face four quads: reverse that face's decision (splits the patches)
        both = [
            fid[(labels[sub[:, 0]] == labels[sub[:, 1]]) & (labels[sub[:, 0]] == labels[sub[:, 2]])]
            for fid, sub in fours
        ]
        twice = np.concatenate(both) if both else np.zeros(0, dtype=np.int64)
        uq, cnt = np.unique(twice, return_counts=True)
        stuck = uq[cnt == 2]
        bad = setdiff(stuck, flipped)
        if len(bad) == 0:
            break
        flipped = union(flipped, bad)
    return labels.astype(np.int64), int(n_lab), stuck


def _face_cell_corners(face_ids: np.ndarray, stride: np.ndarray) -> np.ndarray:
    """Keys of the corners of the two cells on either side of grid faces ``face_ids`` (see ``_face_ids``)."""
    if len(face_ids) == 0:
        return np.zeros(0, dtype=np.int64)
    key, f = face_ids // 3, face_ids % 3
    out = []
    for side in (0, 1):
        low = key - side * stride[f]
        out.append((low[:, None] + (CORNER_OFFSETS * stride).sum(1)[None]).reshape(-1))
    return unique(np.concatenate(out))


def _drop_flip_only_components(faces: np.ndarray, n_vertices: int, from_flip: np.ndarray) -> np.ndarray:
    """Drop connected components made only of faces around thin-part flips (``from_flip (F,)``):
    a flipped corner off the rest of the surface makes a small closed blob of its own; what the
    flips add to the surface stays (it is connected to faces that the corner signs gave)."""
    from deepcsp.extract.topology import face_components

    if len(faces) == 0 or not from_flip.any():
        return faces
    n, lab = face_components(faces, n_vertices)
    all_flip = np.bincount(lab, weights=~from_flip, minlength=n) == 0
    all_flip[np.argmax(np.bincount(lab, minlength=n))] = False  # a shape that is all thin part
    return faces[~all_flip[lab]]


def _noisy_crossings(
    fq: Queries,
    sc: _SignedCorners,
    ia: np.ndarray,
    ib: np.ndarray,
    xc: np.ndarray,
    t: np.ndarray,
    bias: float,
    noise: float,
    h: float,
    samples: int,
) -> tuple[np.ndarray, tuple[np.ndarray, np.ndarray, np.ndarray]]:
    """Crossings of the sign-changing edges (corner rows ``ia, ib``; ``pa (E, 3)`` the lower
    corners, ``xc`` the crossings interpolated at parameters ``t``) when distances are noisy: each
    edge is sampled (:func:`~deepcsp.extract.planes.straddles` with ``planes``) and the straddle
    nearest ``t`` places the crossing and gives the tangent planes the dual vertices average.
    Edges with no straddle keep ``xc`` and give no planes. Returns ``(crossings (E, 3), (feet,
    normals, edge))``."""
    cc, inv = np.unique(np.concatenate([ia, ib]), return_inverse=True)
    p, q = fq.closest(sc.origin + corner_ijk(sc.keys[cc], sc.n1) * h)
    n, u = unit(p - q)
    ja, jb = inv[: len(ia)], inv[len(ia) :]
    ref, _ = unit(n[ja] - n[jb])
    smp = straddles(
        fq,
        p[ja],
        p[jb],
        n[ja],
        n[jb],
        u[ja],
        u[jb],
        ref,
        np.full(len(ia), bias),
        bias,
        noise,
        h,
        samples,
        0.0,
        planes=True,
    )
    dist = np.where(smp.straddle, np.abs(smp.tcross - t[:, None]), np.inf)
    rows = np.nonzero(smp.straddle.any(1))[0]
    j = dist[rows].argmin(1)
    xs = xc.copy()
    xs[rows] = p[ja[rows]] + smp.tcross[rows, j][:, None] * (p[jb[rows]] - p[ja[rows]])
    return xs, flat_planes(smp, rows, j, rows)


def _unsnap_collapsed(vs, labels, xc, quads, faces, quad_of, n_v: int, h: float, rounds: int = 3):
    """With ``dilate``, the dilated level set wraps round a part's sharp thin edge, and snapping
    its vertices onto the surface lays several of them on the edge line: zero-area faces. Their
    vertices go back to the mean of their (unsnapped) crossings on the dilated level set, which
    rounds such an edge by up to ``dilate`` instead."""
    from deepcsp.extract.topology import face_areas

    if len(faces) == 0:
        return vs, faces, quad_of
    v0 = np.stack([np.bincount(labels, weights=np.repeat(xc, 4, axis=0)[:, d], minlength=n_v) for d in range(3)], -1)
    v0 /= np.maximum(np.bincount(labels, minlength=n_v), 1)[:, None]
    for _ in range(rounds):
        bad = face_areas(vs, faces) <= 1e-6 * h * h
        if not bad.any():
            break
        idx = unique(faces[bad])
        vs = vs.copy()
        vs[idx] = v0[idx]
        faces, quad_of = triangulate(quads, vs)
    return vs, faces, quad_of


@dataclass
class _Contour:
    """The sign-changing edges of the closed cell set and their dual-vertex labels."""

    cells: np.ndarray
    """(M, 3) cells, closure cells included."""
    edges: np.ndarray
    """(E,) sorted keys of the sign-changing edges."""
    labels: np.ndarray
    """(4E,) dual vertex of entry ``4 e + k`` (:func:`_patch_vertices`)."""
    n_vertices: int
    n_added: int
    """Cells added by the closure step."""
    flipped: np.ndarray
    """Keys of the corners still flipped for thin parts."""


@dataclass
class _SignedCrossings:
    """Where the surface crosses the sign-changing edges."""

    interpolated: np.ndarray
    """(E, 3) crossings interpolated from the signed distances (on the dilated level set)."""
    points: np.ndarray
    """(E, 3) crossings moved onto the surface."""
    planes: tuple[np.ndarray, np.ndarray, np.ndarray] | None
    """Noisy distances: ``(feet, normals, vertex label)`` the tangent planes the dual vertices average."""


def signed_dual_contour(
    fq: Queries,
    resolution: int,
    origin: float,
    margin: float,
    sparse: bool = True,
    debias: bool = True,
    agree: float = 2.0,
    thin_parts: bool = False,
    timings: dict | None = None,
    noisy_above: float = 0.05,
    noisy_samples: int = 9,
    dilate: float = 0.0,
) -> PathMesh:
    """Closed, outward-oriented mesh of a closed field (see the module docstring).

    ``fq`` wraps a field with ``closed`` True; ``margin`` widens the coarse-to-fine test
    (normalised units); ``sparse=False`` evaluates every corner of the dense grid; ``dilate``
    (normalised units) is the level contoured before the vertices are snapped onto the surface.
    """
    timings = {} if timings is None else timings
    R = int(resolution)
    h = 1.0 / R
    n1 = R + 1
    stride = np.array([n1 * n1, n1, 1], dtype=np.int64)
    tick = time.perf_counter()
    # 1-2, 5. signed corners, thin-part flips, closure, dual-vertex patches
    cells, sc = _signed_cells(fq, R, origin, margin, sparse, dilate, stride)
    n_cand = len(cells)
    flipped = _thin_flips(fq, cells, sc, stride, h, agree) if thin_parts else np.zeros(0, dtype=np.int64)
    con = _contour(cells, sc, stride, flipped)
    timings["cells"] = time.perf_counter() - tick
    tick = time.perf_counter()
    # 3. bias and noise
    bias, noise = _contour_bias(fq, sc, con, stride, h, agree, dilate) if debias else (0.0, 0.0)
    if dilate > 0 and noise > noisy_above * h:
        # noisy distances place crossings by the tangent planes of samples straddling the surface,
        # which the edges of a dilated level set do not: contour the surface itself
        return signed_dual_contour(
            fq, resolution, origin, margin, sparse, debias, agree, thin_parts, timings, noisy_above, noisy_samples, 0.0
        )
    cross = _signed_crossings(fq, sc, con, stride, h, bias, noise, noisy_above, noisy_samples)  # 4. crossings
    timings["edges"] = time.perf_counter() - tick
    tick = time.perf_counter()
    vs, faces = _signed_faces(fq, sc, con, cross, stride, h, bias, dilate)  # 5-6. dual vertices, oriented quads
    timings["vertices"] = time.perf_counter() - tick
    return PathMesh(
        vertices=vs,
        faces=faces,
        bias=bias,
        noise=noise,
        n_cells=int(n_cand + con.n_added),
        n_crossings=int(len(con.edges)),
        signed=True,
        n_closure_cells=int(con.n_added),
        n_thin_flips=int(len(con.flipped)),
    )


def _signed_cells(
    fq: Queries, R: int, origin: float, margin: float, sparse: bool, dilate: float, stride: np.ndarray
) -> tuple[np.ndarray, _SignedCorners]:
    """Candidate cells (coarse to fine, or every cell of the dense grid) and the signed distances
    at all their corners."""
    if sparse:
        cells = candidate_cells(fq.distances, R, origin, margin, stop_size=2).cells(R)
    else:
        ax = np.arange(R, dtype=np.int64)
        cells = np.stack(np.meshgrid(ax, ax, ax, indexing="ij"), -1).reshape(-1, 3)
    sc = _SignedCorners(fq, R, origin, dilate)
    sc.add(unique(corner_keys(cells, stride)))
    return cells, sc


def _contour(cells: np.ndarray, sc: _SignedCorners, stride: np.ndarray, flipped: np.ndarray) -> _Contour:
    """Close the cell set around the sign-changing edges and label their dual vertices; where a
    face's dual edge would get four quads next to thin-part flips, undo the flips of the two cells
    around it and contour again (up to four times)."""
    for _ in range(4):
        cells_c, edges, added = _close(cells, sc, stride)
        labels, n_v, stuck = _patch_vertices(edges, sc, stride)
        undo = intersect(_face_cell_corners(stuck, stride), flipped) if len(flipped) else flipped
        if len(undo) == 0:
            break
        i = sc.index(undo)
        sc.values[i] = -sc.values[i]
        flipped = setdiff(flipped, undo)
    return _Contour(cells_c, edges, labels, n_v, added, flipped)


def _edge_ends(edges: np.ndarray, sc: _SignedCorners, stride: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Rows in ``sc`` of the two corners of every edge key."""
    return sc.index(edges // 3), sc.index(edges // 3 + stride[edges % 3])


def _contour_bias(
    fq: Queries, sc: _SignedCorners, con: _Contour, stride: np.ndarray, h: float, agree: float, dilate: float
) -> tuple[float, float]:
    """``(bias, noise)`` from the edges that cross the surface itself: with ``dilate``, those of the
    dilated level set straddle thin parts whole, whose thickness would read as noise."""
    if dilate > 0:
        ea = cell_edges(con.cells, sc.n1)
        ja, jb = sc.index(ea // 3), sc.index(ea // 3 + stride[ea % 3])
        cut = (sc.values[ja] + dilate < 0) != (sc.values[jb] + dilate < 0)
        return _bias(fq, sc, ja[cut], jb[cut], ea[cut] % 3, h, agree)
    ia, ib = _edge_ends(con.edges, sc, stride)
    return _bias(fq, sc, ia, ib, con.edges % 3, h, agree)


def _signed_crossings(
    fq: Queries,
    sc: _SignedCorners,
    con: _Contour,
    stride: np.ndarray,
    h: float,
    bias: float,
    noise: float,
    noisy_above: float,
    noisy_samples: int,
) -> _SignedCrossings:
    """Crossings ``t = (|s_a| - b) / (|s_a| + |s_b| - 2 b)`` snapped with ``CSP(x) + b n`` (a snap
    longer than a cell diagonal is not applied); with noisy distances placed by the tangent planes
    of samples along each edge instead (:func:`_noisy_crossings`)."""
    edges = con.edges
    axis = edges % 3
    ia, ib = _edge_ends(edges, sc, stride)
    ua, ub = np.abs(sc.values[ia]), np.abs(sc.values[ib])
    den = ua + ub - 2.0 * bias
    t = np.where(den > 1e-12, (ua - bias) / np.where(den > 1e-12, den, 1.0), 0.5).clip(0.0, 1.0)
    pa = sc.origin + corner_ijk(edges // 3, sc.n1) * h
    xc = pa.astype(np.float64)
    xc[np.arange(len(edges)), axis] += t * h
    if noise > noisy_above * h:
        xs, (feet, nrm, owner) = _noisy_crossings(fq, sc, ia, ib, xc, t, bias, noise, h, noisy_samples)
        planes = (np.repeat(feet, 4, axis=0), np.repeat(nrm, 4, axis=0), con.labels.reshape(-1, 4)[owner].reshape(-1))
        return _SignedCrossings(xc, xs, planes)
    xc32, qc = fq.closest(xc)
    nc, _ = unit(xc32 - qc)
    xs = qc + bias * nc
    far = np.linalg.norm(xs - xc, axis=1) > np.sqrt(3.0) * h
    xs[far] = xc[far]
    return _SignedCrossings(xc, xs, None)


def _signed_faces(
    fq: Queries,
    sc: _SignedCorners,
    con: _Contour,
    cross: _SignedCrossings,
    stride: np.ndarray,
    h: float,
    bias: float,
    dilate: float,
) -> tuple[np.ndarray, np.ndarray]:
    """``(vertices, faces)``: dual vertices (mean of their crossings, snapped), one quad per edge
    oriented from the inside corner to the outside one, split into triangles; with ``dilate``,
    collapsed vertices unsnapped and coincident ones welded; blobs made only by thin-part flips
    dropped."""
    labels = con.labels
    vs = snapped_means(fq, labels, np.repeat(cross.points, 4, axis=0), con.n_vertices, bias, h, planes=cross.planes)
    quads = labels.reshape(-1, 4)
    ia, _ = _edge_ends(con.edges, sc, stride)
    outward_minus = sc.values[ia] >= 0  # corner a outside: the normal points along -axis
    quads[outward_minus] = quads[outward_minus][:, ::-1]
    faces, quad_of = triangulate(quads, vs)
    if dilate > 0:
        vs, faces, quad_of = _unsnap_collapsed(vs, labels, cross.interpolated, quads, faces, quad_of, con.n_vertices, h)
        vs, faces, quad_of = _weld_coincident(vs, faces, quad_of, h)
    if len(con.flipped):
        vs, faces = _drop_flip_blobs(vs, faces, quad_of, con.edges, con.flipped, stride)
    return vs, faces


def _weld_coincident(
    vs: np.ndarray, faces: np.ndarray, quad_of: np.ndarray, h: float
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Crossings clipped to a grid corner can put two dual vertices on the same point: weld them
    (their faces go; the surface stays closed), except where a weld would make an edge
    non-manifold (two sheets pinched at the point): those vertices stay apart, their
    zero-area faces kept. Returns ``(vertices, faces, quad of each face)``."""
    from deepcsp.extract.topology import face_areas, nonmanifold_edge_vertices

    if not (face_areas(vs, faces) <= 1e-12 * h * h).any():
        return vs, faces, quad_of
    first, inverse = weld_map(vs, 1e-9 * h)
    welds = np.ones(len(first), dtype=bool)  # per point: its vertices welded
    while True:
        target = np.where(welds[inverse], inverse, len(first) + np.arange(len(vs)))
        welded = target[faces]
        keep = ~repeats_index(welded)
        pinched = nonmanifold_edge_vertices(welded[keep], len(first) + len(vs))
        pinched = pinched[pinched < len(first)]
        if len(pinched) == 0:
            break
        welds[pinched] = False  # the original mesh is manifold: this ends, at worst with no weld
    vertices, faces = drop_unused_vertices(np.concatenate([vs[first], vs]), welded[keep])
    return vertices, faces, quad_of[keep]


def _drop_flip_blobs(
    vs: np.ndarray, faces: np.ndarray, quad_of: np.ndarray, edges: np.ndarray, flipped: np.ndarray, stride: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Drop the components made only of faces around thin-part flips
    (:func:`_drop_flip_only_components`) and the vertices left unused."""
    from_flip = member(edges // 3, unique(flipped)) | member(edges // 3 + stride[edges % 3], unique(flipped))
    return drop_unused_vertices(vs, _drop_flip_only_components(faces, len(vs), from_flip[quad_of]))
