"""Patches at sharp edges (deepcsp.geometry.pointset._refit_creases): one face each, ended at the edge."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest
import torch

from deepcsp._validate import OptionError
from deepcsp.geometry import pointset
from deepcsp.geometry.pointset import PointSetConfig, PointSetSurface

HALF = 0.3


def box_cloud(rng, n: int) -> np.ndarray:
    """``n`` uniform samples of the six faces of a cube of half side ``HALF``."""
    face = rng.integers(0, 6, n)
    uv = rng.uniform(-HALF, HALF, (n, 2))
    p = np.empty((n, 3))
    for axis in range(3):
        on = face % 3 == axis
        others = [i for i in range(3) if i != axis]
        p[on, axis] = np.where(face[on] < 3, HALF, -HALF)
        p[on, others[0]], p[on, others[1]] = uv[on, 0], uv[on, 1]
    return p


def box_distance(x: np.ndarray) -> np.ndarray:
    """Unsigned distance of ``x : (M, 3)`` to the cube's surface."""
    q = np.abs(x) - HALF
    return np.where((q > 0).any(1), np.linalg.norm(np.maximum(q, 0.0), axis=1), -q.max(1))


def build(points, creases: float) -> PointSetSurface:
    return PointSetSurface.build(points, PointSetConfig(patch_neighbors=8, patch_degree=1, creases=creases))


@pytest.fixture(scope="module")
def box():
    points = box_cloud(np.random.default_rng(0), 6000)
    return points, build(points, 0.0), build(points, 3.0)


def face_angle(pss: PointSetSurface, at: np.ndarray) -> np.ndarray:
    """Degrees between the patch normals of samples ``at`` and the nearer of the cube's face normals."""
    n = np.abs(pss.patches.frames[at, 2].astype(np.float64))
    return np.degrees(np.arccos(np.clip(n.max(1), -1.0, 1.0)))


def test_a_patch_astride_an_edge_fits_one_face(box):
    points, plain, sharp = box
    s = sharp.summary.spacing
    q = np.abs(sharp.points) - HALF
    astride = np.flatnonzero(np.sort(q, axis=1)[:, 1] > -0.25 * s)  # two coordinates within a quarter spacing of a face
    assert len(astride) > 100
    before, after = np.median(face_angle(plain, astride)), np.median(face_angle(sharp, astride))
    assert before > 10.0, before  # the compromise between both faces
    assert after < 0.75 * before, (before, after)


def test_the_surface_next_to_an_edge_is_closer_to_the_faces(box):
    points, plain, sharp = box
    s = sharp.summary.spacing
    rng = np.random.default_rng(1)
    m = 2000
    across = rng.uniform(0.0, 1.0, m) * s  # from the edge x = y = HALF, on the face x = HALF
    on_face = np.c_[np.full(m, HALF + 0.02 * s), HALF - across, rng.uniform(-0.2, 0.2, m)]
    err = {name: box_distance(pss.query(on_face).points) / s for name, pss in (("plain", plain), ("sharp", sharp))}
    summary = {k: (float(np.mean(e)), float(np.quantile(e, 0.9))) for k, e in err.items()}
    assert np.mean(err["sharp"]) < 0.9 * np.mean(err["plain"]), summary  # 0.042 against 0.050 spacings
    assert np.quantile(err["sharp"], 0.9) < 0.9 * np.quantile(err["plain"], 0.9), summary  # 0.11 against 0.13
    # a face ends where its samples do: feet of queries beyond the edge stay by it, no fins
    beyond = np.c_[HALF + rng.uniform(0.1, 1.5, (m, 2)) * s, rng.uniform(-0.2, 0.2, m)]
    assert np.quantile(box_distance(sharp.query(beyond).points), 0.9) < 0.5 * s


def test_feet_away_from_every_sample_lose_the_blend(box):
    # past a convex edge a face's continuation passes closer to a query than the surface does;
    # its foot has no sample near, so the feet on the faces take the query (foot_samples)
    points, _, sharp = box
    config = PointSetConfig(patch_neighbors=8, patch_degree=1, creases=3.0, foot_samples=0.0)
    without = PointSetSurface.build(points, config)
    s = sharp.summary.spacing
    rng = np.random.default_rng(2)
    m = 4000
    out, around = rng.uniform(0.2, 1.5, m) * s, rng.uniform(0.0, np.pi / 2, m)  # outside the edge x = y = HALF
    q = np.c_[HALF + out * np.cos(around), HALF + out * np.sin(around), rng.uniform(-0.2, 0.2, m)]
    err = {name: box_distance(pss.query(q).points) / s for name, pss in (("without", without), ("with", sharp))}
    summary = {k: (float(np.mean(e)), float(np.mean(e > 0.25))) for k, e in err.items()}
    assert np.mean(err["with"]) < 0.95 * np.mean(err["without"]), summary  # 0.144 against 0.158 spacings
    assert np.mean(err["with"] > 0.25) < 0.9 * np.mean(err["without"] > 0.25), summary  # 19% against 22%


