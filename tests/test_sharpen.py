"""Sharp features (``extract/sharpen.py``, ``ExtractConfig.sharpen``): vertices moved onto the
creases and corners of the field's surface, nothing moved on smooth or flat surfaces or by a noisy
field, no face turned over."""

from __future__ import annotations

import numpy as np
import pytest

from deepcsp._validate import OptionError
from deepcsp.extract import ExtractConfig, extract_mesh, mesh_stats
from deepcsp.extract.grid import Queries
from deepcsp.extract.perturb import PerturbedField
from deepcsp.extract.sharpen import sharpen_features
from deepcsp.fields.query import ExactField
from deepcsp.geometry import analytic
from deepcsp.geometry.analytic import box_mesh
from deepcsp.geometry.cleanup import face_cross
from deepcsp.geometry.metrics import compare_surfaces

RES = 48


def _rotation() -> np.ndarray:
    """A fixed rotation that puts no edge of a box along a grid axis."""
    a, b = 0.5, 0.3
    rz = np.array([[np.cos(a), -np.sin(a), 0], [np.sin(a), np.cos(a), 0], [0, 0, 1]])
    rx = np.array([[1, 0, 0], [0, np.cos(b), -np.sin(b)], [0, np.sin(b), np.cos(b)]])
    return rz @ rx


@pytest.fixture(scope="module")
def tilted_box():
    v, f = box_mesh([1.0, 0.7, 0.5])
    return v @ _rotation().T, f


def _metrics(v, f, gv, gf):
    return compare_surfaces(v, f, gv, gf, n_samples=20_000)


def test_a_boxs_edges_come_out_sharp_not_bevelled(tilted_box):
    gv, gf = tilted_box
    field = ExactField(gv, gf)
    plain = extract_mesh(field, ExtractConfig(resolution=RES, sharpen=0.0))
    sharp = extract_mesh(field, ExtractConfig(resolution=RES))
    assert plain.n_sharpened == 0 and sharp.n_sharpened > 0
    assert np.array_equal(plain.faces, sharp.faces)  # the same mesh, vertices moved
    before, after = _metrics(plain.vertices, plain.faces, gv, gf), _metrics(sharp.vertices, sharp.faces, gv, gf)
    # the bevel a cell wide along 12 edges is what costs the plain mesh; measured 0.028x, 0.068x, 0.41x
    assert after.chamfer_l1 < 0.1 * before.chamfer_l1
    assert 1 - after.normal_consistency < 0.2 * (1 - before.normal_consistency)
    assert after.hausdorff < 0.7 * before.hausdorff
    # no face turned over or flattened
    n0, n1 = face_cross(plain.vertices, plain.faces), face_cross(sharp.vertices, sharp.faces)
    assert ((n0 * n1).sum(1) > 0).all()
    assert sharp.stats.n_degenerate_faces == 0 and sharp.stats.winding_consistent


def test_vertices_on_a_crease_land_on_it(tilted_box):
    """Vertices moved by the sharpening lie on the box (within a small share of a cell), and those
    within half a cell of an edge lie on that edge line much closer than before."""
    gv, gf = tilted_box
    field = ExactField(gv, gf)
    plain = extract_mesh(field, ExtractConfig(resolution=RES, sharpen=0.0))
    sharp = extract_mesh(field, ExtractConfig(resolution=RES))
    cell = field.normalization.distance_to_input(1.0 / RES)
    rot = _rotation()
    local_plain, local_sharp = plain.vertices @ rot, sharp.vertices @ rot  # back to the axis-aligned box
    half = np.array([0.5, 0.35, 0.25])

    def to_edges(p):
        """Distance to the nearest of the box's 12 edge lines (two coordinates at their faces)."""
        off = np.abs(np.abs(p) - half)  # distance of each coordinate to its face plane
        pairs = [(0, 1), (0, 2), (1, 2)]
        return np.min([np.hypot(off[:, i], off[:, j]) for i, j in pairs], axis=0)

    moved = np.linalg.norm(sharp.vertices - plain.vertices, axis=1) > 0
    on_box = np.max(np.abs(local_sharp) - half, axis=1)  # 0 on the surface of the box, < 0 inside
    assert np.abs(on_box[moved]).max() < 0.1 * cell
    near = moved & (to_edges(local_plain) < 0.5 * cell)
    assert near.sum() > 50
    # measured: before, a median 0.23 cells off the edge line; after, 63% within 0.01 cells
    assert np.median(to_edges(local_plain[near])) > 0.1 * cell
    assert np.median(to_edges(local_sharp[near])) < 0.01 * cell


