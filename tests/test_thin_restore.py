"""Thin parts a closed extraction loses, put back from the unsigned mesh
(deepcsp.pipelines.thin.restore_thin_parts)."""

from __future__ import annotations

import numpy as np
import trimesh

from deepcsp.geometry.cleanup import face_areas
from deepcsp.geometry.sampling import sample_surface
from deepcsp.geometry.thin_shapes import sheet
from deepcsp.pipelines.thin import restore_thin_parts

SPACING = 0.02


def scene(rng, with_plate_samples: bool = True):
    """A closed sphere (what a signed extraction kept), the same sphere with a plate above it (the
    unsigned mesh) and samples of the sphere and, optionally, of the plate."""
    ball = trimesh.creation.icosphere(4, radius=0.3)
    sv, sf = np.asarray(ball.vertices), np.asarray(ball.faces, np.int64)
    pv, pf = sheet((0.4, 0.4), z=0.5, n=21)  # 20 x 20 cells
    uv, uf = np.concatenate([sv, pv]), np.concatenate([sf, pf + len(sv)])
    parts = [sample_surface(sv, sf, 3000, rng).points]
    if with_plate_samples:
        parts.append(sample_surface(pv, pf, 400, rng).points)
    samples = np.concatenate(parts)
    return (sv, sf), (uv, uf), samples, np.full(len(samples), SPACING), len(pf), face_areas(pv, pf).sum()


def test_the_plate_the_closed_mesh_lost_comes_back_as_its_own_sheet(rng):
    closed, unsigned, samples, spacing, n_plate, area = scene(rng)
    out = restore_thin_parts(closed, unsigned, samples, spacing, far=1.5, min_samples=20, min_area=20 * SPACING**2)
    assert out.n_uncovered >= 380 and 0.98 * n_plate <= out.n_added <= n_plate  # a corner may lack a sample near
    assert np.array_equal(out.vertices[: len(closed[0])], closed[0]) and np.array_equal(
        out.faces[: len(closed[1])], closed[1]
    )
    added = out.faces[len(closed[1]) :]
    assert added.min() >= len(closed[0])  # its own vertices: nothing joins the closed mesh
    assert abs(face_areas(out.vertices, added).sum() / area - 1) < 0.02
    assert np.abs(out.vertices[added.ravel(), 2] - 0.5).max() < 1e-12


def test_nothing_is_added_where_the_samples_are_covered(rng):
    # the plate of the unsigned mesh has no samples (a bridge over a gap): it stays out
    closed, unsigned, samples, spacing, _, _ = scene(rng, with_plate_samples=False)
    out = restore_thin_parts(closed, unsigned, samples, spacing, far=1.5, min_samples=20, min_area=20 * SPACING**2)
    assert out.n_added == 0 and out.vertices is closed[0] and out.faces is closed[1]
    # ... and too few uncovered samples (at most min_samples) add nothing either
    closed, unsigned, samples, spacing, _, _ = scene(rng)
    out = restore_thin_parts(closed, unsigned, samples, spacing, far=1.5, min_samples=1000, min_area=0.0)
    assert out.n_added == 0 and 380 <= out.n_uncovered <= 400


def test_only_faces_near_uncovered_samples_come_back(rng):
    # samples on half the plate: the other half spans no sample and is left out
    closed, unsigned, samples, spacing, n_plate, _ = scene(rng)
    keep = ~((samples[:, 2] > 0.45) & (samples[:, 0] > 0.0))
    out = restore_thin_parts(closed, unsigned, samples[keep], spacing[keep], 1.5, 20, 20 * SPACING**2)
    added = out.vertices[out.faces[len(closed[1]) :]].mean(axis=1)
    assert 0.45 * n_plate < len(added) < 0.65 * n_plate
    assert added[:, 0].max() < 1.5 * SPACING + 0.4 / 20
