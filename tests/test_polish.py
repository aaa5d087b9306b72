"""Polishing a reconstruction onto its samples (``deepcsp.pipelines.polish``)."""

import numpy as np
import pytest

from deepcsp.extract.topology import mesh_stats
from deepcsp.geometry.cleanup import face_areas
from deepcsp.pipelines.polish import (
    median_edge_length,
    midpoint_subdivide,
    polish,
    smooth_turned_faces,
    taubin_smooth,
)

SPACING = 0.025


def _grid(n: int, size: float = 1.0) -> tuple[np.ndarray, np.ndarray]:
    """A flat ``n x n``-vertex triangulated square in z = 0, wound towards +z."""
    u = np.linspace(-size / 2, size / 2, n)
    x, y = np.meshgrid(u, u, indexing="ij")
    v = np.stack([x.ravel(), y.ravel(), np.zeros(n * n)], 1)
    i, j = np.meshgrid(np.arange(n - 1), np.arange(n - 1), indexing="ij")
    a = (i * n + j).ravel()
    f = np.concatenate([np.stack([a, a + n, a + n + 1], 1), np.stack([a, a + n + 1, a + 1], 1)])
    return v, f


def _plane_samples(z: float = 0.0, noise: float = 0.0, seed: int = 0) -> np.ndarray:
    """Jittered samples of the square in the plane ``z``, about ``SPACING`` apart."""
    rng = np.random.default_rng(seed)
    u = np.arange(-0.5, 0.5 + 1e-9, SPACING)
    x, y = np.meshgrid(u, u, indexing="ij")
    p = np.stack([x.ravel(), y.ravel(), np.full(x.size, z)], 1)
    p[:, :2] += rng.uniform(-0.2, 0.2, (len(p), 2)) * SPACING
    p[:, 2] += rng.normal(size=len(p)) * noise
    return p


def _bumped(v: np.ndarray, height: float) -> np.ndarray:
    """``v`` with a Gaussian bump of ``height`` (3 spacings wide) at the centre of the square."""
    out = v.copy()
    out[:, 2] += height * np.exp(-(v[:, 0] ** 2 + v[:, 1] ** 2) / (3 * SPACING) ** 2)
    return out


def test_midpoint_subdivide_keeps_the_surface_and_its_winding():
    v, f = _grid(5)
    v2, f2 = midpoint_subdivide(v, f)
    assert len(f2) == 4 * len(f) and np.array_equal(v2[: len(v)], v)
    assert face_areas(v2, f2).sum() == pytest.approx(face_areas(v, f).sum())
    st = mesh_stats(v2, f2)
    assert st.n_inconsistent_edges == 0 and st.n_boundary_loops == 1 and st.n_nonmanifold_edges == 0
    assert np.cross(v2[f2[:, 1]] - v2[f2[:, 0]], v2[f2[:, 2]] - v2[f2[:, 0]])[:, 2].min() > 0
    assert median_edge_length(v2, f2) == pytest.approx(0.5 * median_edge_length(v, f))


def test_polish_pulls_a_mesh_onto_clean_samples():
    v, f = _grid(81)  # vertices half a spacing apart
    bumped = _bumped(v, 0.3 * SPACING)
    p = _plane_samples()
    out = polish(bumped, f, p, np.full(len(p), SPACING))
    assert out.applied and out.residual < 0.1
    assert np.abs(out.vertices[:, 2]).max() < 0.3 * np.abs(bumped[:, 2]).max()
    far = np.abs(v[:, :2]).max(1) > 0.3  # flat and on the samples already: not moved
    assert np.abs(out.vertices[far] - bumped[far]).max() < 1e-5 * SPACING


def test_polish_leaves_noisy_clouds_and_far_samples_alone():
    v, f = _grid(81)
    bumped = _bumped(v, 0.3 * SPACING)
    noisy = _plane_samples(noise=0.5 * SPACING)
    out = polish(bumped, f, noisy, np.full(len(noisy), SPACING))
    assert not out.applied and out.residual > 0.1 and out.vertices is bumped
    # a second sheet 3 spacings above: its samples are no evidence for this one
    two = np.concatenate([_plane_samples(), _plane_samples(z=3 * SPACING, seed=1)])
    flat = polish(v, f, two, np.full(len(two), SPACING), clean_below=10.0)
    assert flat.applied and np.abs(flat.vertices[:, 2]).max() < 1e-9