def test_a_smooth_or_flat_surface_keeps_its_vertices():
    for v, f in [analytic.Sphere(radius=0.3).mesh(4), _square()]:
        field = ExactField(v, f)
        plain = extract_mesh(field, ExtractConfig(resolution=RES, sharpen=0.0))
        sharp = extract_mesh(field, ExtractConfig(resolution=RES))
        assert sharp.n_sharpened <= 0.01 * len(sharp.vertices)
        before, after = _metrics(plain.vertices, plain.faces, v, f), _metrics(sharp.vertices, sharp.faces, v, f)
        assert after.chamfer_l1 <= 1.02 * before.chamfer_l1


def _square():
    v = np.array([[-0.5, -0.5, 0.01], [0.5, -0.5, 0.02], [0.5, 0.5, -0.01], [-0.5, 0.5, 0.0]])
    return v, np.array([[0, 1, 2], [0, 2, 3]])


def test_the_open_rim_is_left_to_the_boundary_snap():
    """Next to an open boundary the planes include the rim's: those vertices stay (a strip of faces
    would otherwise collapse onto the rim line)."""
    v, f = _square()
    field = ExactField(v, f)
    res = extract_mesh(field, ExtractConfig(resolution=RES))
    assert res.n_sharpened == 0


def test_a_noisy_field_is_not_sharpened(tilted_box):
    gv, gf = tilted_box
    noisy = PerturbedField(ExactField(gv, gf), noise_std=0.2 / RES, seed=1)
    assert extract_mesh(noisy, ExtractConfig(resolution=RES)).n_sharpened == 0


def test_sharpen_features_on_nothing_and_a_zero_radius_returns_the_vertices(tilted_box):
    gv, gf = tilted_box
    field = ExactField(gv, gf)
    vn = field.vertices_normalized
    out = sharpen_features(Queries(field), vn, np.zeros((0, 3), np.int64), 1.0 / RES)
    assert out.vertices is vn and not out.moved.any()
    out = sharpen_features(Queries(field), vn, gf, 0.0)
    assert not out.moved.any()


@pytest.mark.parametrize("bad", [-1.0, 5.0, float("nan")])
def test_bad_sharpen_radius_is_refused(bad):
    with pytest.raises(OptionError, match="sharpen"):
        ExtractConfig(sharpen=bad)


@pytest.mark.parametrize("cells", [0.5, 1.0])
def test_a_plate_thinner_than_the_stencil_keeps_both_sides(cells):
    """A fitted plate half a cell or a cell thick: its far side's plane shows inside the stencil,
    on the inner side only; the vertices must not be pulled towards the plate's middle."""
    from deepcsp.fields.modules import FieldConfig
    from deepcsp.fit import FitConfig, fit_surface
    from deepcsp.geometry import thin_shapes
    from deepcsp.io.surface import surface_from_arrays

    v, f = thin_shapes.plate(cells * thin_shapes.cell_size(64))
    field = fit_surface(
        surface_from_arrays(v, f, "plate"),
        FitConfig(eval_points=0, field=FieldConfig(resolution=64, coarse_resolution=16)),
    ).field
    plain = extract_mesh(field, ExtractConfig(resolution=96, sharpen=0.0))
    sharp = extract_mesh(field, ExtractConfig(resolution=96))
    before, after = _metrics(plain.vertices, plain.faces, v, f), _metrics(sharp.vertices, sharp.faces, v, f)
    assert sharp.n_sharpened > 0  # the rim's creases
    # measured 0.93x and 0.23x (4.9x and 0.79x when each side also read the other's planes)
    assert after.chamfer_l1 <= 1.0 * before.chamfer_l1
    assert after.normal_consistency >= before.normal_consistency
    assert sharp.stats.area == pytest.approx(mesh_stats(v, f).area, rel=0.01)
