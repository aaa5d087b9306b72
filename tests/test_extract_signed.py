"""Extraction of closed fields with true inside/outside signs (watertight, outward) and of the UDF
baseline through the same extractor."""

from __future__ import annotations

import numpy as np
import pytest

from deepcsp.extract import ExtractConfig, PerturbedField, extract_mesh, mesh_stats
from deepcsp.fields.query import ExactField
from deepcsp.geometry.analytic import Sphere, Torus


def _volume(v: np.ndarray, f: np.ndarray) -> float:
    t = v[f]
    return float(np.einsum("ij,ij->i", t[:, 0], np.cross(t[:, 1], t[:, 2])).sum() / 6.0)


def _assert_watertight_outward(r, v_gt, f_gt, vol_tol=0.1):
    s = r.stats
    assert r.signed, "closed field should take the signed path"
    assert s.n_faces > 0 and s.n_boundary_edges == 0 and s.n_boundary_loops == 0, s
    assert s.n_inconsistent_edges == 0 and s.n_nonmanifold_edges == 0, s
    assert s.n_degenerate_faces == 0 and s.n_duplicate_faces == 0, s
    vol, vol_gt = _volume(r.vertices, r.faces), _volume(v_gt, f_gt)
    assert vol > 0 and abs(vol / vol_gt - 1) < vol_tol, (vol, vol_gt)


def wedge(thickness: float = 0.12) -> tuple[np.ndarray, np.ndarray]:
    """A closed, outward-wound triangular prism that tapers to a knife edge (thickness 0 at x = 0,
    ``thickness`` at x = 1), extruded along y: parts of it are thinner than any grid cell."""
    tri = np.array([[0.0, 0.0], [1.0, -thickness / 2], [1.0, thickness / 2]])
    v = np.array([[x, y, z] for y in (-0.4, 0.4) for x, z in tri])
    f = np.array([[0, 1, 2], [3, 5, 4], [0, 3, 4], [0, 4, 1], [1, 4, 5], [1, 5, 2], [2, 5, 3], [2, 3, 0]])
    return v, f


@pytest.mark.parametrize("shape", ["sphere", "torus"])
def test_closed_analytic_watertight_outward(shape):
    v, f = Sphere().mesh(4) if shape == "sphere" else Torus().mesh(96, 48)
    r = extract_mesh(ExactField(v, f), ExtractConfig(resolution=24))
    _assert_watertight_outward(r, v, f)
    assert r.stats.n_components == 1 and r.n_closure_cells == 0


@pytest.mark.parametrize("res", [16, 32])
def test_thin_wedge_watertight_where_pseudo_signs_leave_holes(res):
    v, f = wedge()
    field = ExactField(v, f)
    assert field.closed
    r = extract_mesh(field, ExtractConfig(resolution=res))
    _assert_watertight_outward(r, v, f, vol_tol=0.2)
    # the pseudo-sign path (what open fields use) leaves the knife edge open
    p = extract_mesh(field, ExtractConfig(resolution=res, use_signs=False))
    assert not p.signed and p.stats.n_boundary_edges > 0


def test_plate_thinner_than_a_cell_between_corner_planes():
    """A closed plate 0.14 cells thick that no grid corner lies in: corner signs alone see nothing
    (``dilate=0``: empty mesh, as marching cubes would); the default contours the half-cell
    dilation and snaps it back, and ``thin_parts`` flips the corners next to it from their CSP
    directions: both give a closed surface of the plate's area."""
    import trimesh

    m = trimesh.creation.box(extents=(1.0, 1.0, 0.006))
    v, f = np.asarray(m.vertices), np.asarray(m.faces)
    field = ExactField(v, f)
    assert extract_mesh(field, ExtractConfig(resolution=30, dilate=0.0)).stats.n_faces == 0
    for cfg in (ExtractConfig(resolution=30), ExtractConfig(resolution=30, dilate=0.0, thin_parts=True)):
        r = extract_mesh(field, cfg)
        s = r.stats
        assert (r.n_thin_flips > 0) == cfg.thin_parts and s.n_components == 1, s
        assert s.n_boundary_edges == 0 and s.n_inconsistent_edges == 0 and s.n_nonmanifold_edges == 0, s
        assert abs(s.area / mesh_stats(v, f).area - 1) < 0.05, s


