"""The local learned CSP operator (deepcsp.fields.local) and its training (deepcsp.train.local)."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from deepcsp.errors import DeepCSPError
from deepcsp.fields.local import (
    LocalCSPConfig,
    LocalCSPNet,
    load_local_model,
    project_points,
    save_local_model,
    shipped_local_model_path,
)
from deepcsp.geometry.neighborhoods import local_neighborhoods


def sphere_cloud(rng, n: int, radius: float = 0.3, noise: float = 0.0) -> np.ndarray:
    p = rng.normal(size=(n, 3))
    return radius * p / np.linalg.norm(p, axis=1, keepdims=True) + rng.normal(size=(n, 3)) * noise


def rotation(rng) -> np.ndarray:
    q, r = np.linalg.qr(rng.normal(size=(3, 3)))
    return q * np.sign(np.diag(r))


def test_neighborhoods_are_canonical_under_rigid_motion_and_scale(rng):
    from scipy.spatial import cKDTree

    cloud = sphere_cloud(rng, 2000, noise=0.01)
    q = cloud[:200]
    R, s, t = rotation(rng), 3.7, np.array([1.0, -2.0, 5.0])
    moved = cloud @ R.T * s + t
    a = local_neighborhoods(cloud, cKDTree(cloud), q, 32)
    b = local_neighborhoods(moved, cKDTree(moved), q @ R.T * s + t, 32)
    np.testing.assert_allclose(a.points, b.points, atol=1e-4)
    offsets = rng.normal(size=(200, 3)).astype(np.float32)
    np.testing.assert_allclose(a.to_world(offsets) @ R.T * s, b.to_world(offsets), atol=1e-9)
    np.testing.assert_allclose(a.to_frame(a.to_world(offsets)), offsets, atol=1e-9)


def test_projection_follows_the_cloud_when_it_moves(rng):
    model = LocalCSPNet(LocalCSPConfig(neighbors=32, width=32, hidden=32))
    cloud = sphere_cloud(rng, 1500, noise=0.01)
    R, s, t = rotation(rng), 0.25, np.array([10.0, 0.0, -3.0])
    a = project_points(model, cloud, cloud[:300])
    b = project_points(model, cloud @ R.T * s + t, cloud[:300] @ R.T * s + t)
    np.testing.assert_allclose(a @ R.T * s + t, b, atol=1e-5)


def test_save_and_load_give_the_same_predictions(tmp_path, rng):
    model = LocalCSPNet(LocalCSPConfig(neighbors=16, width=16, hidden=16))
    path = save_local_model(tmp_path / "m.safetensors", model, {"note": "test"})
    loaded = load_local_model(path)
    x = torch.from_numpy(rng.normal(size=(50, 16, 3)).astype(np.float32))
    with torch.no_grad():
        np.testing.assert_array_equal(model(x).numpy(), loaded(x).numpy())
    assert loaded.meta == {"note": "test"}


def test_bad_model_files_give_one_line_errors(tmp_path):
    from safetensors.torch import save_file

    wrong = tmp_path / "wrong.safetensors"
    save_file({"x": torch.zeros(3)}, str(wrong), metadata={"deepcsp": '{"format": "deepcsp-field", "version": 1}'})
    with pytest.raises(DeepCSPError, match="wrong.safetensors.*local CSP model"):
        load_local_model(wrong)
    garbage = tmp_path / "garbage.safetensors"
    garbage.write_bytes(b"\x00" * 100)
    with pytest.raises(DeepCSPError, match="garbage.safetensors"):
        load_local_model(garbage)


@pytest.mark.skipif(not shipped_local_model_path().exists(), reason="the shipped local CSP model is missing")
def test_shipped_model_denoises_a_noisy_sphere(rng):
    model = load_local_model(shipped_local_model_path())
    noise = 0.006
    cloud = sphere_cloud(rng, 6000, noise=noise)
    projected = project_points(model, cloud, cloud)
    before = np.abs(np.linalg.norm(cloud, axis=1) - 0.3).mean()
    after = np.abs(np.linalg.norm(projected, axis=1) - 0.3).mean()
    assert after < 0.4 * before, (after, before)
    assert model.meta.get("val") and model.meta.get("train")  # the split it was trained and selected on is recorded


def test_training_writes_a_model_and_resumes(tmp_path):
    from deepcsp.train.local import LocalDataConfig, LocalTrainConfig, train_local
    from deepcsp.train.procedural import generate_shapes

    shapes = [(s.vertices, s.faces) for s in generate_shapes(3, seed=1)]
    config = LocalTrainConfig(
        model=LocalCSPConfig(neighbors=16, width=16, hidden=16),
        epochs=2,
        batch=64,
        data=LocalDataConfig(clouds_per_mesh=1, queries_per_cloud=128, points=(1000, 2000)),
    )
    first = train_local(shapes[:2], shapes[2:], tmp_path, config)
    assert (tmp_path / "model.safetensors").exists() and len(first.history) == 2
    last = first.history[-1]
    assert (
        np.isfinite(last["val_csp_error"]) and last["val_identity_error"] > 0 and last["val_plane_error"] > 0
    )  # references beside it
    again = train_local(shapes[:2], shapes[2:], tmp_path, config)
    assert again.resumed and again.steps == first.steps and len(again.history) == 2  # nothing left to do


def _tiny_local_config(device: str):
    from deepcsp.train.local import LocalDataConfig, LocalTrainConfig

    return LocalTrainConfig(
        model=LocalCSPConfig(neighbors=16, width=16, hidden=16),
        epochs=2,
        batch=64,
        device=device,
        data=LocalDataConfig(clouds_per_mesh=1, queries_per_cloud=128, points=(1000, 2000)),
    )


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_training_on_cuda_tracks_cpu(tmp_path):
    """The same seeded run on CUDA and on the CPU: same examples, per-epoch errors within 1%, and the
    model written on CUDA loads on the CPU and predicts what the CUDA module predicts."""
    from deepcsp.train.local import train_local
    from deepcsp.train.procedural import generate_shapes

    shapes = [(s.vertices, s.faces) for s in generate_shapes(3, seed=1)]
    cpu = train_local(shapes[:2], shapes[2:], tmp_path / "cpu", _tiny_local_config("cpu"))
    gpu = train_local(shapes[:2], shapes[2:], tmp_path / "cuda", _tiny_local_config("cuda"))
    assert gpu.steps == cpu.steps
    for a, b in zip(cpu.history, gpu.history):
        assert a["val_identity_error"] == pytest.approx(b["val_identity_error"], rel=1e-6)  # same examples
        assert b["val_csp_error"] == pytest.approx(a["val_csp_error"], rel=1e-2)
        assert b["train_error"] == pytest.approx(a["train_error"], rel=1e-2)
    on_cpu, on_gpu = load_local_model(gpu.model), load_local_model(gpu.model, device="cuda")
    x = torch.from_numpy(np.random.default_rng(0).normal(size=(200, 16, 3)).astype(np.float32))
    with torch.no_grad():
        np.testing.assert_allclose(on_cpu(x).numpy(), on_gpu(x.cuda()).cpu().numpy(), atol=1e-4)


def test_training_meshes_are_welded_and_cleaned(tmp_path):
    """A quad stored as two triangles with their own copies of the shared corners (one copy 1e-12
    off) and a repeated face loads as 4 vertices and 2 faces; the weld is importable from extract."""
    from deepcsp.extract.topology import weld_and_clean as from_extract
    from deepcsp.geometry.cleanup import weld_and_clean
    from deepcsp.train.local import load_training_mesh

    corners = ["0 0 0", "1 0 0", "1 1 0", "0 0 0", "1 1.000000000001 0", "0 1 0"]
    text = "".join(f"v {c}\n" for c in corners) + "f 1 2 3\nf 4 5 6\nf 1 2 3\n"
    (tmp_path / "quad.obj").write_text(text)
    vertices, faces = load_training_mesh(tmp_path / "quad.obj")
    assert vertices.shape == (4, 3) and faces.shape == (2, 3)
    assert from_extract is weld_and_clean
    np.testing.assert_allclose(
        np.sort(vertices, axis=0), np.sort(np.array([[0, 0, 0], [1, 0, 0], [1, 1, 0], [0, 1, 0.0]]), axis=0)
    )


def test_forward_splits_the_context_layer_exactly():
    """The context layer is applied as a per-point and a shared per-neighbourhood part: the same
    function as the layer on the concatenated features."""
    torch.manual_seed(0)
    model = LocalCSPNet(LocalCSPConfig(neighbors=16, width=32, hidden=32))
    pts = torch.randn(5, 16, 3)
    f = model.point(torch.cat([pts, pts.norm(dim=-1, keepdim=True)], -1))
    pooled = torch.cat([f.max(1).values, f.mean(1)], -1)
    g = model.context(torch.cat([f, pooled[:, None].expand(-1, 16, -1)], -1))
    expected = model.head(torch.cat([g.max(1).values, g.mean(1)], -1))
    torch.testing.assert_close(model(pts), expected, rtol=1e-5, atol=1e-6)