def test_the_feet_sample_test_is_the_kd_trees(box):
    # the float32 test against the patches' own samples decides most feet; the KD tree the rest,
    # and the answer is the tree's for every foot
    points, _, sharp = box
    s = sharp.summary.spacing
    rng = np.random.default_rng(3)
    q = np.concatenate([box_cloud(rng, 3000), HALF + rng.uniform(0.5, 4.0, (1000, 3)) * s])
    idx = sharp.tree.query(q, k=8)[1]
    rel = sharp._project_feet(q, idx)
    got = sharp._feet_near_samples(q, rel, torch.from_numpy(idx)).numpy()
    gap = sharp.tree.query((q[:, None] + rel.double().numpy()).reshape(-1, 3))[0].reshape(idx.shape)
    want = gap.astype(np.float32) <= np.float32(sharp.config.foot_samples) * sharp.spacing[idx].astype(np.float32)
    np.testing.assert_array_equal(got, want)
    assert 0.05 < want.mean() < 0.95  # feet both ways


def test_a_round_takes_the_feet_of_the_round_before(box):
    # a row with the same patches as the round before, in any order, has its feet already: the
    # same values as projecting them again
    points, _, sharp = box
    rng = np.random.default_rng(4)
    q = box_cloud(rng, 2000) + rng.normal(scale=0.5 * sharp.summary.spacing, size=(2000, 3))
    before = sharp._feet(q, sharp.tree.query(q, k=8)[1], None)
    idx = rng.permuted(before.idx, axis=1)  # the same patches, shuffled
    other = rng.random(len(q)) < 0.3
    idx[other] = sharp.tree.query(q[other] + 2.0 * sharp.summary.spacing, k=8)[1]
    again, fresh = sharp._feet(q, idx, before), sharp._feet(q, idx, None)
    assert torch.equal(again.rel, fresh.rel)
    assert torch.equal(again.sampled, fresh.sampled)


def test_a_smooth_cloud_has_no_crease_patches(rng):
    p = rng.normal(size=(4000, 3))
    p = 0.3 * p / np.linalg.norm(p, axis=1, keepdims=True)
    plain = PointSetSurface.build(p, PointSetConfig(creases=0.0))
    sharp = PointSetSurface.build(p, PointSetConfig(creases=3.0))
    q = rng.uniform(-0.4, 0.4, (2000, 3))
    np.testing.assert_array_equal(sharp.query(q).points, plain.query(q).points)


def test_a_curved_patch_is_no_crease(rng, monkeypatch):
    # planes over 24 neighbours of a small sphere leave residuals well over the (tiny) noise floor,
    # but a face around a neighbour's plane would hold most of their samples: no edge in reach
    p = rng.normal(size=(4000, 3))
    p = 0.3 * p / np.linalg.norm(p, axis=1, keepdims=True)
    default = pointset.CREASE_FACE
    config = PointSetConfig(patch_neighbors=24, patch_degree=1)
    plain = PointSetSurface.build(p, replace(config, creases=0.0))

    def refitted(share: float) -> int:
        monkeypatch.setattr(pointset, "CREASE_FACE", share)
        sharp = PointSetSurface.build(p, replace(config, creases=3.0))
        return int((sharp.patches.coeffs != plain.patches.coeffs).any(1).sum())

    assert refitted(1.0) > 20  # every refit kept: 75 of 4,000 patches follow a strip of their samples
    assert refitted(default) == 0


def test_a_cloud_above_the_size_limit_keeps_its_patches(box):
    points, plain, _ = box
    large = PointSetSurface.build(
        points, PointSetConfig(patch_neighbors=8, patch_degree=1, creases=3.0, creases_max_points=len(points) - 1)
    )
    assert large.patches.edge is None
    np.testing.assert_array_equal(large.patches.coeffs, plain.patches.coeffs)


def test_creases_must_not_be_negative():
    with pytest.raises(OptionError, match="creases"):
        PointSetConfig(creases=-1.0)
