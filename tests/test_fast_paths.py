"""Mesh and grid helpers written for speed give the values of their plain NumPy definitions, bit for bit."""

from __future__ import annotations

import numpy as np
import pytest

from deepcsp.extract.grid import CORNER_OFFSETS, OTHER, cell_edges, corner_keys
from deepcsp.geometry.cleanup import face_cross, vertex_normals, weld_map
from deepcsp.pipelines.polish import keep_orientation


def _mesh(rng, n_vertices=300, n_faces=900):
    return rng.normal(size=(n_vertices, 3)), rng.integers(0, n_vertices, (n_faces, 3))


def test_face_cross_and_vertex_normals_match_their_definitions(rng):
    v, f = _mesh(rng)
    t = v[f]
    cross = np.cross(t[:, 1] - t[:, 0], t[:, 2] - t[:, 0])
    assert np.array_equal(face_cross(v, f), cross)
    summed = np.zeros_like(v)
    for k in range(3):
        np.add.at(summed, f[:, k], cross)
    expected = summed / np.maximum(np.linalg.norm(summed, axis=1, keepdims=True), 1e-300)
    assert np.array_equal(vertex_normals(v, f), expected)
    assert vertex_normals(v.astype(np.float32), f).dtype == np.float32
    assert face_cross(v, f[:0]).shape == (0, 3)


