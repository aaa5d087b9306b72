"""Mesh extraction (issue 6) on exact oracle fields (no training) and one tiny fitted field."""

from __future__ import annotations

import numpy as np
import pytest

from deepcsp.errors import DeepCSPError
from deepcsp.extract import ExtractConfig, PerturbedField, extract_mesh, mesh_stats, orient_faces
from deepcsp.extract.topology import drop_nonmanifold_faces
from deepcsp.fields.query import ExactField
from deepcsp.geometry.analytic import Sphere, Torus, open_hemisphere
from deepcsp.geometry.metrics import compare_surfaces

RES = 32


def _check(result, v, f, loops, area_tol=0.05, chamfer_cells=0.1):
    s = result.stats
    gt = mesh_stats(v, f)
    assert abs(s.area / gt.area - 1) <= area_tol, s  # a double shell would give ~2
    assert s.n_boundary_loops == loops, s
    assert s.winding_consistent, s
    assert s.n_nonmanifold_edges == 0, s
    assert s.n_degenerate_faces == 0 and s.n_duplicate_faces == 0, s
    m = compare_surfaces(result.vertices, result.faces, v, f, n_samples=20_000)
    cell = 1.0 / (RES * result_scale(result, v))
    assert m.chamfer_l1 < chamfer_cells * cell, (m.chamfer_l1, cell)
    return m


def result_scale(result, v):
    from deepcsp.geometry.normalize import Normalization

    return Normalization.from_points(v).scale


@pytest.mark.parametrize("perturb", [None, "bias", "noise"])
def test_open_hemisphere_single_layer_open(perturb):
    v, f = open_hemisphere()
    field = ExactField(v, f)
    if perturb == "bias":
        field = PerturbedField(field, bias=0.002)
    elif perturb == "noise":
        field = PerturbedField(field, noise_std=0.001, seed=1)
    r = extract_mesh(field, ExtractConfig(resolution=RES))
    _check(r, v, f, loops=1, chamfer_cells=0.15 if perturb == "noise" else 0.1)
    assert r.stats.n_components == 1
    if perturb == "bias":
        assert r.bias == pytest.approx(0.002, abs=2e-4)


@pytest.mark.parametrize("shape", ["sphere", "torus"])
def test_closed_surfaces_watertight_outward(shape):
    v, f = Sphere().mesh(4) if shape == "sphere" else Torus().mesh(96, 48)
    r = extract_mesh(ExactField(v, f), ExtractConfig(resolution=RES))
    _check(r, v, f, loops=0)
    assert r.stats.n_boundary_edges == 0
    # outward winding: positive signed volume
    t = r.vertices[r.faces]
    vol = np.einsum("ij,ij->i", t[:, 0], np.cross(t[:, 1], t[:, 2])).sum() / 6
    assert vol > 0


def test_sparse_evaluation_fraction_and_dense_agree():
    v, f = Sphere().mesh(4)
    field = ExactField(v, f)
    # the pseudo-sign path (the signed path of closed fields: test_extract_signed.py)
    sparse = extract_mesh(field, ExtractConfig(resolution=64, use_signs=False))
    dense = extract_mesh(field, ExtractConfig(resolution=64, sparse=False, use_signs=False))
    assert sparse.evaluation_fraction < 0.5 * dense.evaluation_fraction
    assert dense.evaluation_fraction >= 1.0
    # the same cells cross the surface either way
    assert len(sparse.faces) == len(dense.faces)


def test_nested_open_pieces():
    """An open hemisphere with an open tube inside it: two single-layer pieces, three loops."""
    import trimesh

    hv, hf = open_hemisphere(0.35, 4)
    tube = trimesh.creation.cylinder(radius=0.22, height=0.15, sections=96)
    tube = tube.submesh([np.nonzero(np.abs(tube.face_normals[:, 2]) < 0.5)[0]], append=True)
    tv = np.asarray(tube.vertices) + [0, 0, 0.1]
    v = np.concatenate([hv, tv])
    f = np.concatenate([hf, np.asarray(tube.faces) + len(hv)])
    r = extract_mesh(ExactField(v, f), ExtractConfig(resolution=48))
    s = r.stats
    gt = mesh_stats(v, f)
    assert s.n_components == 2 and s.n_boundary_loops == 3, s
    assert abs(s.area / gt.area - 1) < 0.05, (s.area, gt.area)
    assert s.winding_consistent
    # with split_sheets=False and no fin removal: 2 non-manifold edges where the tube's rim cells touch
    assert s.n_nonmanifold_edges == 0


