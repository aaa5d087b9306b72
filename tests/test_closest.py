"""Exact closest points: BVH oracle vs a naive reference, analytic shapes, barycentrics, clouds."""

from __future__ import annotations

import numpy as np
import pytest
from conftest import random_mesh

from deepcsp.constants import EXACT_ATOL
from deepcsp.geometry.analytic import Plane, Sphere, Torus
from deepcsp.geometry.closest import (
    ClosestPoints,
    CloudOracle,
    MeshOracle,
    check_points,
    closest_point_on_triangles_naive,
    make_oracle,
)


def _tessellation_gap(vertices, faces, center=np.zeros(3), radius=1.0):
    """For a mesh inscribed in a sphere: radius minus the smallest distance from the centre
    to a face plane; bounds |d(q, mesh) - d(q, sphere)| for every q."""
    tri = vertices[faces]
    n = np.cross(tri[:, 1] - tri[:, 0], tri[:, 2] - tri[:, 0])
    n /= np.linalg.norm(n, axis=1, keepdims=True)
    plane_d = np.abs(((tri[:, 0] - center) * n).sum(1))
    return radius - plane_d.min()


# --------------------------------------------------------------------------- naive reference


def test_naive_reference_hand_cases():
    v = np.array([[0.0, 0, 0], [1, 0, 0], [0, 1, 0]])
    f = np.array([[0, 1, 2]])
    q = np.array(
        [
            [0.2, 0.3, 2.0],  # above the interior
            [-1.0, -1.0, 0.0],  # vertex region of a
            [2.0, -0.5, 1.0],  # vertex region of b
            [0.5, -2.0, 0.0],  # edge ab
            [1.0, 1.0, 0.0],  # edge bc
            [-3.0, 0.25, -4.0],  # edge ca
        ]
    )
    want = np.array([[0.2, 0.3, 0], [0, 0, 0], [1, 0, 0], [0.5, 0, 0], [0.5, 0.5, 0], [0, 0.25, 0]])
    r = closest_point_on_triangles_naive(q, v, f)
    np.testing.assert_allclose(r.points, want, atol=1e-15)
    np.testing.assert_allclose(r.distances, np.linalg.norm(q - want, axis=1), atol=1e-15)


@pytest.mark.parametrize("seed", [0, 1, 2, 3])
def test_bvh_matches_naive_on_random_meshes(seed):
    rng = np.random.default_rng(seed)
    v, f = random_mesh(rng, n_faces=30 + 10 * seed)
    q = np.concatenate([rng.uniform(-1, 1, (400, 3)), v[f[:, 0]] + rng.normal(scale=0.01, size=(len(f), 3))])
    fast = MeshOracle(v, f).query(q)
    slow = closest_point_on_triangles_naive(q, v, f)
    assert isinstance(fast, ClosestPoints)
    np.testing.assert_allclose(fast.distances, slow.distances, rtol=0, atol=EXACT_ATOL)
    np.testing.assert_allclose(fast.points, slow.points, rtol=0, atol=EXACT_ATOL)
    # face ids may differ only where two faces are equally close (shared edges / vertices):
    # the reported face itself must be at the reported distance
    idx = np.arange(0, len(q), 7)
    per_face = [closest_point_on_triangles_naive(q[i : i + 1], v, f[[fast.face_ids[i]]]).distances[0] for i in idx]
    np.testing.assert_allclose(per_face, fast.distances[idx], rtol=0, atol=EXACT_ATOL)


def test_barycentrics_reconstruct_the_point(rng):
    v, f = random_mesh(rng, n_faces=50)
    q = rng.uniform(-1, 1, (2000, 3))
    r = MeshOracle(v, f).query(q)
    tri = v[f[r.face_ids]]
    rebuilt = (r.barycentrics[:, :, None] * tri).sum(1)
    np.testing.assert_allclose(rebuilt, r.points, atol=EXACT_ATOL)
    np.testing.assert_allclose(r.barycentrics.sum(1), 1.0, atol=1e-12)
    assert r.barycentrics.min() >= -1e-6 and r.barycentrics.max() <= 1 + 1e-6
    np.testing.assert_allclose(r.distances, np.linalg.norm(q - r.points, axis=1), atol=1e-12)