def test_hollow_shell_inner_surface_faces_the_cavity():
    """Two concentric spheres, the inner one wound inwards: a solid shell. The inner component must
    come out facing the cavity (negative volume), not flipped outward per component."""
    vo, fo = Sphere(radius=0.45).mesh(4)
    vi, fi = Sphere(radius=0.3).mesh(4)
    v = np.concatenate([vo, vi])
    f = np.concatenate([fo, fi[:, ::-1] + len(vo)])
    r = extract_mesh(ExactField(v, f), ExtractConfig(resolution=32))
    _assert_watertight_outward(r, v, f)
    from deepcsp.extract.topology import face_components

    n, lab = face_components(r.faces, len(r.vertices))
    assert n == 2
    vols = sorted(_volume(r.vertices, r.faces[lab == c]) for c in range(n))
    assert vols[0] < 0 < vols[1]


def test_closure_adds_cells_for_overestimated_distances():
    """Distances biased by more than the search margin drop cells the surface passes through; the
    closure step adds them back, so the mesh stays watertight, and the bias is estimated."""
    v, f = Sphere().mesh(4)
    field = PerturbedField(ExactField(v, f), bias=0.02)
    assert field.closed
    r = extract_mesh(field, ExtractConfig(resolution=32))
    assert r.n_closure_cells > 0
    assert r.bias == pytest.approx(0.02, abs=1e-3)
    _assert_watertight_outward(r, v, f)


def test_noisy_closed_field_stays_watertight():
    v, f = Torus().mesh(96, 48)
    r = extract_mesh(PerturbedField(ExactField(v, f), noise_std=0.002, seed=3), ExtractConfig(resolution=32))
    _assert_watertight_outward(r, v, f, vol_tol=0.15)


def test_dense_and_sparse_signed_agree():
    v, f = Sphere().mesh(3)
    field = ExactField(v, f)
    a = extract_mesh(field, ExtractConfig(resolution=40))
    b = extract_mesh(field, ExtractConfig(resolution=40, sparse=False))
    assert a.signed and b.signed and len(a.faces) == len(b.faces)
    assert a.evaluation_fraction < 0.5 * b.evaluation_fraction


def test_dev_dragon_watertight_at_64(meshes_dir):
    """The exact field of a closed dev mesh with parts thinner than a cell (the pseudo-sign path
    left 104 boundary loops at resolution 128)."""
    from deepcsp.io import load_surface

    s = load_surface(meshes_dir / "closed" / "dragon_stanford_20k.obj")
    field = ExactField(s.vertices, s.faces)
    for thin in (False, True):
        r = extract_mesh(field, ExtractConfig(resolution=64, thin_parts=thin))
        st = r.stats
        assert r.signed and st.n_boundary_edges == 0 and st.n_inconsistent_edges == 0 and st.n_nonmanifold_edges == 0, (
            thin,
            st,
        )
        assert _volume(r.vertices, r.faces) > 0
        assert (r.n_thin_flips > 0) == thin


def test_udf_baseline_through_the_extractor(bundled_tee):
    """A UDF field (closest points from its gradient) gives a mesh through the pseudo-sign path."""
    from deepcsp.fields import FieldConfig
    from deepcsp.fit import FitConfig, fit_surface
    from deepcsp.io import load_surface

    surf = load_surface(bundled_tee)
    cfg = FitConfig(max_steps=0, eval_points=0, field=FieldConfig(kind="udf", resolution=48, coarse_resolution=16))
    field = fit_surface(surf, cfg).field
    assert field.kind == "udf" and not field.closed
    r = extract_mesh(field, ExtractConfig(resolution=32))
    assert not r.signed and len(r.faces) > 100
    gt = mesh_stats(surf.vertices, surf.faces)
    assert 0.7 < r.stats.area / gt.area < 1.3, (r.stats.area, gt.area)


def _sphere_and_tetra(tetrahedron, offset, size):
    v, f = Sphere().mesh(3)  # radius 0.3 at the origin
    tv, tf = tetrahedron
    return np.concatenate([v, tv * size + np.asarray(offset)]), np.concatenate([f, tf + len(v)])