def test_points_on_surface_in_input_coordinates():
    v, f = open_hemisphere()
    v = v * 10 + [5, -3, 2]  # input coordinates differ from normalised ones
    field = ExactField(v, f)
    r = extract_mesh(field, ExtractConfig(resolution=RES, points=2000))
    assert r.points.shape == (2000, 3)
    assert field.distances(r.points).max() < 1e-4 * 10
    assert field.distances(r.vertices).max() < 1e-4 * 10


def test_orient_faces_fixes_flipped_faces(rng):
    v, f = Sphere().mesh(2)
    g = f.copy()
    flip = rng.random(len(g)) < 0.3
    g[flip] = g[flip][:, ::-1]
    assert not mesh_stats(v, g).winding_consistent
    h = orient_faces(v, g)
    assert mesh_stats(v, h).winding_consistent
    assert np.array_equal(np.sort(h, 1), np.sort(f, 1))
    t = v[h]
    assert np.einsum("ij,ij->i", t[:, 0], np.cross(t[:, 1], t[:, 2])).sum() > 0


def test_boundary_loop_lengths_hand_cases():
    from deepcsp.extract.topology import boundary_loop_lengths

    square = np.array([[0, 0, 0], [1, 0, 0], [0, 1, 0], [1, 1, 0]], float)
    two_triangles = np.array([[0, 1, 3], [0, 3, 2]])
    np.testing.assert_allclose(boundary_loop_lengths(square, two_triangles), [4.0])
    # a second square twice the size beside it: two loops, perimeters 4 and 8
    v = np.concatenate([square, 2 * square + [5, 0, 0]])
    lengths = boundary_loop_lengths(v, np.concatenate([two_triangles, two_triangles + 4]))
    np.testing.assert_allclose(np.sort(lengths), [4.0, 8.0])
    # a closed tetrahedron has none
    tet = np.array([[0, 2, 1], [0, 1, 3], [1, 2, 3], [0, 3, 2]])
    assert boundary_loop_lengths(np.eye(4, 3), tet).shape == (0,)


def test_mesh_stats_counts_hand_case():
    v = np.array([[0, 0, 0], [1, 0, 0], [0, 1, 0], [1, 1, 0]], float)
    # two triangles sharing the edge 1-2, both traversing it from 1 to 2: wound inconsistently
    s = mesh_stats(v, np.array([[0, 1, 2], [1, 2, 3]]))
    assert s.n_inconsistent_edges == 1 and not s.winding_consistent
    assert s.n_boundary_edges == 4 and s.n_boundary_loops == 1 and s.n_nonmanifold_edges == 0
    # plus a duplicate of the first (reversed): the shared edge now has three faces (non-manifold,
    # where winding is not judged)
    s = mesh_stats(v, np.array([[0, 1, 2], [1, 2, 3], [2, 1, 0]]))
    assert s.n_duplicate_faces == 1 and s.n_nonmanifold_edges == 1
    assert s.n_boundary_edges == 2 and s.n_boundary_loops == 1


def test_distinct_faces_by_key_and_by_rows_agree(rng):
    """Duplicate faces (as vertex sets) are found by one int64 key per face, or by whole rows when
    the vertex count is too large for the key: both give np.unique's count and first faces."""
    from deepcsp.geometry.cleanup import distinct_faces

    faces = rng.integers(0, 6, (200, 3))
    _, first = np.unique(np.sort(faces, axis=1), axis=0, return_index=True)
    expected = len(first)
    assert len(distinct_faces(faces, 6)) == expected
    assert len(distinct_faces(faces, 3_000_000)) == expected  # 3e6^3 > 2^63: rows
    assert np.array_equal(distinct_faces(faces, 6), np.sort(first))
    assert np.array_equal(distinct_faces(faces, 3_000_000), np.sort(first))


def test_drop_nonmanifold_faces_keeps_the_two_largest():
    # a sheet of two triangles on the edge 0-1 plus a small fin on the same edge
    v = np.array([[0, 0, 0], [1, 0, 0], [0, 1, 0], [0, -1, 0], [0, 0, 0.1]], float)
    f = np.array([[0, 1, 2], [1, 0, 3], [0, 1, 4]])
    assert mesh_stats(v, f).n_nonmanifold_edges == 1
    kept = drop_nonmanifold_faces(v, f)
    assert mesh_stats(v, kept).n_nonmanifold_edges == 0
    assert np.array_equal(kept, f[:2])
    v2, f2 = Sphere().mesh(2)
    assert np.array_equal(drop_nonmanifold_faces(v2, f2), f2)  # manifold meshes pass through


