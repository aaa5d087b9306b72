"""Topology from a coarse grid, geometry from CSP projection (``ExtractConfig.topology_resolution``,
:mod:`deepcsp.extract.refine`)."""

from __future__ import annotations

import numpy as np
import pytest

from deepcsp.errors import DeepCSPError
from deepcsp.extract import ExtractConfig, extract_mesh, mesh_stats
from deepcsp.extract.mesh import topology_plan
from deepcsp.extract.refine import midpoint_subdivide
from deepcsp.fields.query import ExactField
from deepcsp.geometry.analytic import Sphere, open_hemisphere
from deepcsp.geometry.metrics import compare_surfaces


def test_midpoint_subdivide_keeps_topology(tetrahedron):
    v, f = np.array([[0.0, 0, 0], [1, 0, 0], [0, 1, 0]]), np.array([[0, 1, 2]])
    v2, f2 = midpoint_subdivide(v, f)
    assert len(v2) == 6 and len(f2) == 4
    assert mesh_stats(v2, f2).area == pytest.approx(0.5)
    s = mesh_stats(v2, f2)
    assert s.n_boundary_loops == 1 and s.winding_consistent
    tv, tf = tetrahedron
    v1, f1 = midpoint_subdivide(tv, tf)
    # each child keeps its parent's orientation (children come in 4 blocks of the parents' order)
    nrm = lambda v, f: np.cross(v[f[:, 1]] - v[f[:, 0]], v[f[:, 2]] - v[f[:, 0]])  # noqa: E731
    assert (np.einsum("ij,ij->i", nrm(v1, f1), np.tile(nrm(tv, tf), (4, 1))) > 0).all()
    for _ in range(1):
        v1, f1 = midpoint_subdivide(v1, f1)
    s = mesh_stats(v1, f1)
    assert len(f1) == 4 * 16 and s.n_boundary_edges == 0 and s.winding_consistent and s.n_nonmanifold_edges == 0


@pytest.mark.parametrize("shape", ["hemisphere", "sphere"])
def test_refined_mesh_lies_on_the_surface(shape):
    """Topology on a 16-cell grid, refined twice to 64: vertices on the exact surface, boundary
    and closedness kept, 16x the faces of the coarse mesh."""
    v, f = open_hemisphere() if shape == "hemisphere" else Sphere().mesh(4)
    fld = ExactField(v, f)
    coarse = extract_mesh(fld, ExtractConfig(resolution=16))
    r = extract_mesh(fld, ExtractConfig(resolution=64, topology_resolution=16))
    assert (r.topology_resolution, r.refine_passes) == (16, 2)
    assert len(r.faces) == 16 * len(coarse.faces)
    s, gt = r.stats, mesh_stats(v, f)
    assert s.n_boundary_loops == gt.n_boundary_loops and s.n_components == 1 and s.winding_consistent, s
    vn = fld.normalization.to_normalized(r.vertices)
    err = np.linalg.norm(vn - fld.oracle.query(vn).points, axis=1).max()
    assert err < 0.01 / 64, err  # a hundredth of a cell (float32 queries)
    assert abs(s.area / gt.area - 1.0) < 0.01, s.area / gt.area
    c_ref = compare_surfaces(r.vertices, r.faces, v, f, n_samples=20_000).chamfer_l1
    c_coarse = compare_surfaces(coarse.vertices, coarse.faces, v, f, n_samples=20_000).chamfer_l1
    assert c_ref < 0.5 * c_coarse, (c_ref, c_coarse)


def test_topology_plan(tiny_field):
    """Automatic: two thirds of the band grid for open-surface extraction of a band-grid field
    with refined close sheets (a third without: fields written before refinement), the full
    grid otherwise."""
    import copy
    import dataclasses

    assert tiny_field.config.refine_factor > 1
    assert topology_plan(tiny_field, ExtractConfig(resolution=64), signed=False) == (31, 1)
    old = copy.copy(tiny_field)
    old.config = dataclasses.replace(tiny_field.config, refine_factor=0)
    assert topology_plan(old, ExtractConfig(resolution=64), signed=False) == (16, 2)
    assert topology_plan(tiny_field, ExtractConfig(resolution=64), signed=True) == (64, 0)
    assert topology_plan(tiny_field, ExtractConfig(resolution=64, topology_resolution=64), signed=False) == (64, 0)
    assert topology_plan(tiny_field, ExtractConfig(resolution=256, topology_resolution=100), signed=True) == (100, 1)
    v, f = open_hemisphere()
    assert topology_plan(ExactField(v, f), ExtractConfig(resolution=64), signed=False) == (64, 0)
    with pytest.raises(DeepCSPError, match="topology_resolution"):
        ExtractConfig(topology_resolution=2).check()


def test_fitted_garment_topology(bundled_tee):
    """The T-shirt fitted on a 96-cell band grid: its 4 loops (neck, hem, sleeves) and one
    consistently wound piece, with the topology from two thirds of the grid (the automatic choice
    for a field with refined close sheets; one face of that mesh lies over ``WALL_CELLS`` off the
    surface, so the finer grid, here the full one, is tried and kept: as few defects, no wall) and
    on the full grid."""
    from deepcsp.fields import FieldConfig
    from deepcsp.fit import FitConfig, fit_surface
    from deepcsp.io import load_surface

    s = load_surface(bundled_tee)
    fld = fit_surface(s, FitConfig(eval_points=0, field=FieldConfig(resolution=96, coarse_resolution=32))).field
    r = extract_mesh(fld, ExtractConfig(resolution=96))
    assert (r.topology_resolution, r.refine_passes) == (63, 1) or (r.n_walls > 0 and r.unwalled), r
    coarse = extract_mesh(fld, ExtractConfig(resolution=96, topology_resolution=63)).stats
    assert coarse.n_boundary_loops == 4 and coarse.n_components == 1 and coarse.n_inconsistent_edges == 0, coarse
    st = r.stats
    assert st.n_boundary_loops == 4 and st.n_components == 1 and st.n_inconsistent_edges == 0, st
    assert abs(st.area / mesh_stats(s.vertices, s.faces).area - 1.0) < 0.02
    # with its close sheets refined the field is good enough for the full grid too (before
    # refinement: 8 loops, 65 inconsistent edges)
    full = extract_mesh(fld, ExtractConfig(resolution=96, topology_resolution=96)).stats
    assert full.n_boundary_loops == 4 and full.n_components == 1, full