@pytest.mark.parametrize("n", [0, 1, 2, 500])
def test_weld_map_matches_numpy_unique_rows(rng, n):
    v = np.round(rng.normal(size=(n, 3)), 2)
    v = np.concatenate([v, v[: n // 2]])  # repeats
    _, first, inverse = np.unique(np.round(v / 1e-3).astype(np.int64), axis=0, return_index=True, return_inverse=True)
    got_first, got_inverse = weld_map(v, 1e-3)
    assert np.array_equal(got_first, first)
    assert np.array_equal(got_inverse, inverse.reshape(-1))


def test_cell_edges_and_corner_keys_match_their_definitions(rng):
    n1 = 9
    cells = rng.integers(0, n1 - 1, (200, 3))
    stride = np.array([n1 * n1, n1, 1])
    expected = ((cells[:, None, :] + CORNER_OFFSETS[None]) * stride).sum(-1)
    assert np.array_equal(corner_keys(cells, stride), expected)
    keys = []
    for axis in range(3):
        a1, a2 = OTHER[axis]
        for d1 in (0, 1):
            for d2 in (0, 1):
                c = cells.copy()
                c[:, a1] += d1
                c[:, a2] += d2
                keys.append(((c[:, 0] * n1 + c[:, 1]) * n1 + c[:, 2]) * 3 + axis)
    assert np.array_equal(cell_edges(cells, n1), np.unique(np.concatenate(keys)))


def test_keep_orientation_matches_checking_every_face_each_round(rng):
    v, f = _mesh(rng, 200, 600)
    after = v + rng.normal(scale=0.5, size=v.shape)  # folds many faces
    expected = after.copy()
    for _ in range(4):
        folded = np.einsum("ij,ij->i", face_cross(v, f), face_cross(expected, f)) < 0
        if not folded.any():
            break
        back = np.unique(f[folded])
        expected[back] = v[back]
    assert not np.array_equal(expected, after)  # the case puts vertices back
    assert np.array_equal(keep_orientation(v, after, f), expected)


def test_signed_distance_of_a_one_level_grid_reuses_its_weights():
    import torch

    from deepcsp.fields.modules import FieldConfig
    from deepcsp.fit import FitConfig, fit_surface
    from deepcsp.geometry.analytic import Sphere
    from deepcsp.io.surface import surface_from_arrays

    v, f = Sphere(radius=0.3).mesh(subdivisions=3)
    config = FitConfig(eval_points=0, field=FieldConfig(resolution=48, coarse_resolution=16, refine_factor=0))
    net = fit_surface(surface_from_arrays(v, f, "sphere"), config).field.module
    assert net.encoder.n_refined == 0 and net.has_sides
    x = torch.rand(4000, 3, generator=torch.Generator().manual_seed(0)) - 0.5
    signed = net.signed_distance(x)
    assert torch.equal(signed.abs(), (x - net(x)).norm(dim=1))  # the closest points of a second weighting
    assert (signed < 0).any() and (signed > 0).any()


def _band_grid_net(rng, res=17, refine=4):
    """A band-grid CSPNet with a random band (a slab of active vertices, holes included), random
    values, a refined level in some complete cells, and close sheets in random corners."""
    import torch

    from deepcsp.fields.encodings import cell_indices, corner_ids
    from deepcsp.fields.modules import FieldConfig, build_module

    net = build_module(FieldConfig(resolution=res, coarse_resolution=5, refine_factor=refine))
    enc = net.encoder
    ijk = cell_indices(torch.arange(res**3), res)
    slab = (ijk[:, 0] - res // 2).abs() <= 3
    ids = torch.nonzero(slab & torch.from_numpy(rng.random(res**3) > 0.05)).squeeze(1)
    h = enc.h
    enc.set_active(ids, torch.from_numpy(rng.normal(scale=2 * h, size=(len(ids), 3)).astype(np.float32)))
    enc.coarse.values.data = torch.from_numpy(rng.normal(scale=0.1, size=enc.coarse.values.shape).astype(np.float32))
    low = ids[(cell_indices(ids, res) < res - 1).all(1)]
    full = low[(enc.table()[corner_ids(cell_indices(low, res), res)] >= 0).all(1)]
    cells = full[torch.from_numpy(rng.random(len(full)) < 0.3)]
    P = (refine + 1) ** 3
    enc.set_refined(cells, torch.from_numpy(rng.normal(scale=2 * h, size=(len(cells), P, 3)).astype(np.float32)))
    return net


def test_band_grid_fast_paths_match_their_definitions(rng):
    """The packed complete-cell bits give the 8-corner table test, and the query that sends points
    outside the band straight to the coarse grid gives the one-pass blend of every point."""
    import torch

    from deepcsp.fields.encodings import cell_coordinates, corner_ids, gather_rows

    net = _band_grid_net(rng)
    enc = net.encoder
    x = torch.from_numpy(rng.uniform(-0.55, 0.55, (20000, 3)).astype(np.float32))
    i0, _ = cell_coordinates(x, enc.res, enc.half)
    ok = (enc.table()[corner_ids(i0, enc.res)] >= 0).all(dim=1)
    assert 0.1 < float(ok.float().mean()) < 0.9
    assert torch.equal(enc.fine_mask(x), ok)
    with torch.no_grad():
        weighted = net.corner_weights(x)
        one_pass = net._nearest_sheet(x, weighted)  # every point through the fine cells
        expected = torch.where(ok[:, None], one_pass, x + enc.coarse(x))
        assert torch.equal(net(x), expected)
        assert torch.equal(net(x[ok]), one_pass[ok])
        assert torch.equal(net(x[~ok]), (x + enc.coarse(x))[~ok])
    idx = torch.from_numpy(rng.integers(0, len(x), (50, 8)))
    assert torch.equal(gather_rows(x, idx), x[idx])
    enc.set_active(enc.active[: len(enc.active) // 2], enc.values.detach()[: len(enc.active) // 2])
    i0, _ = cell_coordinates(x, enc.res, enc.half)
    assert torch.equal(enc.fine_mask(x), (enc.table()[corner_ids(i0, enc.res)] >= 0).all(dim=1))


def _may_lie_within_plain(pss, points, distance):
    """:meth:`PointSetSurface.may_lie_within` as first written: one bounded KD query for every point."""
    s90 = float(np.quantile(pss.spacing, 0.9))
    d, nearest = pss.tree.query(points, k=1, distance_upper_bound=distance + 2.0 * s90 + 3.0 * pss.summary.noise)
    near = np.flatnonzero(np.isfinite(d))
    approx = pss._nearest_patch_distance(points[near], nearest[near])
    keep = np.zeros(len(points), bool)
    keep[near[approx <= distance + 0.25 * s90 + 3.0 * pss.summary.noise]] = True
    return keep


def test_may_lie_within_asks_the_kd_tree_only_in_blocks_near_samples(rng):
    from deepcsp.geometry.pointset import PointSetSurface

    d = rng.normal(size=(3000, 3))
    pss = PointSetSurface.build(0.8 * d / np.linalg.norm(d, axis=1, keepdims=True))
    ijk = np.stack(np.meshgrid(*[np.linspace(-1, 1, 41)] * 3, indexing="ij"), -1).reshape(-1, 3)
    for distance in (0.01, 0.05, 0.2):
        assert np.array_equal(pss.may_lie_within(ijk, distance), _may_lie_within_plain(pss, ijk, distance))
    x = rng.uniform(-1, 1, (20000, 3))
    for reach in (0.002, 0.05, 0.5):  # 0.002: block keys too sparse for a bitmap (the sorting path)
        found = np.isfinite(pss.tree.query(x, k=1, distance_upper_bound=reach)[0])
        blocks = pss._blocks_within(x, reach)
        assert not (found & ~blocks).any()  # never says no where a sample is within reach
        assert blocks.mean() < 1.0 or reach == 0.5
    assert pss._blocks_within(x[:0], 0.05).shape == (0,)