def test_closest_point_is_its_own_closest_point(rng):
    v, f = Sphere(0.3).mesh(3)
    o = MeshOracle(v, f)
    r = o.query(rng.uniform(-0.5, 0.5, (3000, 3)))
    again = o.query(r.points)
    np.testing.assert_allclose(again.points, r.points, atol=EXACT_ATOL)
    assert again.distances.max() < EXACT_ATOL


def test_chunked_query_is_identical(rng):
    v, f = random_mesh(rng, n_faces=40)
    q = rng.uniform(-1, 1, (1000, 3))
    o = MeshOracle(v, f)
    a, b = o.query(q), o.query(q, chunk=97)
    np.testing.assert_array_equal(a.points, b.points)
    np.testing.assert_array_equal(a.face_ids, b.face_ids)


# --------------------------------------------------------------------------- analytic shapes


def test_icosphere_against_sphere_oracle(rng):
    sphere = Sphere(radius=0.3, center=(0.05, -0.02, 0.01))
    v, f = sphere.mesh(subdivisions=4)
    gap = _tessellation_gap(v, f, np.asarray(sphere.center), sphere.radius)
    assert 0 < gap < 1e-3  # subdivision 4: a real but small tessellation error
    q = np.concatenate([rng.uniform(-0.5, 0.5, (4000, 3)), sphere.closest_points(rng.normal(size=(2000, 3)))])
    r = MeshOracle(v, f).query(q)
    exact = sphere.closest_points(q)
    d_exact = np.linalg.norm(q - exact, axis=1)
    assert np.abs(r.distances - d_exact).max() <= gap + 1e-12
    # the mesh closest point lies between the inscribed and circumscribed spheres
    rad = np.linalg.norm(r.points - np.asarray(sphere.center), axis=1)
    assert rad.min() >= sphere.radius - gap - 1e-12 and rad.max() <= sphere.radius + 1e-12
    # and its direction agrees with the exact one away from the centre
    far = np.linalg.norm(q - np.asarray(sphere.center), axis=1) > 0.1
    cosang = (sphere.normals(r.points[far]) * sphere.normals(exact[far])).sum(1)
    assert np.degrees(np.arccos(np.clip(cosang.min(), -1, 1))) < 4.0


def test_two_triangle_plane_against_plane_oracle(rng):
    v = np.array([[-1.0, -1, 0], [1, -1, 0], [1, 1, 0], [-1, 1, 0]])
    f = np.array([[0, 1, 2], [0, 2, 3]])
    plane = Plane(normal=(0, 0, 1))
    q = np.column_stack([rng.uniform(-1, 1, (3000, 2)), rng.uniform(-2, 2, 3000)])
    r = MeshOracle(v, f).query(q)
    np.testing.assert_allclose(r.points, plane.closest_points(q), rtol=0, atol=EXACT_ATOL)
    np.testing.assert_allclose(r.distances, np.abs(q[:, 2]), rtol=0, atol=EXACT_ATOL)
    np.testing.assert_allclose(MeshOracle(v, f).face_normals(), plane.normals(v[:2]), atol=1e-15)
    # outside the square the closest point is on its boundary
    out = MeshOracle(v, f).query(np.array([[3.0, 0.5, 1.0], [-2.0, -2.0, 0.0]]))
    np.testing.assert_allclose(out.points, [[1.0, 0.5, 0.0], [-1.0, -1.0, 0.0]], atol=EXACT_ATOL)


