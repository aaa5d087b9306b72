"""Extraction from fields with noisy distances: crossings judged and vertices placed by averaged
tangent planes (``ExtractConfig.noisy_above``), on both extraction paths."""

from __future__ import annotations

import numpy as np
import pytest

from deepcsp.errors import DeepCSPError
from deepcsp.extract import ExtractConfig, PerturbedField, extract_mesh, mesh_stats
from deepcsp.fields.query import ExactField
from deepcsp.geometry.analytic import Sphere, open_hemisphere

RES = 32
NOISE = 0.004  # 0.13 cells at resolution 32, as 0.001 is at 128 (the benchmark's robust rows)
OLD = dict(noisy_above=1.0, sheet_max_noise=0.05)  # one query per crossing and vertex, no sheet rule


def _parallel_sheets(gap: float, n: int = 30) -> tuple[np.ndarray, np.ndarray]:
    from test_extract import _parallel_sheets as make

    return make(gap, n)


def _vertex_error_cells(result, field: ExactField) -> float:
    """Mean distance of the result's vertices to the true surface, in cells."""
    vn = field.normalization.to_normalized(result.vertices)
    return float(np.linalg.norm(vn - field.oracle.query(vn).points, axis=1).mean() * RES)


@pytest.mark.parametrize("shape", ["hemisphere", "sphere"])
def test_noisy_distances_are_averaged_out(shape):
    """With noise of 0.13 cells on every distance, vertices land ~0.025 cells from the surface
    (one query per vertex: ~0.075), topology as without noise; the noise is detected."""
    v, f = open_hemisphere() if shape == "hemisphere" else Sphere().mesh(4)
    exact = ExactField(v, f)
    noisy = PerturbedField(exact, noise_std=NOISE, seed=2)
    r = extract_mesh(noisy, ExtractConfig(resolution=RES))
    s, gt = r.stats, mesh_stats(v, f)
    assert r.noise * RES > 0.05  # the estimate that switches the averaging on
    assert s.n_boundary_loops == gt.n_boundary_loops and s.n_components == 1, s
    assert s.winding_consistent and s.n_nonmanifold_edges == 0 and s.n_degenerate_faces == 0, s
    assert abs(s.area / gt.area - 1.0) < 0.02, s.area / gt.area
    err = _vertex_error_cells(r, exact)
    assert err < 0.04, err
    old = extract_mesh(PerturbedField(exact, noise_std=NOISE, seed=2), ExtractConfig(resolution=RES, **OLD))
    assert _vertex_error_cells(old, exact) > 2.0 * err
    assert r.signed == (shape == "sphere")


@pytest.mark.parametrize("gap", [0.04, 0.05])
def test_noisy_close_sheets_stay_apart(gap):
    """Two open sheets 1.4 / 1.8 cells apart with noise of 0.13 cells: two sheets of the right
    area (one query per crossing webbed them together: area ~1.5)."""
    v, f = _parallel_sheets(gap)
    exact = ExactField(v, f)
    gt = mesh_stats(v, f)
    s = extract_mesh(PerturbedField(exact, noise_std=NOISE, seed=1), ExtractConfig(resolution=RES)).stats
    assert (
        s.n_boundary_loops == 2 and s.n_components == 2 and s.n_inconsistent_edges == 0 and s.n_nonmanifold_edges == 0
    ), s
    assert abs(s.area / gt.area - 1.0) < 0.06, s.area / gt.area
    old = extract_mesh(PerturbedField(exact, noise_std=NOISE, seed=1), ExtractConfig(resolution=RES, **OLD)).stats
    assert old.area / gt.area > 1.2, old.area / gt.area


def test_exact_field_unaffected():
    """An exact field has no noise: the averaging stays off and results are identical."""
    v, f = open_hemisphere()
    a = extract_mesh(ExactField(v, f), ExtractConfig(resolution=RES))
    b = extract_mesh(ExactField(v, f), ExtractConfig(resolution=RES, noisy_above=1.0))
    assert a.noise * RES < 0.05
    np.testing.assert_array_equal(a.faces, b.faces)
    np.testing.assert_array_equal(a.vertices, b.vertices)


def test_config_rejects_bad_noisy_settings():
    with pytest.raises(DeepCSPError, match="noisy_samples"):
        ExtractConfig(noisy_samples=2).check()
    with pytest.raises(DeepCSPError, match="noisy_above"):
        ExtractConfig(noisy_above=-0.1).check()


def test_noisy_with_crease_rule():
    """The crease rule adds edges after the flips; the flips' tangent planes must still follow their
    own edges (vertices on the surface as without it)."""
    v, f = open_hemisphere()
    exact = ExactField(v, f)
    r = extract_mesh(PerturbedField(exact, noise_std=NOISE, seed=2), ExtractConfig(resolution=RES, side_cos=0.5))
    assert r.stats.n_boundary_loops == 1 and r.stats.n_nonmanifold_edges == 0, r.stats
    assert _vertex_error_cells(r, exact) < 0.04