def test_polish_keeps_a_mesh_between_two_close_sheets_where_it_is():
    """Samples of two sheets 0.8 spacings apart, closer than ``reach``, around a mesh between them:
    their offsets disagree, so nothing follows either sheet (it would crumple between them)."""
    v, f = _grid(81)
    two = np.concatenate([_plane_samples(z=0.4 * SPACING), _plane_samples(z=-0.4 * SPACING, seed=1)])
    out = polish(v, f, two, np.full(len(two), SPACING), clean_below=10.0)
    assert np.abs(out.vertices[:, 2]).max() < 0.05 * SPACING
    loose = polish(v, f, two, np.full(len(two), SPACING), clean_below=10.0, spread=1e9)
    assert np.abs(loose.vertices[:, 2]).max() > 0.1 * SPACING  # what the spread test prevents


def test_taubin_smoothing_takes_out_ripple_keeps_the_rim_and_barely_shrinks():
    v, f = _grid(41)
    rng = np.random.default_rng(0)
    rough = v + np.c_[np.zeros((len(v), 2)), rng.normal(size=len(v)) * 0.005]  # ripple a fifth of an edge
    out = taubin_smooth(rough, f, 20)
    rim = np.zeros(len(v), bool)
    rim[np.flatnonzero((np.abs(v[:, 0]) > 0.499) | (np.abs(v[:, 1]) > 0.499))] = True
    np.testing.assert_array_equal(out[rim], rough[rim])  # an open sheet keeps its rim
    inner = ~rim
    assert np.abs(out[inner, 2]).mean() < 0.4 * np.abs(rough[inner, 2]).mean()
    # a closed smooth shape (an icosphere of 642 vertices) keeps its size within 1%
    import trimesh

    sphere = trimesh.creation.icosphere(subdivisions=3)
    r = np.linalg.norm(taubin_smooth(np.asarray(sphere.vertices), np.asarray(sphere.faces), 20), axis=1)
    assert abs(r.mean() - 1.0) < 0.01
    np.testing.assert_array_equal(taubin_smooth(rough, f, 0), rough)


def test_a_clean_clouds_mesh_loses_its_edge_scale_wrinkle_and_a_noisy_ones_gets_the_full_smoothing():
    """The reconstruction's last smoothing (``ReconstructionConfig.clean_smooth``): a mesh of a clean
    cloud, polished onto its samples, keeps the wrinkle of its vertices (here random heights of 0.05
    spacings); a few Taubin rounds take most of it out (measured: to 0.48x) and leave the plane where it is. A noisy
    cloud's mesh gets ``SMOOTH_ROUNDS`` instead, not both."""
    from dataclasses import replace

    from deepcsp.pipelines.reconstruct import SMOOTH_ROUNDS, ReconstructionConfig, _polish_and_smooth

    v, f = _grid(41)  # edges of SPACING
    wrinkled = v.copy()
    wrinkled[:, 2] += np.random.default_rng(1).normal(size=len(v)) * 0.05 * SPACING
    clean = _plane_samples()
    spacing = np.full(len(clean), SPACING)
    cfg = ReconstructionConfig()
    kept = _polish_and_smooth(wrinkled, f, clean, spacing, replace(cfg, clean_smooth=0), None)
    smoothed = _polish_and_smooth(wrinkled, f, clean, spacing, cfg, None)
    assert cfg.clean_smooth > 0
    inner = np.abs(v[:, :2]).max(1) < 0.5 - 1e-9  # the rim stays where it is
    assert np.abs(smoothed[inner, 2]).mean() < 0.6 * np.abs(kept[inner, 2]).mean()
    np.testing.assert_array_equal(smoothed[~inner], kept[~inner])
    assert abs(smoothed[:, 2].mean()) < 0.01 * SPACING
    noisy = _plane_samples(noise=0.5 * SPACING)
    out = _polish_and_smooth(wrinkled, f, noisy, np.full(len(noisy), SPACING), cfg, None)
    np.testing.assert_allclose(out, taubin_smooth(wrinkled, f, SMOOTH_ROUNDS))


def _folded(v: np.ndarray, f: np.ndarray, height: float = 1.5) -> tuple[np.ndarray, np.ndarray]:
    """``v`` with its centre vertex raised ``height`` edges (1.5: its six faces turn by more than 45
    degrees) and a wrinkle of 0.05 edges everywhere; and which vertices lie within two rings of the
    centre one."""
    out = v.copy()
    out[:, 2] += np.random.default_rng(2).normal(size=len(v)) * 0.05 * SPACING
    centre = int(np.argmin(np.linalg.norm(v, axis=1)))
    out[centre, 2] += height * SPACING
    near = np.zeros(len(v), bool)
    near[centre] = True
    for _ in range(3):  # the turned faces' vertices, then two rings
        near[f[near[f].any(axis=1)].ravel()] = True
    return out, near


