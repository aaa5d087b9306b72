"""Inside/outside of closed inputs: watertightness test, exact and fitted signed distances."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

import deepcsp
from deepcsp.fields.modules import FieldConfig
from deepcsp.fields.query import ExactField, load_field
from deepcsp.fit import FitConfig, fit_surface
from deepcsp.geometry.analytic import Sphere, box_mesh, open_hemisphere
from deepcsp.geometry.inside import is_watertight, outside_mask
from deepcsp.io import load_surface
from deepcsp.io.surface import surface_from_arrays

TINY = FieldConfig(resolution=48, coarse_resolution=16)
DATA = Path(deepcsp.__file__).parent / "data"


@pytest.fixture(scope="module")
def sphere():
    v, f = Sphere(radius=0.3).mesh(subdivisions=3)
    return surface_from_arrays(v, f, "sphere")


@pytest.fixture(scope="module")
def sphere_fit(sphere):
    return fit_surface(sphere, FitConfig(eval_points=0, field=TINY))


def test_watertight_detection(sphere):
    assert is_watertight(sphere.vertices, sphere.faces)
    assert not is_watertight(sphere.vertices, sphere.faces[1:])  # one face missing: open
    flipped = sphere.faces.copy()
    flipped[0] = flipped[0, ::-1]
    assert not is_watertight(sphere.vertices, flipped)  # inconsistent winding
    assert not is_watertight(sphere.vertices, None)
    v, f = open_hemisphere(radius=0.35, subdivisions=3)
    assert not is_watertight(v, f)
    # spot.obj splits vertices along texture seams; welding by position makes it closed
    spot = load_surface(DATA / "spot.obj")
    assert is_watertight(spot.vertices, spot.faces)
    tee = load_surface(DATA / "tee_sim.obj")
    assert not is_watertight(tee.vertices, tee.faces)


def test_box_is_closed_and_outward():
    v, f = box_mesh([1.0, 2.0, 3.0])
    assert is_watertight(v, f)
    inside = outside_mask(v, f, np.array([[0.0, 0.0, 0.0], [0.4, 0.9, 1.4], [0.6, 0.0, 0.0], [0.0, 0.0, 1.6]]))
    np.testing.assert_array_equal(inside, [False, False, True, True])


def test_exact_field_signed_distances(sphere):
    field = ExactField(sphere.vertices, sphere.faces, sphere.normalization)
    assert field.closed
    pts = np.array([[0.0, 0.0, 0.0], [0.0, 0.0, 0.2], [0.0, 0.0, 0.4], [0.5, 0.5, 0.5]])
    sd = field.signed_distances(pts)
    assert (sd[:2] < 0).all() and (sd[2:] > 0).all()
    np.testing.assert_allclose(np.abs(sd), field.distances(pts))
    np.testing.assert_allclose(sd[0], -0.3, atol=0.01)
    open_field = ExactField(*open_hemisphere(radius=0.35, subdivisions=3))
    assert not open_field.closed
    with pytest.raises(ValueError, match="no inside/outside"):
        open_field.signed_distances(pts)


def test_fitted_sphere_signs_match_winding_numbers(sphere, sphere_fit, tmp_path):
    field = sphere_fit.field
    assert field.closed
    rng = np.random.default_rng(0)
    pts = rng.uniform(-0.45, 0.45, (4000, 3))
    exact = ExactField(sphere.vertices, sphere.faces, sphere.normalization).signed_distances(pts)
    sd = field.signed_distances(pts)
    cell = 1.0 / (TINY.resolution - 1) / sphere.normalization.scale  # one fine cell, input units
    far = np.abs(exact) > cell  # a cell off the surface the sign must be right
    assert far.sum() > 3000
    assert (np.sign(sd[far]) == np.sign(exact[far])).all()
    assert (np.sign(sd) == np.sign(exact)).mean() > 0.99
    # the bits survive save/load (packed masks in the safetensors file)
    path = field.save(tmp_path / "sphere.safetensors")
    loaded = load_field(path)
    assert loaded.closed
    np.testing.assert_array_equal(np.sign(loaded.signed_distances(pts[far])), np.sign(sd[far]))


def test_open_and_opted_out_fields_are_unsigned(sphere):
    v, f = open_hemisphere(radius=0.35, subdivisions=3)
    hemi = fit_surface(surface_from_arrays(v, f, "hemisphere"), FitConfig(eval_points=0, field=TINY)).field
    assert not hemi.closed
    with pytest.raises(ValueError, match="no inside/outside"):
        hemi.signed_distances(np.zeros((2, 3)))
    off = fit_surface(sphere, FitConfig(eval_points=0, field=TINY, inside_outside="off")).field
    assert not off.closed


def test_sign_inside_a_plate_thinner_than_a_cell():
    """Corners on both sides of a sub-cell plate are all outside; the tangent-plane vote still
    puts points inside the plate inside."""
    plate_v, plate_f = box_mesh([0.8, 0.8, 0.012])  # normalised: ~0.012/0.8 of the cube = 0.7 cells at 48
    block_v, block_f = box_mesh([0.2, 0.2, 0.2], center=(0.0, 0.0, 0.3))
    v = np.concatenate([plate_v, block_v])
    f = np.concatenate([plate_f, block_f + len(plate_v)])
    surf = surface_from_arrays(v, f, "plate")
    field = fit_surface(surf, FitConfig(eval_points=0, field=TINY)).field
    assert field.closed
    rng = np.random.default_rng(1)
    pts = np.c_[rng.uniform(-0.3, 0.3, (2000, 2)), rng.uniform(-0.004, 0.004, 2000)]
    inside = field.signed_distances(pts) < 0
    assert inside.mean() > 0.95, inside.mean()


def test_query_cli_signed(sphere_fit, tmp_path):
    field_path = sphere_fit.field.save(tmp_path / "s.safetensors")
    pts = np.array([[0.0, 0.0, 0.25], [0.33, 0.0, 0.0], [0.0, 0.33, 0.0], [0.0, 0.0, -0.33]])
    np.save(tmp_path / "p.npy", pts)
    out = tmp_path / "q.npz"
    r = subprocess.run(
        [
            sys.executable,
            "-m",
            "deepcsp",
            "query",
            str(field_path),
            str(tmp_path / "p.npy"),
            "-o",
            str(out),
            "--signed",
        ],
        capture_output=True,
        text=True,
    )
    assert r.returncode == 0, r.stderr
    sd = np.load(out)["signed_distances"]
    assert sd[0] < 0 < sd[1:].min()


def test_side_bits_match_winding_numbers_even_for_inward_winding(sphere):
    from deepcsp.fit.band import outside_bits
    from deepcsp.geometry.closest import MeshOracle

    v = sphere.normalized_vertices
    rng = np.random.default_rng(2)
    pts = rng.uniform(-0.45, 0.45, (3000, 3))
    truth = outside_mask(v, sphere.faces, pts)
    for faces in (sphere.faces, sphere.faces[:, ::-1].copy()):  # outward, then inward wound
        res = MeshOracle(v, faces).query(pts)
        np.testing.assert_array_equal(outside_bits(v, faces, pts, res.points, res.face_ids, check=500), truth)


def test_mesh_cli_on_a_saved_closed_field_is_watertight(sphere_fit, tmp_path):
    from deepcsp.extract.topology import mesh_stats

    field_path = sphere_fit.field.save(tmp_path / "s.safetensors")
    out = tmp_path / "m.ply"
    r = subprocess.run(
        [sys.executable, "-m", "deepcsp", "mesh", str(field_path), "-o", str(out), "--resolution", "32"],
        capture_output=True,
        text=True,
    )
    assert r.returncode == 0, r.stderr
    assert "signed" in r.stdout
    mesh = load_surface(out)
    stats = mesh_stats(mesh.vertices, mesh.faces)
    assert stats.n_boundary_loops == 0 and stats.winding_consistent and stats.n_components == 1
    r = subprocess.run(
        [sys.executable, "-m", "deepcsp", "mesh", str(field_path), "-o", str(out), "--resolution", "32", "--no-signs"],
        capture_output=True,
        text=True,
    )
    assert r.returncode == 0 and "pseudo-sign" in r.stdout, r.stderr


def test_truncated_side_masks_are_refused(sphere_fit, tmp_path):
    from deepcsp.errors import DeepCSPError
    from deepcsp.fields.files import read_weights, write_weights
    from deepcsp.fields.query import FORMAT, FORMAT_VERSION

    path = sphere_fit.field.save(tmp_path / "s.safetensors")
    tensors, header = read_weights(path, "deepcsp field", FORMAT, FORMAT_VERSION)
    key = next(k for k in tensors if k.endswith("coarse_outside_mask.zlib") or k.endswith("coarse_outside_mask"))
    assert key.endswith(".zlib")  # compressed like the other masks
    import zlib

    spec = header["compressed"][key[: -len(".zlib")]]
    raw = zlib.decompress(tensors[key].numpy().tobytes())[:-3]  # three bytes short
    tensors[key] = torch.from_numpy(np.frombuffer(zlib.compress(raw), np.uint8).copy())
    spec["shape"] = [len(raw)]
    write_weights(tmp_path / "bad.safetensors", tensors, header)
    with pytest.raises(DeepCSPError, match="coarse_outside_mask: compressed tensor has shape"):
        load_field(tmp_path / "bad.safetensors")
