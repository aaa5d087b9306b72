"""Fitting, field files, resume and the fit/query CLI (tiny budgets)."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
import torch

import deepcsp
from deepcsp.errors import DeepCSPError
from deepcsp.fields.modules import FieldConfig, build_module
from deepcsp.fit import FitConfig, fit_surface
from deepcsp.fit.presets import paper_recipe, udf_baseline
from deepcsp.geometry.analytic import Sphere, open_hemisphere
from deepcsp.geometry.closest import MeshOracle
from deepcsp.io.surface import surface_from_arrays

TINY = FieldConfig(resolution=48, coarse_resolution=16)
DATA = Path(deepcsp.__file__).parent / "data"


@pytest.fixture(scope="module")
def hemisphere():
    v, f = open_hemisphere(radius=0.35, subdivisions=4)
    return surface_from_arrays(v, f, "hemisphere")


@pytest.fixture(scope="module")
def tiny_fit(hemisphere):
    return fit_surface(hemisphere, FitConfig(eval_points=5000, field=TINY))


def test_collocation_is_exact_at_active_vertices(tiny_fit, hemisphere):
    grid = tiny_fit.field.module.encoder
    from deepcsp.fields.encodings import grid_vertices

    v = grid_vertices(grid.res, grid.half, ids=grid.active[::7])
    v = v[grid.fine_mask(v)]  # vertices on the band's rim are served by the coarse grid
    assert len(v) > 1000
    oracle = MeshOracle(hemisphere.normalized_vertices, hemisphere.faces)
    exact = oracle.query(v.double().numpy()).points
    pred = tiny_fit.field.closest_points_normalized(v).double().numpy()
    # float32 vertex positions sit ~1e-4 of a cell off the vertex, which gives a neighbouring corner
    # (on the rim, its closest point ~2 cells away) a weight of ~4e-4: up to ~2e-5 here
    assert np.abs(pred - exact).max() < 5e-5
    assert np.median(np.abs(pred - exact).max(1)) < 1e-6


def test_fitted_error_is_small_and_reported(tiny_fit):
    e = tiny_fit.errors
    assert e is not None and e.n == 5000
    # Resolution 48 on a smooth hemisphere: well under 1% of the diagonal on average.
    assert e.mean < 0.005
    assert e.p95 < 0.02
    assert tiny_fit.band.n_active < tiny_fit.band.dense_vertices


def test_csp_beats_udf_near_surface(hemisphere, tiny_fit):
    udf = fit_surface(hemisphere, udf_baseline(FitConfig(eval_points=5000, field=TINY)))
    assert udf.field.kind == "udf"
    assert tiny_fit.errors.mean < udf.errors.mean


def test_closest_points_lie_on_surface_and_are_fixed_points(tiny_fit):
    r = 0.35  # input coordinates: the hemisphere's dome has radius 0.35 around the origin
    rng = np.random.default_rng(0)
    d = rng.normal(size=(500, 3))
    d[:, 2] = np.abs(d[:, 2]) + 0.5
    d /= np.linalg.norm(d, axis=1, keepdims=True)
    x = d * (r + rng.uniform(-0.03, 0.03, (500, 1)))
    cp = tiny_fit.field.closest_points(x)
    assert np.abs(np.linalg.norm(cp, axis=1) - r).max() < 4e-3
    cp2 = tiny_fit.field.closest_points(cp)
    assert np.linalg.norm(cp2 - cp, axis=1).max() < 4e-3


def test_query_api_in_input_coordinates(tiny_fit):
    x = np.array([[0.0, 0.0, 0.40], [0.1, 0.05, 0.3]])
    res = tiny_fit.field.query(x)
    assert np.allclose(np.linalg.norm(res.closest_points, axis=1), 0.35, atol=4e-3)
    assert np.allclose(res.distances, np.linalg.norm(x - res.closest_points, axis=1))
    dirs = tiny_fit.field.directions(x)
    assert np.allclose(np.linalg.norm(dirs, axis=1), 1.0)
    with pytest.raises(ValueError, match=r"shape \(N, 3\)"):
        tiny_fit.field.query(np.zeros((4, 2)))
    with pytest.raises(ValueError, match="NaN or inf"):
        tiny_fit.field.query(np.array([[np.nan, 0, 0]]))


def test_save_load_roundtrip(tiny_fit, tmp_path):
    x = torch.rand(2000, 3) - 0.5
    p = tiny_fit.field.save(tmp_path / "f.safetensors")
    g = deepcsp.load(p)
    a, b = tiny_fit.field.closest_points_normalized(x), g.closest_points_normalized(x)
    assert (a - b).abs().max() < 5e-4  # float16 storage of grid values
    from deepcsp.fields.query import save_field

    save_field(
        tmp_path / "full.safetensors",
        tiny_fit.field.module,
        tiny_fit.field.config,
        tiny_fit.field.normalization,
        half=False,
    )
    assert torch.equal(deepcsp.load(tmp_path / "full.safetensors").closest_points_normalized(x), a)


def test_corrupted_and_mismatched_field_files(tiny_fit, tmp_path):
    p = tiny_fit.field.save(tmp_path / "f.safetensors")
    data = p.read_bytes()
    (tmp_path / "trunc.safetensors").write_bytes(data[: len(data) // 2])
    with pytest.raises(DeepCSPError, match="trunc.safetensors"):
        deepcsp.load(tmp_path / "trunc.safetensors")
    (tmp_path / "garbage.safetensors").write_bytes(b"\x00" * 64)
    with pytest.raises(DeepCSPError):
        deepcsp.load(tmp_path / "garbage.safetensors")
    from safetensors.torch import save_file

    save_file({"w": torch.zeros(3)}, str(tmp_path / "other.safetensors"))
    with pytest.raises(DeepCSPError, match="not a deepcsp field"):
        deepcsp.load(tmp_path / "other.safetensors")
    # Header claims a different resolution than the weights hold.
    from safetensors import safe_open

    with safe_open(str(p), "pt") as fh:
        header = json.loads(fh.metadata()["deepcsp"])
        tensors = {k: fh.get_tensor(k) for k in fh.keys()}
    header["config"]["resolution"] = 32
    save_file(tensors, str(tmp_path / "mismatch.safetensors"), metadata={"deepcsp": json.dumps(header)})
    with pytest.raises(DeepCSPError, match="do not match"):
        deepcsp.load(tmp_path / "mismatch.safetensors")
    with pytest.raises(DeepCSPError, match="not found"):
        deepcsp.load(tmp_path / "missing.safetensors")


def _net_config(**kw):
    field = FieldConfig(
        encoding="multires_grid", levels=2, features=2, base_resolution=8, max_resolution=16, hidden=(16,)
    )
    base = FitConfig(field=field, time_budget=0, batch_size=256, eval_points=0, checkpoint_every=0.0)
    return replace(base, samples=replace(base.samples, n_surface=2000, n_near_per_scale=2000, n_uniform=1000), **kw)


def test_network_fit_reproducible_and_resumes_identically(hemisphere, tmp_path):
    full = fit_surface(hemisphere, _net_config(max_steps=12))
    ck = tmp_path / "run.ckpt"

    def interrupt(rec):
        if rec["step"] == 6:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        fit_surface(hemisphere, _net_config(max_steps=12), checkpoint_path=ck, progress=interrupt)
    assert ck.exists()
    resumed = fit_surface(hemisphere, _net_config(max_steps=12), checkpoint_path=ck)
    assert resumed.resumed_from_step == 6 and resumed.steps == 12
    for (k, a), (_, b) in zip(full.field.module.state_dict().items(), resumed.field.module.state_dict().items()):
        assert torch.equal(a, b), k
    again = fit_surface(hemisphere, _net_config(max_steps=12))
    assert all(
        torch.equal(a, b)
        for a, b in zip(full.field.module.state_dict().values(), again.field.module.state_dict().values())
    )


def test_checkpoint_of_other_config_is_not_resumed(hemisphere, tmp_path):
    ck = tmp_path / "run.ckpt"
    fit_surface(hemisphere, _net_config(max_steps=3), checkpoint_path=ck)
    other = fit_surface(hemisphere, replace(_net_config(max_steps=3), seed=1), checkpoint_path=ck)
    assert other.resumed_from_step == 0


def test_paper_recipe_architecture():
    cfg = paper_recipe()
    m = build_module(cfg.field)
    n = sum(p.numel() for p in m.parameters())
    assert 9.6e6 < n < 9.8e6  # 3-120-512-1024-2048-2048-1024-512-256-128-3
    widths = [layer.out_features for layer in m.head if isinstance(layer, torch.nn.Linear)]
    assert widths == [120, 512, 1024, 2048, 2048, 1024, 512, 256, 128, 3]
    assert cfg.lr == 1e-4 and cfg.batch_size == 1024 and cfg.field.output == "point"


def test_point_cloud_input(tmp_path):
    rng = np.random.default_rng(0)
    pts = Sphere(0.3).closest_points(rng.normal(size=(3000, 3)))
    s = surface_from_arrays(pts, None, "cloud")
    r = fit_surface(s, FitConfig(eval_points=2000, field=TINY))
    assert r.errors.mean < 0.02


def _cli(*args, **kw):
    return subprocess.run(
        [sys.executable, "-m", "deepcsp", *map(str, args)], capture_output=True, text=True, timeout=300, **kw
    )


def test_cli_fit_and_query(tmp_path):
    out = tmp_path / "tee.safetensors"
    r = _cli(
        "fit",
        DATA / "tee_sim.obj",
        "-o",
        out,
        "--quiet",
        "--config.field.resolution",
        "48",
        "--config.field.coarse-resolution",
        "16",
        "--config.eval-points",
        "2000",
        "--cache",
        "None",
    )
    assert r.returncode == 0, r.stderr
    assert out.exists() and Path(str(out) + ".json").exists()
    report = json.loads(Path(str(out) + ".json").read_text())
    assert report["errors"]["mean"] < 0.01
    pts = np.random.default_rng(0).uniform(-20, 20, (100, 3)) + np.array([0, 5, 7])
    np.save(tmp_path / "q.npy", pts)
    r = _cli("query", out, tmp_path / "q.npy", "-o", tmp_path / "q.npz")
    assert r.returncode == 0, r.stderr
    z = np.load(tmp_path / "q.npz")
    assert z["closest_points"].shape == (100, 3) and z["distances"].shape == (100,)
    assert np.allclose(z["distances"], np.linalg.norm(pts - z["closest_points"], axis=1), atol=1e-6)


def test_cli_bad_input_one_line(tmp_path):
    bad = tmp_path / "bad.obj"
    bad.write_text("v 0 0 0\nv nan 0 0\nv 0 1 0\nf 1 2 3\n")
    r = _cli("fit", bad, "-o", tmp_path / "x.safetensors", "--quiet")
    assert r.returncode == 2
    assert r.stderr.strip().count("\n") == 0 and "bad.obj" in r.stderr and "Traceback" not in r.stderr


def test_cli_fit_resumes_after_kill(tmp_path):
    out = tmp_path / "net.safetensors"

    def args(max_steps):
        return [
            "fit",
            DATA / "tee_sim.obj",
            "-o",
            out,
            "--quiet",
            "--cache",
            "None",
            "--config.field.encoding",
            "multires_grid",
            "--config.field.levels",
            "2",
            "--config.field.base-resolution",
            "8",
            "--config.field.max-resolution",
            "16",
            "--config.field.hidden",
            "8",
            "--config.time-budget",
            "0",
            "--config.max-steps",
            str(max_steps),
            "--config.batch-size",
            "512",
            "--config.checkpoint-every",
            "0.2",
            "--config.eval-points",
            "0",
            "--config.samples.n-surface",
            "2000",
            "--config.samples.n-near-per-scale",
            "2000",
            "--config.samples.n-uniform",
            "1000",
        ]

    # A run that would take far longer than the test is killed (SIGKILL) once a checkpoint exists.
    proc = subprocess.Popen(
        [sys.executable, "-m", "deepcsp", *map(str, args(10_000_000))],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    ck = Path(str(out) + ".ckpt")
    t0 = time.time()
    while not ck.exists() and time.time() - t0 < 240 and proc.poll() is None:
        time.sleep(0.05)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert ck.exists() and not out.exists()
    from deepcsp._checkpoint import load_checkpoint

    step = load_checkpoint(ck)[1]["step"]
    assert step > 0
    # Rerunning the same command resumes (the step budget is not part of the checkpoint's identity).
    r = _cli(*args(step + 20))
    assert r.returncode == 0, r.stderr
    report = json.loads(Path(str(out) + ".json").read_text())
    assert report["resumed_from_step"] == step and report["steps"] == step + 20
    assert not ck.exists()
