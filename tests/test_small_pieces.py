"""Small pieces of a mesh: errors dropped, beads of a thin part kept
(deepcsp.pipelines.thin.drop_small_pieces)."""

from __future__ import annotations

import numpy as np
import trimesh

from deepcsp.geometry.sampling import sample_surface
from deepcsp.pipelines.thin import drop_small_pieces

SPACING = 0.02
MIN_AREA = 20 * SPACING**2


def bead(center, radius=0.015):
    """A small closed piece (area 0.0028, well under ``MIN_AREA``)."""
    b = trimesh.creation.icosphere(2, radius=radius)
    return np.asarray(b.vertices) + np.asarray(center), np.asarray(b.faces, np.int64)


def scene(rng, beads):
    """A sphere of radius 0.3 sampled at ``SPACING``, and small beads at ``beads`` (centres)."""
    ball = trimesh.creation.icosphere(4, radius=0.3)
    vs, fs = [np.asarray(ball.vertices)], [np.asarray(ball.faces, np.int64)]
    samples = sample_surface(vs[0], fs[0], 3000, rng).points
    n = len(vs[0])
    for c in beads:
        v, f = bead(c)
        vs.append(v)
        fs.append(f + n)
        n += len(v)
    return np.concatenate(vs), np.concatenate(fs), samples


def pieces_near(vertices, faces, point, reach=0.05):
    return int(np.linalg.norm(vertices[faces].mean(axis=1) - point, axis=1).min() < reach)


def test_a_bead_that_alone_covers_its_samples_stays(rng):
    # a thin bar broken into beads: its samples lie far from the sphere, nearest to the beads
    bar = [np.array([0.0, 0.0, z]) for z in (0.45, 0.5, 0.55)]
    v, f, samples = scene(rng, bar)
    bar_samples = np.concatenate([b + rng.normal(scale=0.008, size=(4, 3)) for b in bar])
    samples = np.concatenate([samples, bar_samples])
    out = drop_small_pieces(v, f, samples, np.full(len(samples), SPACING), MIN_AREA, far=1.5)
    assert out.n_kept == 3 and out.n_dropped == 0
    assert all(pieces_near(out.vertices, out.faces, b) for b in bar)


def test_pieces_without_samples_or_next_to_the_surface_go(rng):
    # one bead in empty space, one just outside the sphere (its samples are the sphere's): both errors
    lone, touching = np.array([0.6, 0.0, 0.0]), np.array([0.0, 0.33, 0.0])  # the latter 0.015 off the sphere
    v, f, samples = scene(rng, [lone, touching])
    out = drop_small_pieces(v, f, samples, np.full(len(samples), SPACING), MIN_AREA, far=1.5)
    assert out.n_kept == 0 and out.n_dropped == 2
    assert len(out.faces) == 20 * 4**4 and len(out.vertices) == len(trimesh.creation.icosphere(4).vertices)
    assert np.abs(np.linalg.norm(out.vertices, axis=1) - 0.3).max() < 1e-9  # the sphere, whole


def test_fewer_samples_than_asked_do_not_keep_a_bead(rng):
    far_bead = np.array([0.0, 0.0, 0.5])
    v, f, samples = scene(rng, [far_bead])
    samples = np.concatenate([samples, far_bead + rng.normal(scale=0.005, size=(2, 3))])
    spacing = np.full(len(samples), SPACING)
    assert drop_small_pieces(v, f, samples, spacing, MIN_AREA, far=1.5, min_samples=3).n_kept == 0
    assert drop_small_pieces(v, f, samples, spacing, MIN_AREA, far=1.5, min_samples=2).n_kept == 1


def test_a_mesh_without_small_pieces_is_returned_as_it_is(rng):
    v, f, samples = scene(rng, [])
    out = drop_small_pieces(v, f, samples, np.full(len(samples), SPACING), MIN_AREA, far=1.5)
    assert out.vertices is v and out.faces is f and out.n_dropped == out.n_kept == 0
