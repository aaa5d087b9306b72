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