def test_specks_beside_the_surface_go_and_far_ones_stay(tetrahedron):
    """A part under a cell 1.5 cells off a sphere comes out as a 12-face speck beside it, which
    ``speck_faces`` drops (kept with 0); the same part far from the sphere stays a piece."""
    from deepcsp.extract.topology import face_components

    near = ExactField(*_sphere_and_tetra(tetrahedron, (0.38, 0.0, 0.0), 0.02))
    kept = extract_mesh(near, ExtractConfig(resolution=24, speck_faces=0))
    labels = face_components(kept.faces, len(kept.vertices))[1]
    assert kept.stats.n_components == 2 and np.bincount(labels).min() <= 48
    dropped = extract_mesh(near, ExtractConfig(resolution=24))
    assert dropped.stats.n_components == 1 and len(dropped.faces) < len(kept.faces)
    assert dropped.stats.n_boundary_edges == 0 and dropped.stats.n_nonmanifold_edges == 0
    far = extract_mesh(ExactField(*_sphere_and_tetra(tetrahedron, (0.9, 0.9, 0.9), 0.03)), ExtractConfig(resolution=24))
    assert far.stats.n_components == 2


def test_drop_specks_by_size_and_reach(tetrahedron):
    from deepcsp.extract.topology import drop_specks

    v, f = Sphere().mesh(3)
    tet, tf = tetrahedron[0] * 0.01, tetrahedron[1]
    near, far = tet + [0.31, 0, 0], tet + [2.0, 0, 0]
    V = np.concatenate([v, near, far])
    F = np.concatenate([f, tf + len(v), tf + len(v) + 4])
    dv, df = drop_specks(V, F, max_faces=48, reach=0.05)
    assert len(df) == len(f) + 4 and len(dv) == len(v) + 4  # the near tetra went, the far one stayed
    assert np.allclose(dv[-4:], far)
    assert drop_specks(V, F, max_faces=0, reach=0.05)[1] is F  # off
    assert len(drop_specks(V, F, max_faces=3, reach=0.05)[1]) == len(F)  # tetras are larger than 3 faces
    alone = drop_specks(tet, tf, max_faces=48, reach=1.0)  # nothing larger beside it
    assert len(alone[1]) == 4


def test_weld_keeps_apart_what_would_pinch_an_edge(tetrahedron):
    """Two closed tetrahedra whose edges meet at the same two points, one with a vertex split in
    two and joined by zero-area faces: the split welds, the shared edge's points stay apart (a
    weld there gives the edge four faces)."""
    from deepcsp.extract.signed import _weld_coincident
    from deepcsp.geometry.cleanup import repeats_index

    v, f = tetrahedron
    split = np.concatenate([v, v[3:]])  # vertex 4 sits on vertex 3
    fa = np.array([[0, 2, 1], [0, 1, 4], [0, 3, 2], [1, 2, 3], [0, 4, 3], [1, 3, 4]])
    mirrored = np.array([[1.0, 0.0, 0.0], [0.0, 1.0, 0.0], [1.0, 1.0, 0.0], [1.0, 1.0, 1.0]])  # edge 0-1 on a's 1-2
    fb = f[:, ::-1] if _volume(mirrored, f) < 0 else f
    vs, faces = np.concatenate([split, mirrored]), np.concatenate([fa, fb + len(split)])
    before = mesh_stats(vs, faces)
    assert before.n_boundary_edges == 0 and before.n_nonmanifold_edges == 0
    welded, wf, quad_of = _weld_coincident(vs, faces, np.arange(len(faces)), h=0.1)
    assert len(welded) == 8 and len(wf) == 8 and len(quad_of) == 8  # the split welded, its two faces gone
    after = mesh_stats(welded, wf)
    assert after.n_boundary_edges == 0 and after.n_nonmanifold_edges == 0 and after.n_components == 2
    points, inverse = np.unique(vs, axis=0, return_inverse=True)
    everything = inverse.reshape(-1)[faces]
    everything = everything[~repeats_index(everything)]
    assert mesh_stats(points, everything).n_nonmanifold_edges == 1  # what welding every coincident pair gives


def _volume(v, f):
    a, b, c = v[f[:, 0]], v[f[:, 1]], v[f[:, 2]]
    return float(np.einsum("ij,ij->i", a, np.cross(b, c)).sum() / 6)
