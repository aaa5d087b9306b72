"""Rendering: cameras, sphere tracing against analytic surfaces and an exact ray cast, outputs, CLI."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from deepcsp.errors import DeepCSPError
from deepcsp.fields.query import ExactField, Field
from deepcsp.geometry.normalize import Normalization
from deepcsp.render import (
    Camera,
    TraceConfig,
    exact_ray_cast,
    orbit_cameras,
    ray_box_intersection,
    render_field,
    render_mesh_exact,
    trace_rays,
    view_camera,
)


class SphereField(Field):
    """Analytic closest points of a sphere (radius ``r`` about ``c``), normalised = input coords."""

    def __init__(self, r: float = 0.3, c=(0.0, 0.0, 0.0)):
        self.r, self.c = r, torch.tensor(c, dtype=torch.float32)
        self.normalization = Normalization.identity()

    def closest_points_normalized(self, x):
        v = x - self.c
        return self.c + self.r * v / v.norm(dim=1, keepdim=True).clamp(min=1e-12)


class SheetsField(Field):
    """Two open, parallel square sheets ``|x|, |y| <= h`` at ``z = z0`` and ``z = z1`` (no inside)."""

    def __init__(self, h: float = 0.3, zs=(0.0, -0.02)):
        self.h, self.zs = h, zs
        self.normalization = Normalization.identity()

    def closest_points_normalized(self, x):
        best, best_d = None, None
        for z in self.zs:
            cp = torch.stack(
                [x[:, 0].clamp(-self.h, self.h), x[:, 1].clamp(-self.h, self.h), torch.full_like(x[:, 0], z)], 1
            )
            d = (x - cp).norm(dim=1)
            if best is None:
                best, best_d = cp, d
            else:
                take = d < best_d
                best, best_d = torch.where(take[:, None], cp, best), torch.minimum(d, best_d)
        return best


def _sphere_depth(o: np.ndarray, d: np.ndarray, r: float) -> np.ndarray:
    """Analytic first intersection of unit rays with the origin-centred sphere (inf on misses)."""
    b = (o * d).sum(-1)
    disc = b * b - ((o * o).sum(-1) - r * r)
    return np.where(disc >= 0, -b - np.sqrt(np.maximum(disc, 0)), np.inf)


# ---------------------------------------------------------------- cameras


@pytest.mark.parametrize("view", ["front", "side", "top", "iso"])
def test_view_presets_look_at_the_origin_and_frame_the_cube(view):
    cam = view_camera(view, 64, 48)
    rays = cam.rays()
    assert rays.origins.shape == rays.directions.shape == (48, 64, 3)
    np.testing.assert_allclose(np.linalg.norm(rays.directions, axis=-1), 1.0, atol=1e-12)
    right, up, fwd = cam.basis()
    np.testing.assert_allclose(np.cross(right, up), -fwd, atol=1e-12)  # right-handed, looks along -z of its frame
    np.testing.assert_allclose(fwd, -np.asarray(cam.eye) / np.linalg.norm(cam.eye), atol=1e-12)
    h = 0.4
    corners = np.array([[x, y, z] for x in (-h, h) for y in (-h, h) for z in (-h, h)])
    px = cam.project(corners)
    assert np.all(px >= 0) and np.all(px[:, 0] <= 64) and np.all(px[:, 1] <= 48)
    # pixel centres round-trip through project
    np.testing.assert_allclose(cam.project((rays.origins[5, 7] + rays.directions[5, 7])[None]), [[7.5, 5.5]], atol=1e-9)


def test_top_view_keeps_front_at_the_bottom_and_orbit_turns():
    top = view_camera("top", 32, 32)
    assert top.project(np.array([[0.0, 0.0, 0.3]]))[0, 1] > 16  # +z (front) is below the centre
    cams = orbit_cameras(4, "front", 16, 16)
    eyes = np.array([c.eye for c in cams])
    np.testing.assert_allclose(np.linalg.norm(eyes, axis=1), np.linalg.norm(eyes[0]), rtol=1e-12)
    np.testing.assert_allclose(eyes[1] / np.linalg.norm(eyes[1]), [1, 0, 0], atol=1e-12)


@pytest.mark.parametrize(
    "kwargs",
    [
        dict(eye=(0, 0, 1), fov=0.0),
        dict(eye=(0, 0, 1), fov=180.0),
        dict(eye=(0, 0, 0)),
        dict(eye=(0, 1, 0)),  # up parallel to the view
        dict(eye=(0, 0, 1), width=0),
        dict(eye=(0, 0, float("nan"))),
        dict(eye=(0, 0)),
    ],
)
def test_bad_cameras_raise_value_error(kwargs):
    with pytest.raises(ValueError):
        Camera(**kwargs)


def test_ray_box_intersection_slab_values():
    o = torch.tensor([[0.0, 0.0, 2.0], [0.0, 0.0, 2.0], [0.2, 0.1, 0.0], [0.0, 0.9, 2.0]])
    d = torch.tensor([[0.0, 0.0, -1.0], [0.0, 0.0, 1.0], [1.0, 0.0, 0.0], [0.0, 0.0, -1.0]])
    tn, tf = ray_box_intersection(o, d, 0.5)
    np.testing.assert_allclose(tn[:3].numpy(), [1.5, -2.5, -0.7], atol=1e-6)
    np.testing.assert_allclose(tf[:3].numpy(), [2.5, -1.5, 0.3], atol=1e-6)
    assert tf[1] < 0 and tn[3] > tf[3]  # pointing away; passing above the box


# ---------------------------------------------------------------- tracing


def test_sphere_hits_match_the_analytic_intersection():
    field = SphereField(0.3)
    cam = view_camera("iso", 64, 64)
    res = render_field(field, cam)
    o, d = cam.rays().origins, cam.rays().directions
    truth = _sphere_depth(o, d, 0.3)
    exact_hit = np.isfinite(truth)
    # the mask can only differ on silhouette rays passing within hit_eps of the sphere
    b = (o * d).sum(-1)
    miss_dist = np.sqrt(np.maximum((o * o).sum(-1) - b * b, 0)) - 0.3
    differ = res.hit != exact_hit
    assert np.all(np.abs(miss_dist[differ]) < 2e-3), miss_dist[differ]
    both = res.hit & exact_hit
    assert both.sum() > 0.1 * both.size
    err = np.abs(res.depth[both] - truth[both])
    true_pts = o[both] + truth[both][:, None] * d[both]
    incidence = np.abs((true_pts / 0.3 * d[both]).sum(1))
    assert np.median(err) < 1e-5
    assert np.max(err[incidence > 0.2]) < 1e-4  # grazing rays stop up to hit_eps / cos early
    pts = o[res.hit] + res.depth[res.hit][:, None] * d[res.hit]
    assert np.max(np.abs(np.linalg.norm(pts, axis=1) - 0.3)) < TraceConfig().hit_eps
    # normals: outward radial and facing the camera
    n = res.normals[both]
    cosines = (n * pts[exact_hit[res.hit]] / 0.3).sum(1)
    assert np.median(cosines) > 0.9999 and cosines.min() > 0.99
    # tangent-plane jumps: a sphere needs few evaluations per hit ray
    assert res.evaluations[res.hit].mean() < 6


def test_open_sheets_are_hit_from_both_sides_and_never_stepped_through(rng):
    field = SheetsField(0.3, zs=(0.0, -0.01))
    n = 400
    for side in (+1.0, -1.0):
        target = np.c_[rng.uniform(-0.25, 0.25, (n, 2)), np.zeros(n)]
        o = np.c_[rng.uniform(-0.4, 0.4, (n, 2)), np.full(n, 0.45 * side)]
        d = target - o
        d /= np.linalg.norm(d, axis=1, keepdims=True)
        tr = trace_rays(field, torch.as_tensor(o, dtype=torch.float32), torch.as_tensor(d, dtype=torch.float32))
        assert bool(tr.hit.all())
        z = tr.points[:, 2].numpy()
        expect = 0.0 if side > 0 else -0.01  # first sheet along the ray
        assert np.max(np.abs(z - expect)) < TraceConfig().hit_eps


def test_rays_missing_the_box_cost_nothing_and_bad_rays_raise():
    field = SphereField(0.3)
    o = torch.tensor([[0.0, 2.0, 2.0], [0.0, 0.0, 2.0]])
    d = torch.tensor([[0.0, 0.0, -1.0], [0.0, 0.0, -1.0]])
    tr = trace_rays(field, o, d)
    assert tr.evaluations.tolist()[0] == 0 and not bool(tr.hit[0]) and math.isinf(float(tr.depth[0]))
    assert bool(tr.hit[1]) and abs(float(tr.depth[1]) - 1.7) < 1e-4
    with pytest.raises(ValueError, match="shape"):
        trace_rays(field, o[:, :2], d[:, :2])
    with pytest.raises(ValueError, match="NaN"):
        trace_rays(field, torch.tensor([[float("nan"), 0, 0]]), d[:1])
    with pytest.raises(ValueError, match="zero"):
        trace_rays(field, o[:1], torch.zeros(1, 3))
    with pytest.raises(ValueError, match="differ"):
        trace_rays(field, o, d[:1])
    with pytest.raises(DeepCSPError, match="hit_eps"):
        trace_rays(field, o, d, TraceConfig(hit_eps=0.0))
    with pytest.raises(ValueError, match="camera"):
        render_field(field, "front")


def test_exact_field_mask_and_depth_match_the_exact_ray_cast():
    from deepcsp.geometry.analytic import Torus
    from deepcsp.io.surface import surface_from_arrays

    s = surface_from_arrays(*Torus().mesh(), "torus")
    cam = view_camera("iso", 48, 48)
    traced = render_field(ExactField(s.vertices, s.faces, s.normalization), cam)
    exact = render_mesh_exact(s.vertices, s.faces, cam, s.normalization)
    iou = (traced.hit & exact.hit).sum() / (traced.hit | exact.hit).sum()
    assert exact.hit.sum() > 200 and iou > 0.99, iou  # measured 0.994 (2 silhouette pixels of 325)
    both = traced.hit & exact.hit
    assert np.median(np.abs(traced.depth[both] - exact.depth[both])) < 1e-4 * s.bbox_diagonal


def test_exact_ray_cast_of_one_triangle():
    v = np.array([[0.0, 0.0, 0.0], [1.0, 0.0, 0.0], [0.0, 1.0, 0.0]])
    f = np.array([[0, 1, 2]])
    o = np.array([[0.2, 0.2, 1.0], [0.2, 0.2, -2.0], [0.9, 0.9, 1.0]])
    d = np.array([[0.0, 0.0, -1.0], [0.0, 0.0, 2.0], [0.0, 0.0, -1.0]])
    hits = exact_ray_cast(v, f, o, d)
    assert hits.hit.tolist() == [True, True, False]
    np.testing.assert_allclose(hits.depth[:2], [1.0, 2.0], atol=1e-6)
    assert np.isinf(hits.depth[2]) and hits.face_ids.tolist() == [0, 0, -1]
    with pytest.raises(ValueError, match="faces"):
        exact_ray_cast(v, np.array([[0, 1, 5]]), o, d)


def test_fitted_field_mask_matches_the_exact_cast(tiny_field, bundled_tee):
    from deepcsp.io import load_surface

    s = load_surface(bundled_tee)
    cam = view_camera("front", 48, 48)
    res = render_field(tiny_field, cam)
    exact = render_mesh_exact(s.vertices, s.faces, cam, s.normalization)
    iou = (res.hit & exact.hit).sum() / (res.hit | exact.hit).sum()
    assert exact.hit.sum() > 300 and iou > 0.93, iou
    both = res.hit & exact.hit
    assert np.median(np.abs(res.depth[both] - exact.depth[both])) < 2e-3 * s.bbox_diagonal


def test_ray_arrays_are_in_input_coordinates(tiny_field, bundled_tee):
    """origins + depth * directions (input units) land on the input mesh."""
    from deepcsp.geometry.closest import MeshOracle
    from deepcsp.io import load_surface

    s = load_surface(bundled_tee)
    res = render_field(tiny_field, view_camera("side", 24, 24))
    arr = res.ray_arrays()
    assert arr["origins"].shape == arr["directions"].shape == (24, 24, 3)
    assert arr["hit"].dtype == bool and arr["depth"].shape == (24, 24)
    assert np.all(np.isinf(arr["depth"][~arr["hit"]])) and np.all(np.isfinite(arr["depth"][arr["hit"]]))
    pts = arr["origins"][arr["hit"]] + arr["depth"][arr["hit"]][:, None] * arr["directions"][arr["hit"]]
    dist = MeshOracle(s.vertices, s.faces).query(pts).distances
    diag = float(np.linalg.norm(s.vertices.max(0) - s.vertices.min(0)))
    assert len(pts) > 20 and np.median(dist) < 2e-3 * diag


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_cuda_trace_matches_cpu(tiny_field):
    import copy

    cam = view_camera("iso", 32, 32)
    cpu = render_field(tiny_field, cam)
    gpu_field = copy.deepcopy(tiny_field).to("cuda")
    gpu = render_field(gpu_field, cam)
    assert (cpu.hit != gpu.hit).sum() <= 2
    both = cpu.hit & gpu.hit
    # a ray stops once it is within hit_eps of the surface (normalised units, as the depths), so
    # float32 rounding on another device may stop it anywhere inside that tolerance (measured on an
    # H200: 2 of 152 depths 1.1e-4 and 3.3e-4 apart)
    np.testing.assert_allclose(cpu.depth[both], gpu.depth[both], atol=TraceConfig().hit_eps)


# ---------------------------------------------------------------- CLI


def test_cli_render_end_to_end(tiny_field, tmp_path):
    import imageio.v3 as iio

    from deepcsp.cli.main import main

    path = tiny_field.save(tmp_path / "tee.safetensors")
    out = tmp_path / "img.png"
    rays = tmp_path / "rays.npz"
    rc = main(
        [
            "render",
            str(path),
            "-o",
            str(out),
            "--width",
            "32",
            "--height",
            "24",
            "--view",
            "front",
            "--save-rays",
            str(rays),
            "--turntable",
            "3",
            "--quiet",
        ]
    )
    assert rc == 0
    img = iio.imread(out)
    assert img.shape == (24, 32, 3) and img.dtype == np.uint8
    assert (img != 255).any(axis=-1).sum() > 50  # something is drawn on the white background
    for tag in ("normals", "depth"):
        assert iio.imread(tmp_path / f"img_{tag}.png").shape == (24, 32, 3)
    frames = iio.imread(tmp_path / "img.gif", index=None)
    assert frames.shape[0] == 3 and frames.shape[1:3] == (24, 32)
    with np.load(rays) as z:
        assert {"origins", "directions", "hit", "depth"} <= set(z.files)
        assert z["origins"].shape == (24, 32, 3) and z["hit"].shape == (24, 32) and z["hit"].any()
        np.testing.assert_allclose(
            z["origins"][0, 0],
            tiny_field.normalization.to_input(np.asarray(view_camera("front", 32, 24).eye)),
            rtol=1e-9,
        )


def test_cli_render_mesh_reference(bundled_tee, tmp_path):
    from deepcsp.cli.main import main

    out = tmp_path / "gt.png"
    assert (
        main(["render", str(bundled_tee), "-o", str(out), "--width", "16", "--height", "16", "--no-maps", "--quiet"])
        == 0
    )
    assert out.exists() and not (tmp_path / "gt_normals.png").exists()


@pytest.mark.parametrize(
    "args, needle",
    [
        (["MISSING", "-o", "OUT/x.png"], "not found"),
        (["FIELD", "-o", "OUT/x.jpg"], ".png"),
        (["FIELD", "-o", "OUT/x.gif"], "--turntable"),
        (["FIELD", "-o", "OUT/x.png", "--width", "0"], "--width"),
        (["FIELD", "-o", "OUT/x.png", "--save-rays", "OUT/r.txt"], ".npz"),
        (["FIELD", "-o", "OUT/x.png", "--look-at", "0", "0", "0"], "--eye"),
        (["GARBAGE", "-o", "OUT/x.png"], "not a readable deepcsp field"),
        (["FIELD", "-o", "OUT/x.png", "--render.trace.hit-eps", "-1"], "--render.trace.hit-eps"),
    ],
)
def test_cli_render_bad_input_is_one_line_exit_2(tiny_field, tmp_path, capsys, args, needle):
    from deepcsp.cli.main import main

    field_path = tiny_field.save(tmp_path / "f.safetensors")
    garbage = tmp_path / "g.safetensors"
    garbage.write_bytes(b"not a field at all")
    subs = {"FIELD": str(field_path), "MISSING": str(tmp_path / "nope.safetensors"), "GARBAGE": str(garbage)}
    argv = ["render"] + [subs.get(a, a.replace("OUT", str(tmp_path))) for a in args]
    assert main(argv) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("deepcsp: error:") and needle in err[0], err
    assert not (tmp_path / "x.png").exists()


@pytest.mark.parametrize("view", ["front", "iso"])
def test_thin_tail_beside_the_fuselage_is_not_jumped_through(meshes_dir, view):
    """airplane_holes' exact closest points traced at 256 x 256: rays that reach the thin horizontal
    tail while the fuselage is closer used to jump through it on the fuselage's tangent plane and
    miss (21-27 pixels inside the silhouette); a jump past the safe distance that ends with the
    plane behind now opens a bracket."""
    from scipy import ndimage

    from deepcsp.io import load_surface

    surf = load_surface(meshes_dir / "open" / "airplane_holes.obj")
    cam = view_camera(view, 256, 256)
    cast = render_mesh_exact(surf.vertices, surf.faces, cam, surf.normalization)
    traced = render_field(ExactField(surf.vertices, surf.faces), cam)
    silhouette = ndimage.binary_dilation(cast.hit ^ ndimage.binary_erosion(cast.hit), iterations=2)
    assert int((cast.hit & ~traced.hit & ~silhouette).sum()) <= 3
    assert (traced.hit & cast.hit).sum() / (traced.hit | cast.hit).sum() > 0.97
