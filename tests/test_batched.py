"""The one chunked query helper (:mod:`deepcsp.fields.batched`): batches change nothing but memory."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from deepcsp.fields.batched import QUERY_CHUNK, as_points, map_rows, normalized_batches
from deepcsp.geometry.normalize import Normalization


class _Field:
    normalization = Normalization(center=(1.0, -2.0, 0.5), scale=0.25)
    device = torch.device("cpu")


def test_map_rows_equals_one_pass_and_calls_in_chunks(rng):
    x = torch.as_tensor(rng.normal(size=(1000, 3)))
    sizes = []

    def fn(c):
        sizes.append(len(c))
        return c * 2.0 + 1.0

    assert torch.equal(map_rows(fn, x, chunk=300), x * 2.0 + 1.0)
    assert sizes == [300, 300, 300, 100]
    sizes.clear()
    map_rows(fn, x)
    assert sizes == [1000] and QUERY_CHUNK >= 1000


def test_normalized_batches_cover_the_points_in_order(rng):
    pts = rng.normal(size=(250, 3)).astype(np.float32)
    batches = list(normalized_batches(_Field(), pts, chunk=100, dtype=torch.float64))
    assert [len(b) for b in batches] == [100, 100, 50]
    expected = _Field.normalization.to_normalized(pts.astype(np.float64))
    assert np.array_equal(torch.cat(batches).numpy(), expected)
    assert list(normalized_batches(_Field(), np.zeros((0, 3)))) == []


@pytest.mark.parametrize("bad", [np.zeros((4, 2)), np.array([["a", "b", "c"]]), np.array([[0.0, np.nan, 1.0]])])
def test_as_points_refuses_and_quotes(bad):
    with pytest.raises(ValueError, match="points"):
        as_points(bad)


def test_compare_renders_iou_and_depth_by_hand():
    from types import SimpleNamespace

    from deepcsp.render import compare_renders

    a = SimpleNamespace(hit=np.array([[True, True], [False, False]]), depth=np.array([[1.0, 2.0], [np.inf, np.inf]]))
    b = SimpleNamespace(hit=np.array([[True, False], [True, False]]), depth=np.array([[1.5, np.inf], [3.0, np.inf]]))
    agreement = compare_renders(a, b)
    assert agreement.iou == 1 / 3 and agreement.median_depth_error == 0.5
    none = SimpleNamespace(hit=np.zeros((2, 2), bool), depth=np.full((2, 2), np.inf))
    assert compare_renders(none, none).iou == 0.0 and np.isnan(compare_renders(none, none).median_depth_error)


def test_curvatures_along_flips_where_normals_oppose():
    from deepcsp.fields.diffgeo import Curvatures, curvatures_along

    e = np.eye(3)
    c = Curvatures(
        k1=np.array([2.0, 2.0]),
        k2=np.array([1.0, 1.0]),
        dir1=e[[0, 0]],
        dir2=e[[1, 1]],
        mean=np.array([1.5, 1.5]),
        gaussian=np.array([2.0, 2.0]),
        normals=e[[2, 2]],
    )
    out = curvatures_along(c, np.array([[0.0, 0.0, 1.0], [0.0, 0.0, -1.0]]))
    assert np.array_equal(out.k1, [2.0, -1.0]) and np.array_equal(out.k2, [1.0, -2.0])
    assert np.array_equal(out.mean, [1.5, -1.5]) and np.array_equal(out.gaussian, [2.0, 2.0])
    assert np.array_equal(out.dir1, e[[0, 1]]) and np.array_equal(out.normals[1], [0.0, 0.0, -1.0])
