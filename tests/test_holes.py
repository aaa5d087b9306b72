"""Boundary loops and the patches that close them (deepcsp.extract.holes), holes measured against a
cloud (deepcsp.pipelines.holes), and where orient_faces puts the seam of a non-orientable mesh."""

from __future__ import annotations

import numpy as np

from deepcsp.extract.holes import boundary_loops, ear_clip, edge_keys
from deepcsp.extract.mend import unbridge_holes, untwist_holes
from deepcsp.extract.topology import cut_short_seams, mesh_stats, orient_faces
from deepcsp.pipelines.holes import SampleGaps, fill_covered_holes, retract_rims, trim_holes


def grid_sheet(n: int, size: float = 1.0) -> tuple[np.ndarray, np.ndarray]:
    """A flat ``n x n``-cell square sheet in z = 0, two triangles per cell, wound +z."""
    x, y = np.meshgrid(np.linspace(0, size, n + 1), np.linspace(0, size, n + 1), indexing="ij")
    v = np.stack([x.ravel(), y.ravel(), np.zeros(x.size)], 1)
    i, j = np.meshgrid(np.arange(n), np.arange(n), indexing="ij")
    a = (i * (n + 1) + j).ravel()
    b, c, d = a + (n + 1), a + 1, a + n + 2
    return v, np.concatenate([np.stack([a, b, d], 1), np.stack([a, d, c], 1)])


def cell_centres(v: np.ndarray, f: np.ndarray) -> np.ndarray:
    """``(F, 3)`` the centre of the grid cell of each face of :func:`grid_sheet`."""
    half = len(f) // 2
    opposite = np.concatenate([f[:half, 2], f[half:, 1]])
    return 0.5 * (v[f[:, 0]] + v[opposite])


def without(v: np.ndarray, f: np.ndarray, drop) -> np.ndarray:
    """The faces of :func:`grid_sheet` whose cell is not selected by ``drop(cell centres)``."""
    return f[~drop(cell_centres(v, f))]


def test_boundary_loops_follow_the_boundary_half_edges():
    v, f = grid_sheet(4)
    loops = boundary_loops(f, len(v))
    assert len(loops) == 1 and len(loops[0]) == 16
    loop = loops[0]
    half = {(int(a), int(b)) for a, b in np.concatenate([f[:, [0, 1]], f[:, [1, 2]], f[:, [2, 0]]])}
    assert all((int(loop[i]), int(loop[(i + 1) % 16])) in half for i in range(16))
    # a hole in the middle is a second loop, walked the other way round
    g = without(v, f, lambda c: (np.abs(c[:, 0] - 0.5) < 0.25) & (np.abs(c[:, 1] - 0.5) < 0.25))
    assert sorted(len(x) for x in boundary_loops(g, len(v))) == [8, 16]