def test_torus_mesh_against_torus_oracle(rng):
    torus = Torus(R=0.3, r=0.1)
    v, f = torus.mesh(n_major=128, n_minor=64)
    # vertices lie on the torus; the faces are chords, so the gap is a sagitta
    np.testing.assert_allclose(np.linalg.norm(v - torus.closest_points(v), axis=1), 0, atol=1e-12)
    edges = np.linalg.norm(v[f] - v[f[:, [1, 2, 0]]], axis=2).max()
    tol = edges**2 / (8 * torus.r) * 1.5  # sagitta of the longest chord on the most curved circle
    q = rng.uniform([-0.45, -0.45, -0.2], [0.45, 0.45, 0.2], (6000, 3))
    q = q[np.linalg.norm(q[:, :2], axis=1) > 0.05]  # keep off the axis (every ring point is closest)
    r = MeshOracle(v, f).query(q)
    d_exact = np.linalg.norm(q - torus.closest_points(q), axis=1)
    err = np.abs(r.distances - d_exact)
    assert err.max() <= tol, (err.max(), tol)
    assert tol < 1e-3


# --------------------------------------------------------------------------- clouds and checks


def test_cloud_oracle_matches_brute_force(rng):
    from scipy.spatial.distance import cdist

    cloud = rng.normal(size=(700, 3))
    q = rng.normal(size=(900, 3)) * 1.5
    r = CloudOracle(cloud).query(q)
    d = cdist(q, cloud)
    np.testing.assert_array_equal(r.face_ids, d.argmin(1))
    np.testing.assert_allclose(r.distances, d.min(1), atol=1e-12)
    np.testing.assert_array_equal(r.points, cloud[d.argmin(1)])
    assert r.barycentrics is None


def test_make_oracle_dispatch(tetrahedron):
    v, f = tetrahedron
    assert isinstance(make_oracle(v, f), MeshOracle)
    assert isinstance(make_oracle(v, None), CloudOracle)


def test_empty_query(tetrahedron):
    r = MeshOracle(*tetrahedron).query(np.zeros((0, 3)))
    assert r.points.shape == (0, 3) and r.distances.shape == (0,) and r.face_ids.shape == (0,)


def test_input_checks(tetrahedron):
    o = MeshOracle(*tetrahedron)
    with pytest.raises(ValueError, match=r"\(N, 3\), got \(5, 2\)"):
        o.query(np.zeros((5, 2)))
    with pytest.raises(ValueError, match="NaN or inf"):
        o.query(np.array([[0.0, np.nan, 0.0]]))
    with pytest.raises(ValueError, match="numeric"):
        check_points(np.array([["a", "b", "c"]]))
    with pytest.raises(ValueError, match="faces"):
        MeshOracle(tetrahedron[0], np.zeros((0, 3), int))
    with pytest.raises(ValueError, match="backend"):
        MeshOracle(*tetrahedron, backend="embree")


def test_open3d_backend_matches_igl(rng):
    pytest.importorskip("open3d")  # optional extra; not installed in the dev environment
    v, f = Sphere(0.3).mesh(3)
    q = rng.uniform(-0.5, 0.5, (2000, 3))
    a, b = MeshOracle(v, f).query(q), MeshOracle(v, f, backend="open3d").query(q)
    np.testing.assert_allclose(a.distances, b.distances, atol=1e-6)  # open3d works in float32


def test_bvh_matches_point_cloud_utils(rng):
    pcu = pytest.importorskip("point_cloud_utils")
    v, f = Torus().mesh(48, 24)
    q = rng.uniform(-0.5, 0.5, (3000, 3))
    r = MeshOracle(v, f).query(q)
    d, fid, bc = pcu.closest_points_on_mesh(q, v, f.astype(np.int32))
    np.testing.assert_allclose(r.distances, d, rtol=0, atol=EXACT_ATOL)
    rebuilt = (bc[:, :, None] * v[f[fid]]).sum(1)
    np.testing.assert_allclose(r.points, rebuilt, rtol=0, atol=EXACT_ATOL)