def test_config_rejects_bad_values():
    v, f = Sphere().mesh(2)
    with pytest.raises(DeepCSPError, match="ExtractConfig.resolution"):
        extract_mesh(ExactField(v, f), ExtractConfig(resolution=2))


def test_cli_mesh_end_to_end(tiny_field, tmp_path):
    from deepcsp.cli.main import main

    fpath = tiny_field.save(tmp_path / "tee.safetensors")
    out = tmp_path / "tee.ply"
    assert main(["mesh", str(fpath), "-o", str(out), "--resolution", "48", "--points", "500"]) == 0
    from deepcsp.io import load_surface

    m = load_surface(out)
    assert len(m.faces) > 100
    pts = load_surface(tmp_path / "tee_points.ply", kind="points")
    assert len(pts.vertices) == 500
    s = mesh_stats(m.vertices, m.faces)
    assert s.winding_consistent or s.n_inconsistent_edges < 0.01 * len(m.faces)
    # vertices are in the input's coordinates (the T-shirt is in cm, not the unit cube)
    assert np.ptp(m.vertices, axis=0).max() > 5.0
    assert main(["mesh", str(tmp_path / "missing.safetensors"), "-o", str(out)]) == 2
    assert main(["mesh", str(fpath), "-o", str(out), "--topology-resolution", "2"]) == 2
    # topology on the full grid: no refinement, fewer faces than the automatic (refined) mesh
    out2 = tmp_path / "tee_full.ply"
    assert main(["mesh", str(fpath), "-o", str(out2), "--resolution", "48", "--topology-resolution", "48"]) == 0
    assert len(load_surface(out2).faces) < len(m.faces)  # measured 6642 < 12096


def test_fill_holes_closes_small_spurious_hole_keeps_true_hole():
    """The hole pass closes a small hole punched into an extracted sphere (the field says surface is
    there) but leaves a true hole of the input (its centre lies a radius off the surface) open."""
    from deepcsp.extract.grid import Queries
    from deepcsp.extract.pseudo import fill_surface_holes

    v, f = Sphere().mesh(4)
    field = ExactField(v, f)
    r = extract_mesh(field, ExtractConfig(resolution=RES))
    assert r.stats.n_boundary_loops == 0
    verts = field.normalization.to_normalized(r.vertices)
    # punch: drop the faces around one vertex (a hole about one cell wide)
    ring = np.any(r.faces == r.faces[0, 0], axis=1)
    faces = r.faces[~ring]
    assert mesh_stats(verts, faces).n_boundary_loops == 1
    v2, f2, n = fill_surface_holes(Queries(field), verts, faces, 24, 1.0 / RES, 0.0, 0.0)
    s = mesh_stats(v2, f2)
    assert n == 1 and s.n_boundary_loops == 0 and s.n_nonmanifold_edges == 0, s
    # the same hole in a field whose surface really has it stays open
    holed = ExactField(field.normalization.to_input(verts), faces)
    _, f3, n3 = fill_surface_holes(Queries(holed), verts, faces, 24, 1.0 / RES, 0.0, 0.0)
    assert n3 == 0 and len(f3) == len(faces)


def test_true_small_hole_stays_open_end_to_end():
    """A sphere with a hole about 3 cells across: the extraction keeps exactly one loop."""
    v, f = Sphere().mesh(4)
    c = (v[f].mean(1) / np.linalg.norm(v[f].mean(1), axis=1, keepdims=True))[:, 2]
    keep = c < np.cos(0.12)  # cap of angular radius 0.12 rad removed (~0.06 of a 0.5 radius)
    r = extract_mesh(ExactField(v, f[keep]), ExtractConfig(resolution=RES))
    s = r.stats
    assert s.n_boundary_loops == 1 and s.n_nonmanifold_edges == 0, s


def test_old_behaviour_reachable():
    v, f = open_hemisphere()
    r = extract_mesh(ExactField(v, f), ExtractConfig(resolution=RES, split_sheets=False, fill_holes=0))
    assert r.n_filled_holes == 0 and r.stats.n_boundary_loops == 1