def test_ear_clip_closes_a_hole_consistently_and_never_reuses_an_edge():
    v, f = grid_sheet(6)
    g = without(v, f, lambda c: (np.abs(c[:, 0] - 0.5) < 0.34) & (np.abs(c[:, 1] - 0.5) < 0.34))
    inner = min(boundary_loops(g, len(v)), key=len)
    taken = edge_keys(g, len(v))
    patch = ear_clip(v, inner, taken)
    assert patch.shape == (len(inner) - 2, 3)
    closed = np.concatenate([g, patch])
    st = mesh_stats(v, closed)
    assert st.n_boundary_loops == 1 and st.n_inconsistent_edges == 0 and st.n_nonmanifold_edges == 0
    assert abs(st.area - 1.0) < 1e-9  # the flat hole is covered exactly once
    # a loop whose every diagonal is already an edge of the mesh cannot be clipped
    quad = np.array([[0, 1, 2], [0, 2, 3], [1, 3, 2]])  # 1-3 and 0-2 both taken
    assert ear_clip(np.eye(4, 3), np.array([0, 3, 2, 1]), edge_keys(quad, 4)) is None
    # the edges among the loops' vertices alone answer every question ear_clip asks
    v, f = grid_sheet(10)
    g = without(v, f, lambda c: (np.abs(c[:, 0] - 0.5) < 0.15) & (np.abs(c[:, 1] - 0.5) < 0.25))
    loops = boundary_loops(g, len(v))
    taken, among = edge_keys(g, len(v)), edge_keys(g, len(v), among=loops)
    on = np.isin(np.arange(len(v)), np.concatenate(loops))
    assert among == {k for k in taken if on[k // len(v)] and on[k % len(v)]} and len(among) < len(taken) / 2
    for loop in loops:
        assert np.array_equal(ear_clip(v, loop, among), ear_clip(v, loop, taken))
    assert ear_clip(np.eye(4, 3), np.array([0, 3, 2, 1]), edge_keys(quad, 4, among=[np.arange(4)])) is None


def test_holes_the_cloud_covers_close_and_holes_it_has_stay_open(rng):
    v, f = grid_sheet(60)
    c = cell_centres(v, f)
    slit = (np.abs(c[:, 1] - 0.5) < 0.01) & (np.abs(c[:, 0] - 0.5) < 0.2)  # one cell wide
    disc = np.linalg.norm(c[:, :2] - [0.25, 0.25], axis=1) < 0.08
    g = f[~slit & ~disc]
    # samples everywhere on the square but in the disc (about 0.02 apart; the disc is 8 spacings wide)
    p = np.concatenate([rng.random((3000, 2)), np.zeros((3000, 1))], 1)
    p = p[np.linalg.norm(p[:, :2] - [0.25, 0.25], axis=1) > 0.08]
    before = mesh_stats(v, g)
    r = fill_covered_holes(v, g, SampleGaps(p), 1.75)
    after = mesh_stats(v, r.faces)
    assert before.n_boundary_loops == 3 and r.n_loops == 3 and r.n_filled == 1
    assert after.n_boundary_loops == 2 and after.n_inconsistent_edges == 0 and after.n_nonmanifold_edges == 0
    np.testing.assert_allclose(after.area, 1.0 - disc.sum() / len(f), atol=1e-9)  # the slit is covered again
    # the rim of the sheet itself is no hole, though its patch would lie on samples everywhere
    assert (
        fill_covered_holes(
            v, f, SampleGaps(np.concatenate([rng.random((3000, 2)), np.zeros((3000, 1))], 1)), 1.75
        ).n_filled
        == 0
    )


def test_a_covered_hole_whose_diagonals_are_taken_closes_around_a_new_centre_vertex(rng):
    v, f = grid_sheet(20)
    c = cell_centres(v, f)
    cell = np.linalg.norm(c[:, :2] - [0.525, 0.525], axis=1) < 0.01  # one cell: a 4-edge loop
    loop = np.unique(f[cell])
    a, b, c_, d = loop  # the cell's corners, sorted: (0, 0), (0, 1), (1, 0), (1, 1) cells
    # two closed two-sided fins make both diagonals of the loop edges of the mesh (a pinched loop,
    # as non-manifold cleanup leaves): no ear can be cut without repeating an edge
    tips = np.array([[0.5, 0.5, 0.4], [0.55, 0.55, 0.4]])
    vv = np.concatenate([v, tips])
    fins = [[a, d, len(v)], [d, a, len(v)], [b, c_, len(v) + 1], [c_, b, len(v) + 1]]
    g = np.concatenate([f[~cell], fins])
    hole = next(x for x in boundary_loops(g, len(vv)) if set(x.tolist()) == set(loop.tolist()))
    assert ear_clip(vv, hole, edge_keys(g, len(vv))) is None
    p = np.concatenate([rng.random((3000, 2)), np.zeros((3000, 1))], 1)
    r = fill_covered_holes(vv, g, SampleGaps(p), 1.75)
    assert r.n_loops == 2 and r.n_filled == 1 and len(r.vertices) == len(vv) + 1  # the rim stays open
    np.testing.assert_allclose(r.vertices[-1], [0.525, 0.525, 0.0], atol=1e-12)
    sheet = r.faces[(r.faces < len(v)).all(1) | (r.faces == len(vv)).any(1)]
    st = mesh_stats(r.vertices, sheet)
    assert st.n_boundary_loops == 1 and st.n_inconsistent_edges == 0 and st.n_nonmanifold_edges == 0
    np.testing.assert_allclose(st.area, 1.0, atol=1e-9)


def test_trim_holes_drops_a_region_only_where_it_is_deep(rng):
    v, f = grid_sheet(60)
    p = np.concatenate([rng.random((4000, 2)), np.zeros((4000, 1))], 1)
    gaps = SampleGaps(p)
    # no hole in the cloud: nothing goes, whatever a few faces just over the threshold say
    assert len(trim_holes(v, f, gaps, 1.75, 2.5)[1]) == len(f)
    q = p[np.linalg.norm(p[:, :2] - 0.5, axis=1) > 0.1]  # a hole 10 spacings wide
    vt, ft = trim_holes(v, f, SampleGaps(q), 1.75, 2.5)
    assert mesh_stats(vt, ft).n_boundary_loops == 2
    kept = {tuple(x) for x in np.round(vt[ft].mean(1), 9)}
    r = np.linalg.norm(v[f].mean(1)[:, :2] - 0.5, axis=1)
    dropped = np.array([tuple(x) not in kept for x in np.round(v[f].mean(1), 9)])
    assert r[dropped].max() < 0.1 and dropped[r < 0.05].all()  # inside the hole, all of its core


def test_trim_holes_keeps_a_flap_that_overshoots_a_crease(rng):
    """A sheet meshed 0.1 (about six spacings) past a right-angled crease of its cloud (the cloud
    turns down at x = 0.9): its faces there are as far from every sample as a hole's middle, but see
    every sample on one side, so nothing goes while ``overshoot`` allows that depth; the middle of a
    hole sees samples all round."""
    v, f = grid_sheet(60)
    top = np.concatenate([rng.random((4000, 2)) * [0.9, 1.0], np.zeros((4000, 1))], 1)
    wall = np.stack([np.full(4000, 0.9), rng.random(4000), -rng.random(4000)], 1)
    gaps = SampleGaps(np.concatenate([top, wall]))
    far = gaps(v[f].mean(1)) > 2.5
    assert far.sum() > 100  # the flap reaches the core depth
    assert not gaps.surrounded(v[f].mean(1)[far]).any()
    assert len(trim_holes(v, f, gaps, 1.75, 2.5, overshoot=10.0)[1]) == len(f)
    assert len(trim_holes(v, f, gaps, 1.75, 2.5, overshoot=0.0)[1]) < len(f) - 100  # without the test, a hole
    hole = SampleGaps(top[np.linalg.norm(top[:, :2] - 0.5, axis=1) > 0.1])
    middle = np.array([[0.5, 0.5, 0.0], [0.49, 0.505, 0.0]])  # its deepest points
    assert hole.surrounded(middle).all()


def test_trim_holes_takes_the_lip_at_a_cut_and_leaves_every_other_rim(rng):
    """The faces the hole rule leaves around a cut (up to ``empty`` spacings into the hole) go down
    to ``lip`` spacings; a strip past where the samples end that reaches no cut, and a gap of the
    samples too shallow to be a hole, keep every face."""
    v, f = grid_sheet(120)
    p = np.concatenate([rng.random((4000, 2)) * [0.98, 1.0], np.zeros((4000, 1))], 1)  # the mesh runs on to x = 1
    p = p[np.linalg.norm(p[:, :2] - [0.4, 0.5], axis=1) > 0.1]  # a hole, about 5.5 spacings wide
    p = p[np.linalg.norm(p[:, :2] - [0.5, 0.85], axis=1) > 0.02]  # a gap, about 1 spacing wide
    gaps = SampleGaps(p)
    regions = {
        "strip": lambda c: c[:, 0] > 0.98,
        "gap": lambda c: np.linalg.norm(c[:, :2] - [0.5, 0.85], axis=1) < 0.03,
        "near the hole": lambda c: np.linalg.norm(c[:, :2] - [0.4, 0.5], axis=1) < 0.15,
    }
    kept = {}
    for lip in (0.0, 0.75):
        vt, ft = trim_holes(v, f, gaps, 1.75, 2.0, lip=lip)
        c = vt[ft].mean(1)
        kept[lip] = {name: c[at(c)] for name, at in regions.items()}
    for name in ("strip", "gap"):
        assert len(kept[0.75][name]) == len(kept[0.0][name]) == regions[name](v[f].mean(1)).sum()
    radius = {lip: np.linalg.norm(k["near the hole"][:, :2] - [0.4, 0.5], axis=1) for lip, k in kept.items()}
    assert radius[0.0].min() < 0.1 - 1.5 * gaps.typical  # the hole rule alone leaves a lip
    assert radius[0.75].min() > 0.1 - 1.25 * gaps.typical
    inside = {lip: k["near the hole"][radius[lip] < 0.1] for lip, k in kept.items()}
    assert gaps(inside[0.75]).max() <= 0.75 < 1.5 < gaps(inside[0.0]).max()


def test_retract_rims_pulls_an_overshooting_edge_back_to_the_samples_and_opens_no_hole(rng):
    """A sheet meshed 0.2 past where its samples end loses that strip (to within about a spacing of
    the samples' edge); a hole in the samples that the mesh spans, away from the edge, stays covered;
    a sheet sampled to its edge keeps all but a few faces on it."""
    v, f = grid_sheet(60)  # the unit square, cells of 1/60
    p = np.concatenate([rng.random((4000, 2)), np.zeros((4000, 1))], 1)  # spacing about 1/63
    p = p[(p[:, 0] < 0.8) & (np.linalg.norm(p[:, :2] - [0.4, 0.5], axis=1) > 0.1)]  # edge at x = 0.8, a hole
    vr, fr = retract_rims(v, f, SampleGaps(p), 1.5)
    x = vr[fr].mean(1)
    assert x[:, 0].max() < 0.8 + 0.03 and x[:, 0].max() > 0.8 - 0.02  # retracted to the samples' edge
    assert mesh_stats(vr, fr).n_boundary_loops == 1  # the hole stays covered: it touches no boundary
    assert (np.linalg.norm(x[:, :2] - [0.4, 0.5], axis=1) < 0.05).sum() == (
        np.linalg.norm(v[f].mean(1)[:, :2] - [0.4, 0.5], axis=1) < 0.05
    ).sum()
    # samples all the way to the mesh's edge: at most a few faces where a random gap meets it
    full = np.concatenate([rng.random((4000, 2)), np.zeros((4000, 1))], 1)
    vf, ff = retract_rims(v, f, SampleGaps(full), 1.5)
    kept = {tuple(c) for c in np.round(vf[ff].mean(1), 9)}
    gone = np.array([tuple(c) not in kept for c in np.round(v[f].mean(1), 9)])
    edge = np.minimum(v[f].mean(1)[:, :2], 1 - v[f].mean(1)[:, :2]).min(1)
    assert gone.sum() <= 8 and (edge[gone] < 2 / 60).all()


def twisted_handle(n: int = 30, k: int = 3, m: int = 20) -> tuple[np.ndarray, np.ndarray]:
    """A flat ``n x n`` sheet with a ``k``-cell-wide strip arching over it from its left edge to
    its right one with a half twist: non-orientable, and the strip's faces come first."""
    v, f = grid_sheet(n)
    h, ym = 1.0 / n, 0.5
    j0 = int(round(ym * n)) - k // 2
    left = np.array([0 * (n + 1) + j0 + u for u in range(k + 1)])
    right = np.array([n * (n + 1) + j0 + k - u for u in range(k + 1)])  # reversed: the twist
    theta = np.linspace(0, np.pi, m + 1)[1:-1, None]
    centre = np.concatenate([0.5 - 0.5 * np.cos(theta), np.full_like(theta, ym), 0.5 * np.sin(theta)], 1)
    b = np.concatenate([np.cos(theta), 0 * theta, -np.sin(theta)], 1)
    w = np.cos(theta) * [0, 1, 0] + np.sin(theta) * b
    u = (np.arange(k + 1) - k / 2) * h
    strip_v = (centre[:, None] + u[None, :, None] * w[:, None]).reshape(-1, 3)
    ids = np.concatenate([left[None], len(v) + np.arange((m - 1) * (k + 1)).reshape(m - 1, k + 1), right[None]])
    a, bb, c, d = ids[:-1, :-1].ravel(), ids[1:, :-1].ravel(), ids[:-1, 1:].ravel(), ids[1:, 1:].ravel()
    strip_f = np.concatenate([np.stack([a, bb, d], 1), np.stack([a, d, c], 1)])
    return np.concatenate([v, strip_v]), np.concatenate([strip_f, f])


def test_orient_faces_puts_the_seam_of_a_twisted_handle_across_the_handle():
    v, f = twisted_handle()
    st = mesh_stats(v, orient_faces(v, f))
    # some seam must remain (no orientation exists); across the 3-cell strip it is 4 edges at most,
    # where two breadth-first fronts starting on the strip meet across the 30-cell sheet it is ~30
    assert 1 <= st.n_inconsistent_edges <= 4, st


def test_cut_short_seams_cuts_a_twist_out_and_leaves_a_long_seam():
    v, f = twisted_handle()
    f = orient_faces(v, f)
    before = mesh_stats(v, f)
    # the seam lies across the 3-cell strip (0.1 wide, 0.5 high on the arch): cut below 0.2, not below 0.05
    kept = cut_short_seams(v, f, 0.05)
    assert kept.n_cut_edges == 0 and kept.n_seam_edges == before.n_inconsistent_edges
    assert np.array_equal(kept.faces, f)
    cut = cut_short_seams(v, f, 0.2)
    st = mesh_stats(cut.vertices, cut.faces)
    assert cut.n_cut_edges == before.n_inconsistent_edges > 0
    assert st.n_inconsistent_edges == 0 and st.n_nonmanifold_edges == 0, st
    assert before.n_faces - 2 * cut.n_cut_edges <= st.n_faces < before.n_faces  # two faces per edge at most

    # every other face keeps its winding
    def normals(vv, ff):
        t = vv[ff]
        keys = map(tuple, np.sort(t.reshape(len(ff), -1).round(9), 1))
        return dict(zip(keys, np.cross(t[:, 1] - t[:, 0], t[:, 2] - t[:, 0])))

    before_n = normals(v, f)
    assert all(np.dot(n, before_n[k]) > 0 for k, n in normals(cut.vertices, cut.faces).items())


def test_cut_short_seams_leaves_a_consistent_mesh_alone():
    v, f = grid_sheet(6)
    out = cut_short_seams(v, f, 10.0)
    assert out.n_seam_edges == out.n_cut_edges == 0 and out.faces is f and out.vertices is v


def _ear_clip_small_loops(v: np.ndarray, f: np.ndarray, most: int = 20):
    """A stand-in for the field's small-hole fill: every simple loop of at most ``most`` edges
    ear-clipped (the interface of :data:`deepcsp.extract.mend.Fill`)."""
    loops = [loop for loop in boundary_loops(f, len(v)) if len(loop) <= most]
    taken = edge_keys(f, len(v))
    patches = [p for p in (ear_clip(v, loop, taken) for loop in loops) if p is not None]
    return v, np.concatenate([f, *patches]) if patches else f, len(patches)


def twisted_hole(n: int = 10) -> tuple[np.ndarray, np.ndarray]:
    """A flat ``n x n`` sheet with a 2 x 2-cell hole whose left and right rims are joined by a
    one-cell band with a half twist (its long sides cross): a small non-orientable defect, as an
    extraction leaves at the rim of a hole on a sharp thin edge."""
    v, f = grid_sheet(n)
    g = without(v, f, lambda c: (np.abs(c[:, 0] - 0.5) < 0.1) & (np.abs(c[:, 1] - 0.5) < 0.1))
    p, q, r, s = (i * (n + 1) + j for i, j in ((4, 5), (4, 6), (6, 5), (6, 6)))
    return v, orient_faces(v, np.concatenate([g, [[p, q, r], [p, r, s]]]))


def test_untwist_holes_cuts_a_half_twist_out_of_a_small_hole_and_fills_it():
    v, f = twisted_hole()
    before = mesh_stats(v, f)
    assert before.n_inconsistent_edges >= 1 and before.n_boundary_loops == 2  # the hole is no simple loop
    assert len(_ear_clip_small_loops(v, f)[1]) == len(f)  # so the plain fill leaves it open
    nv, nf, n_filled = untwist_holes(v, f, _ear_clip_small_loops, max_extent=0.5)
    st = mesh_stats(nv, nf)
    assert n_filled == 1 and st.n_inconsistent_edges == 0 and st.n_nonmanifold_edges == 0
    assert st.n_boundary_loops == 1 and abs(st.area - 1.0) < 1e-9  # the sheet whole, covered once
    # a seam longer than max_extent is not touched
    kept = untwist_holes(v, f, _ear_clip_small_loops, max_extent=0.01)
    assert kept[1] is f and kept[2] == 0


def test_untwist_holes_leaves_a_twist_whose_cut_no_fill_closes():
    # the seam runs across the strip of the twisted handle: cut, the strip opens into the sheet's
    # outer boundary, which no small-hole fill closes (as a Moebius strip's seam across its width)
    v, f = twisted_handle()
    f = orient_faces(v, f)
    assert mesh_stats(v, f).n_inconsistent_edges > 0
    nv, nf, n_filled = untwist_holes(v, f, _ear_clip_small_loops, max_extent=1.0)
    assert nv is v and nf is f and n_filled == 0


def bridged_sheets(n: int = 8, gap: int = 3):
    """Two flat ``n x n``-cell sheets ``gap`` cells apart, each with a 2 x 2-cell hole, the holes'
    rims joined by walls on 6 of their 8 edges: a bridge with a small loop running from one sheet
    across the walls to the other and back. Returns ``(vertices, faces, the sheets without the holes,
    their faces)``."""
    v, f = grid_sheet(n)
    lift = np.array([0.0, 0.0, gap / n])
    whole_v, whole_f = np.concatenate([v, v + lift]), np.concatenate([f, f + len(v)])
    g = without(v, f, lambda c: (np.abs(c[:, 0] - 0.5) < 0.1) & (np.abs(c[:, 1] - 0.5) < 0.1))
    rim = [(3, 3), (4, 3), (5, 3), (5, 4), (5, 5), (4, 5), (3, 5)]  # the side at x = 3/8 stays open
    ids = [i * (n + 1) + j for i, j in rim]
    walls = [[a, b, b + len(v)] for a, b in zip(ids, ids[1:])] + [
        [a, b + len(v), a + len(v)] for a, b in zip(ids, ids[1:])
    ]
    faces = orient_faces(whole_v, np.concatenate([g, g + len(v), walls]))
    return whole_v, faces, whole_v, whole_f


def _unbridge(v, f, truth_v, truth_f, n: int = 8):
    """:func:`unbridge_holes` of the mesh ``v, f`` against the exact field of ``truth_v, truth_f``,
    walls 0.75 cells off, holes filled as the extraction fills them."""
    import functools

    from deepcsp.extract.grid import Queries
    from deepcsp.extract.pseudo import fill_surface_holes
    from deepcsp.fields.query import ExactField

    field = ExactField(truth_v, truth_f)
    h = field.normalization.scale / n
    fq = Queries(field)
    fill = functools.partial(fill_surface_holes, fq, max_edges=24, h=h, bias=0.0, noise=0.0)
    vn, fn, n_filled = unbridge_holes(fq, field.normalization.to_normalized(v), f, fill, 0.75 * h, 0.0, 24, 48)
    return field.normalization.to_input(vn), fn, n_filled


def test_unbridge_holes_cuts_the_walls_between_two_sheets_and_fills_their_holes():
    v, f, truth_v, truth_f = bridged_sheets()
    before = mesh_stats(v, f)
    assert before.n_boundary_loops == 3 and before.n_components == 1  # two rims and the bridge's loop
    nv, nf, n_filled = _unbridge(v, f, truth_v, truth_f)
    st = mesh_stats(nv, nf)
    assert n_filled == 2 and st.n_boundary_loops == 2 and st.n_components == 2, st
    assert st.n_inconsistent_edges == 0 and st.n_nonmanifold_edges == 0
    assert abs(st.area - 2.0) < 1e-6  # both sheets whole, no wall left


def test_unbridge_holes_leaves_walls_beside_true_holes():
    # the field has the holes too: cut, they would stay open, so nothing is cut
    v, f, _, _ = bridged_sheets()
    sheets = f[np.abs(np.ptp(v[f][:, :, 2], axis=1)) < 1e-12]
    nv, nf, n_filled = _unbridge(v, f, v, sheets)
    assert nf is f and n_filled == 0 and np.allclose(nv, v)


def _zip(v: np.ndarray, f: np.ndarray, cells: float = 0.15):
    """``_zip_slits`` of the sheet ``v, f`` against the exact field of that very mesh, with the
    tolerance ``cells`` of the sheet's own cells (1/16 of its side)."""
    from deepcsp.extract.grid import Queries
    from deepcsp.extract.pseudo import _zip_slits
    from deepcsp.fields.query import ExactField

    field = ExactField(v, f)
    h = field.normalization.scale / 16
    return _zip_slits(Queries(field), field.normalization.to_normalized(v), f, cells * h, 0.0)


def test_zip_slits_closes_a_tear_and_leaves_holes_and_edges_open():
    v, f = grid_sheet(16)
    row = lambda c: (np.abs(c[:, 1] - 17 / 32) < 1 / 64) & (np.abs(c[:, 0] - 0.5) < 0.25)  # noqa: E731
    torn = without(v, f, row)
    v_torn = v.copy()
    lip = (np.abs(v[:, 1] - 9 / 16) < 1e-9) & (np.abs(v[:, 0] - 0.5) < 0.25 + 1e-9)
    v_torn[lip, 1] = 0.5 + 0.1 / 16  # the row's far side pulled to 0.1 cells: a slit 8 cells long
    assert mesh_stats(v_torn, torn).n_boundary_loops == 2
    zipped, n = _zip(v_torn, torn)
    st = mesh_stats(v_torn, zipped)
    assert n == 1 and st.n_boundary_loops == 1 and st.n_inconsistent_edges == 0 and st.n_nonmanifold_edges == 0
    assert abs(st.area - 1.0) < 1e-9  # covered once, not twice
    # the same cut left a cell wide is a hole the field sees: open; so is a 3 x 3 hole
    assert _zip(v, torn)[1] == 0
    holed = without(v, f, lambda c: (np.abs(c[:, 0] - 0.5) < 0.1) & (np.abs(c[:, 1] - 0.5) < 0.1))
    assert _zip(v, holed)[1] == 0
    # the sheet's outer edge alone: its patch is the whole sheet again, not a slit
    assert _zip(v, f)[1] == 0
    # a mesh that is not wound consistently is left as it is
    flipped = torn.copy()
    flipped[0] = flipped[0, ::-1]
    assert _zip(v_torn, flipped)[1] == 0
    assert _zip(v_torn, torn, cells=0.0)[1] == 0


def test_faces_over_the_gap_are_found_from_the_nearest_sample_first():
    # SampleGaps.over asks the k nearest samples only where the nearest one is far enough: the same
    # points as asking them everywhere
    rng = np.random.default_rng(5)
    p = np.c_[rng.random((3000, 2)), np.zeros(3000)]
    p = p[np.linalg.norm(p[:, :2] - 0.5, axis=1) > 0.1]  # a hole
    gaps = SampleGaps(p)
    x = np.c_[rng.random((5000, 2)), rng.normal(scale=0.01, size=5000)]
    for empty in (0.5, 1.75, 3.0):
        want = np.flatnonzero(gaps(x) > empty)
        np.testing.assert_array_equal(gaps.over(x, empty), want)
        assert len(want) > 0