def test_turned_faces_are_smoothed_and_nothing_else_moves():
    """``smooth_turned_faces``: a spike on a plane, whose faces turn by more than 45 degrees from the
    plane's normal, comes down to about half its height; vertices more than two rings from the
    turned faces keep their wrinkle bit for bit; 0 degrees, or a reference the faces agree with, leaves all."""
    v, f = _grid(41)  # edges of SPACING
    folded, near = _folded(v, f)
    up = np.tile([0.0, 0.0, 1.0], (len(f), 1))
    out = smooth_turned_faces(folded, f, up, 45.0)
    assert out.n_turned == 6
    centre = int(np.argmin(np.linalg.norm(v, axis=1)))
    assert out.vertices[centre, 2] < 0.6 * folded[centre, 2]  # measured: 0.54x
    np.testing.assert_array_equal(out.vertices[~near], folded[~near])
    # smoothed on the faces around the movable vertices alone: as over the whole mesh, bit for bit
    np.testing.assert_array_equal(out.vertices, taubin_smooth(folded, f, 2, movable=near))
    assert not np.array_equal(out.vertices[near], folded[near])
    np.testing.assert_array_equal(smooth_turned_faces(folded, f, up, 0.0).vertices, folded)
    sideways = np.tile([1.0, 0.0, 0.0], (len(f), 1))  # every face but a few of the spike's is turned from this
    assert smooth_turned_faces(folded, f, sideways, 45.0).n_turned >= len(f) - 6
    flat = smooth_turned_faces(v, f, up, 45.0)
    assert flat.n_turned == 0 and np.array_equal(flat.vertices, v)


def test_a_clean_clouds_turned_faces_are_smoothed_when_normals_are_given(monkeypatch):
    """The reconstruction smooths around turned faces (``ReconstructionConfig.turned_degrees``) after
    clean smoothing, on clouds that are not noisy, given the surface's normals, dense ones too (more than
    ``CLEAN_SMOOTH_MAX_POINTS`` samples); otherwise the mesh is what clean smoothing alone gives."""
    from dataclasses import replace

    import deepcsp.pipelines.reconstruct as reconstruct

    v, f = _grid(41)
    folded, _ = _folded(v, f, 3.0)  # polishing and clean smoothing leave 1.25 edges of it (measured)
    clean = _plane_samples()
    cfg = reconstruct.ReconstructionConfig()
    assert cfg.turned_degrees > 0

    def up(points):
        return np.tile([0.0, 0.0, 1.0], (len(points), 1))

    def run(config=cfg, normals=up, samples=clean):
        return reconstruct._polish_and_smooth(folded, f, samples, np.full(len(samples), SPACING), config, None, normals)

    plain = run(normals=None)
    np.testing.assert_array_equal(run(replace(cfg, turned_degrees=0.0)), plain)
    turned = run()
    assert not np.array_equal(turned, plain)
    centre = int(np.argmin(np.linalg.norm(v, axis=1)))
    assert turned[centre, 2] < plain[centre, 2] - 0.25 * SPACING  # measured: 0.89 against 1.25 edges
    noisy = _plane_samples(noise=0.5 * SPACING)
    np.testing.assert_array_equal(run(samples=noisy), run(normals=None, samples=noisy))
    monkeypatch.setattr(reconstruct, "CLEAN_SMOOTH_MAX_POINTS", len(clean) - 1)
    dense, dense_plain = run(), run(normals=None)
    assert dense[centre, 2] < dense_plain[centre, 2] - 0.25 * SPACING


def test_a_dense_clean_clouds_mesh_gets_its_own_rounds_of_clean_smoothing(monkeypatch):
    """A clean cloud of more than ``CLEAN_SMOOTH_MAX_POINTS`` samples gets
    ``clean_smooth_dense`` rounds (its mesh follows the samples closer), not ``clean_smooth``."""
    from dataclasses import replace

    import deepcsp.pipelines.reconstruct as reconstruct

    v, f = _grid(41)
    wrinkled = v.copy()
    wrinkled[:, 2] += np.random.default_rng(1).normal(size=len(v)) * 0.05 * SPACING
    clean = _plane_samples()
    spacing = np.full(len(clean), SPACING)
    cfg = reconstruct.ReconstructionConfig()
    assert cfg.clean_smooth != cfg.clean_smooth_dense
    sparse = reconstruct._polish_and_smooth(wrinkled, f, clean, spacing, cfg, None)
    as_dense = reconstruct._polish_and_smooth(
        wrinkled, f, clean, spacing, replace(cfg, clean_smooth=cfg.clean_smooth_dense), None
    )
    monkeypatch.setattr(reconstruct, "CLEAN_SMOOTH_MAX_POINTS", len(clean) - 1)
    dense = reconstruct._polish_and_smooth(wrinkled, f, clean, spacing, cfg, None)
    np.testing.assert_array_equal(dense, as_dense)
    assert not np.array_equal(dense, sparse)