def _parallel_sheets(gap: float, n: int = 30) -> tuple[np.ndarray, np.ndarray]:
    """Two parallel open squares (side 0.7) ``gap`` apart, tilted off the grid axes."""
    ax = np.linspace(-0.35, 0.35, n)
    x, y = np.meshgrid(ax, ax, indexing="ij")
    i, j = np.meshgrid(np.arange(n - 1), np.arange(n - 1), indexing="ij")
    a, b, c, d = (i * n + j).ravel(), ((i + 1) * n + j).ravel(), ((i + 1) * n + j + 1).ravel(), (i * n + j + 1).ravel()
    f = np.concatenate([np.stack([a, b, c], -1), np.stack([a, c, d], -1)])
    t1, t2 = 0.3, 0.2
    rot = np.array([[1, 0, 0], [0, np.cos(t1), -np.sin(t1)], [0, np.sin(t1), np.cos(t1)]]) @ np.array(
        [[np.cos(t2), 0, np.sin(t2)], [0, 1, 0], [-np.sin(t2), 0, np.cos(t2)]]
    )
    v = [np.stack([x.ravel(), y.ravel(), np.full(x.size, z)], -1) @ rot.T for z in (0.0, gap)]
    return np.concatenate(v), np.concatenate([f, f + n * n])


@pytest.mark.parametrize("gap", [0.04, 0.05])
def test_close_parallel_sheets_stay_apart(gap):
    """Two open sheets 1.4 / 1.8 cells apart (resolution 32): the sheet rule keeps them as two
    separate sheets of the right area; the flip test alone webs them together (area +30%)."""
    v, f = _parallel_sheets(gap)
    fld = ExactField(v, f)
    gt = mesh_stats(v, f)
    s = extract_mesh(fld, ExtractConfig(resolution=32)).stats
    assert (
        s.n_boundary_loops == 2 and s.n_components == 2 and s.n_inconsistent_edges == 0 and s.n_nonmanifold_edges == 0
    ), s
    assert abs(s.area / gt.area - 1.0) < 0.05, s.area / gt.area
    old = extract_mesh(fld, ExtractConfig(resolution=32, cross_sheets=False)).stats
    assert old.area / gt.area > 1.2, old.area / gt.area


def test_boundary_cycles_split_at_pinch():
    """Two boundary loops touching at one vertex (a figure 8) are two cycles, each visiting its
    vertices once; a vertex with unequal in/out degree makes its cycle non-simple."""
    from deepcsp.extract.topology import boundary_cycles

    he = np.array([[0, 1], [1, 2], [2, 0], [0, 3], [3, 4], [4, 0]])
    n, lab, simple = boundary_cycles(he, 5)
    assert n == 2 and simple.all()
    assert sorted(np.bincount(lab).tolist()) == [3, 3]
    assert len(set(lab[:3])) == 1 and len(set(lab[3:])) == 1
    n2, lab2, simple2 = boundary_cycles(np.array([[0, 1], [1, 2], [2, 0], [0, 3]]), 4)
    assert not simple2[lab2 == lab2[3]].any()


def test_fill_holes_closes_pinched_holes():
    """Two one-face holes of an extracted sphere that touch at a vertex (one pinched boundary
    loop) are both closed; before, the non-simple loop was left open."""
    from deepcsp.extract.grid import Queries
    from deepcsp.extract.pseudo import fill_surface_holes

    v, f = Sphere().mesh(4)
    field = ExactField(v, f)
    r = extract_mesh(field, ExtractConfig(resolution=RES))
    verts = field.normalization.to_normalized(r.vertices)
    faces = r.faces
    # two faces sharing exactly one vertex
    shared = np.array([len(set(faces[0]) & set(g)) for g in faces])
    j = int(np.nonzero(shared == 1)[0][0])
    holed = np.delete(faces, [0, j], axis=0)
    assert mesh_stats(verts, holed).n_boundary_loops == 1
    v2, f2, n = fill_surface_holes(Queries(field), verts, holed, 24, 1.0 / RES, 0.0, 0.0)
    s = mesh_stats(v2, f2)
    assert n == 2 and s.n_boundary_loops == 0 and s.n_nonmanifold_edges == 0 and s.winding_consistent, s


def test_tee_sim_exact_field_boundary_loops(bundled_tee):
    """The exact field of the bundled T-shirt at resolution 128 gives its 4 boundary loops (neck,
    hem, two sleeves) in one consistently wound piece; the flip check at 0.02 cells left a fifth
    loop where two sheets pass within a cell."""
    from deepcsp.io import load_surface

    s = load_surface(bundled_tee)
    fld = ExactField(s.vertices, s.faces)
    st = extract_mesh(fld, ExtractConfig(resolution=128)).stats
    assert st.n_boundary_loops == 4 and st.n_components == 1 and st.n_inconsistent_edges == 0, st
    assert extract_mesh(fld, ExtractConfig(resolution=128, verify_flips=0.02)).stats.n_boundary_loops == 5
