"""Learned reconstruction: procedural shapes, data preparation, augmentation, the conditional
model, resumable and distributed (DDP, gloo) training, and reconstruction with the shipped model."""

from __future__ import annotations

import os
import shutil
import socket
from pathlib import Path

import numpy as np
import pytest
import torch

from deepcsp.constants import FILL, HALF_SIDE
from deepcsp.errors import DeepCSPError
from deepcsp.fields.conditional import (
    ConditionalConfig,
    ConditionalField,
    ConditionalModel,
    load_model,
    save_model,
    shipped_model_path,
)
from deepcsp.geometry.closest import closest_point_on_triangles_naive
from deepcsp.train.data import (
    NO_AUGMENT,
    AugmentConfig,
    PrepareConfig,
    list_records,
    load_record,
    make_example,
    prepare,
)
from deepcsp.train.loop import TrainConfig, train
from deepcsp.train.procedural import KINDS, generate_shapes

BUNDLED = Path(__file__).resolve().parents[1] / "src" / "deepcsp" / "data"  # spot.obj (closed), tee_sim.obj (open)
TINY_PREP = PrepareConfig(n_surface=600, near_scales=(0.01, 0.05), n_near_per_scale=150, n_uniform=100)
TINY_MODEL = ConditionalConfig(
    plane_resolution=8,
    plane_channels=8,
    encoder_hidden=8,
    encoder_blocks=2,
    unet_depth=1,
    decoder_hidden=16,
    decoder_blocks=2,
)


def tiny_train_config(**kw) -> TrainConfig:
    base = dict(
        model=TINY_MODEL, epochs=2, batch=2, n_input=128, n_query=64, val_count=1, checkpoint_every=1, threads=1
    )
    base.update(kw)
    return TrainConfig(**base)


@pytest.fixture(scope="module")
def tiny_data(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("recdata")
    report = prepare(None, out, TINY_PREP, n_procedural=5)
    assert len(report.written) == 5 and not report.failed
    return out


def _edges_boundary_count(faces: np.ndarray) -> int:
    e = np.sort(np.concatenate([faces[:, [0, 1]], faces[:, [1, 2]], faces[:, [2, 0]]]), axis=1)
    _, counts = np.unique(e, axis=0, return_counts=True)
    return int((counts == 1).sum())


def test_procedural_shapes_are_valid_and_open_where_expected():
    shapes = generate_shapes(len(KINDS), seed=3)
    assert [s.kind for s in shapes] == list(KINDS)
    for s in shapes:
        assert s.vertices.shape[1] == 3 and s.faces.shape[1] == 3 and len(s.faces) > 50
        assert np.isfinite(s.vertices).all() and s.faces.max() < len(s.vertices)
        boundary = _edges_boundary_count(s.faces)
        if s.kind in ("sphere", "box", "cylinder", "torus"):
            assert boundary == 0, s.name
        if s.kind in ("sheet", "bent_sheet", "cloth", "open_tube", "hemisphere"):
            assert boundary > 0, s.name
    again = generate_shapes(3, seed=3)
    np.testing.assert_array_equal(again[2].vertices, shapes[2].vertices)


def test_prepare_two_meshes_and_a_bad_file_then_resume(tmp_path):
    mdir = tmp_path / "meshes"
    mdir.mkdir()
    shutil.copy(BUNDLED / "spot.obj", mdir / "spot.obj")
    shutil.copy(BUNDLED / "tee_sim.obj", mdir / "tee.obj")
    (mdir / "broken.obj").write_text("v 0 0 0\nv nan 1 0\nf 1 2 3\nthis is not obj\n")
    (mdir / "notes.txt").write_text("not a mesh")
    seen = []
    out = tmp_path / "data"
    report = prepare(mdir, out, TINY_PREP, workers=2, on_done=lambda *a: seen.append(a))
    assert sorted(report.written) == ["spot", "tee"]
    assert [n for n, _ in report.failed] == ["broken"] and "broken.obj" in report.failed[0][1]
    assert len(seen) == 3
    rec = load_record(out / "records" / "tee.npz")
    assert rec["surface_points"].shape == (600, 3) and rec["queries"].shape == (400, 3)
    assert np.abs(rec["vertices"]).max() <= 0.5
    # stored closest points are the exact ones (naive reference on the stored normalised mesh)
    ref = closest_point_on_triangles_naive(
        rec["queries"][:50].astype(np.float64), rec["vertices"].astype(np.float64), rec["faces"].astype(np.int64)
    )
    np.testing.assert_allclose(rec["closest"][:50], ref.points, atol=1e-5)
    np.testing.assert_allclose(rec["distances"], np.linalg.norm(rec["queries"] - rec["closest"], axis=1), atol=1e-5)
    # resume: existing records are skipped, the bad file is reported again
    again = prepare(mdir, out, TINY_PREP)
    assert sorted(again.skipped) == ["spot", "tee"] and not again.written and len(again.failed) == 1


def test_augmented_example_is_consistent(tiny_data):
    rec = load_record(list_records(tiny_data)[0])
    rng = np.random.default_rng(0)
    aug = AugmentConfig(crop_probability=1.0, noise=0.0)
    ex = make_example(rec, 200, 100, aug, rng)
    assert ex.cloud.shape == (200, 3) and ex.queries.shape == (100, 3)
    assert np.abs(ex.cloud).max() <= 0.5 + 1e-5  # renormalised from the input cloud
    np.testing.assert_allclose(ex.distances, np.linalg.norm(ex.queries - ex.closest, axis=1), atol=1e-5)
    # without augmentation the cloud is normalised exactly as at inference: longest side = 2 * HALF_SIDE * FILL
    plain = make_example(rec, 200, 100, NO_AUGMENT, np.random.default_rng(0))
    ext = plain.cloud.max(0) - plain.cloud.min(0)
    assert ext.max() == pytest.approx(2 * HALF_SIDE * FILL, rel=1e-5)
    # input points are drawn without replacement when the record has enough of them
    assert len(np.unique(plain.cloud, axis=0)) == 200


def test_conditional_field_query_api_and_save_load(tmp_path):
    torch.manual_seed(0)
    for kind in ("csp", "udf"):
        model = ConditionalModel(
            ConditionalConfig(kind=kind, plane_resolution=8, plane_channels=4, encoder_hidden=8, decoder_hidden=16)
        )
        cloud = np.random.default_rng(0).normal(size=(300, 3)) * 5 + 10
        fld = ConditionalField(model, cloud)
        q = np.random.default_rng(1).normal(size=(50, 3)) * 5 + 10
        res = fld.query(q)
        assert res.closest_points.shape == (50, 3) and np.isfinite(res.closest_points).all()
        path = save_model(tmp_path / f"{kind}.safetensors", model, meta={"x": 1})
        loaded = load_model(path)
        assert loaded.meta == {"x": 1}
        np.testing.assert_allclose(
            ConditionalField(loaded.model, cloud).query(q).closest_points, res.closest_points, atol=1e-6
        )
    (tmp_path / "bad.safetensors").write_bytes(b"garbage")
    with pytest.raises(DeepCSPError):
        load_model(tmp_path / "bad.safetensors")
    with pytest.raises(ValueError, match="shape"):
        ConditionalField(model, np.zeros((10, 2)))


def test_training_writes_outputs_and_resumes_identically(tiny_data, tmp_path):
    straight = train(tiny_data, tmp_path / "a", tiny_train_config(max_steps=4))
    assert straight.steps == 4 and (tmp_path / "a/model.safetensors").exists()
    assert (tmp_path / "a/loss.png").exists() and "val_csp_mean" in straight.history[0]
    first = train(tiny_data, tmp_path / "b", tiny_train_config(max_steps=3))  # "killed" after 3 steps
    assert first.steps == 3 and not first.resumed
    second = train(tiny_data, tmp_path / "b", tiny_train_config(max_steps=4))
    assert second.resumed and second.steps == 4
    for k, v in straight.module.state_dict().items():
        torch.testing.assert_close(second.module.state_dict()[k], v, rtol=0, atol=0)
    with pytest.raises(DeepCSPError, match="different model"):
        train(tiny_data, tmp_path / "b", tiny_train_config(model=ConditionalConfig(plane_resolution=4), max_steps=5))


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _ddp_worker(rank: int, world: int, port: int, data: str, run: str, out: str) -> None:
    os.environ.update(
        RANK=str(rank), WORLD_SIZE=str(world), LOCAL_RANK=str(rank), MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port)
    )
    from safetensors.torch import save_file

    res = train(data, run, tiny_train_config(max_steps=3, device="cpu"))
    save_file({k: v.contiguous() for k, v in res.module.state_dict().items()}, f"{out}/rank{rank}.safetensors")


def test_ddp_two_gloo_processes_hold_identical_weights(tiny_data, tmp_path):
    import torch.multiprocessing as mp
    from safetensors.torch import load_file

    mp.spawn(
        _ddp_worker, args=(2, _free_port(), str(tiny_data), str(tmp_path / "run"), str(tmp_path)), nprocs=2, join=True
    )
    w0, w1 = load_file(tmp_path / "rank0.safetensors"), load_file(tmp_path / "rank1.safetensors")
    for k in w0:
        torch.testing.assert_close(w0[k], w1[k], rtol=0, atol=0)
    # same effective batch: one process sees the same examples per step, so the weights agree closely
    single = train(tiny_data, tmp_path / "single", tiny_train_config(max_steps=3, device="cpu"))
    init = ConditionalModel(TINY_MODEL).state_dict()
    moved = max(float((w0[k] - init[k]).abs().max()) for k in w0)
    diff = max(float((w0[k] - single.module.state_dict()[k]).abs().max()) for k in w0)
    assert moved > 1e-4 and diff < 1e-4 * max(1.0, moved * 100)


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_training_on_cuda_tracks_cpu_and_resumes(tiny_data, tmp_path):
    """Four seeded steps on CUDA against the CPU (losses within 2%: TF32 convolutions and atomics
    differ), and a CUDA run stopped after 3 steps and resumed ends near the straight one."""
    cpu = train(tiny_data, tmp_path / "cpu", tiny_train_config(max_steps=4, device="cpu"))
    gpu = train(tiny_data, tmp_path / "gpu", tiny_train_config(max_steps=4, device="cuda"))
    assert next(gpu.module.parameters()).device.type == "cuda"
    for a, b in zip(cpu.history, gpu.history, strict=True):
        assert b["train_loss"] == pytest.approx(a["train_loss"], rel=2e-2)
    train(tiny_data, tmp_path / "resumed", tiny_train_config(max_steps=3, device="cuda"))
    resumed = train(tiny_data, tmp_path / "resumed", tiny_train_config(max_steps=4, device="cuda"))
    assert resumed.resumed and resumed.steps == 4
    for k, v in gpu.module.state_dict().items():
        torch.testing.assert_close(resumed.module.state_dict()[k], v, rtol=1e-3, atol=1e-4)


def _ddp_cuda_worker(rank: int, world: int, port: int, data: str, run: str, out: str) -> None:
    os.environ.update(
        RANK=str(rank), WORLD_SIZE=str(world), LOCAL_RANK=str(rank), MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port)
    )
    from safetensors.torch import save_file

    res = train(data, run, tiny_train_config(max_steps=3, device="cuda"))
    save_file({k: v.cpu().contiguous() for k, v in res.module.state_dict().items()}, f"{out}/rank{rank}.safetensors")


@pytest.mark.gpu
@pytest.mark.skipif(torch.cuda.device_count() < 2, reason="needs 2 CUDA devices (nccl, one process per GPU)")
def test_ddp_two_nccl_processes_hold_identical_weights(tiny_data, tmp_path):
    import torch.multiprocessing as mp
    from safetensors.torch import load_file

    mp.spawn(
        _ddp_cuda_worker,
        args=(2, _free_port(), str(tiny_data), str(tmp_path / "run"), str(tmp_path)),
        nprocs=2,
        join=True,
    )
    w0, w1 = load_file(tmp_path / "rank0.safetensors"), load_file(tmp_path / "rank1.safetensors")
    for k in w0:
        torch.testing.assert_close(w0[k], w1[k], rtol=0, atol=0)


def test_training_device_gives_one_gpu_per_process(monkeypatch):
    """``cpu`` and ``auto`` without CUDA train on the CPU; with one GPU visible, a second torchrun
    process or ``cuda:0`` under two processes is refused in one line instead of crashing in CUDA
    (and ``cuda:0`` once meant the CPU)."""
    from deepcsp.train.loop import DistInfo, training_device

    assert training_device("cpu", DistInfo(0, 1, 0)).type == "cpu"
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    assert training_device("auto", DistInfo(0, 1, 0)).type == "cpu"
    with pytest.raises(DeepCSPError, match="CUDA is not available"):
        training_device("cuda", DistInfo(0, 1, 0))
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 1)
    chosen = []
    monkeypatch.setattr(torch.cuda, "set_device", chosen.append)
    assert training_device("cuda:0", DistInfo(0, 1, 0)) == torch.device("cuda", 0)
    assert training_device("auto", DistInfo(0, 2, 0)) == torch.device("cuda", 0) and chosen == [0, 0]
    with pytest.raises(DeepCSPError, match="needs CUDA device 1 but 1 are visible"):
        training_device("cuda", DistInfo(1, 2, 1))
    with pytest.raises(DeepCSPError, match="names one GPU but 2 processes"):
        training_device("cuda:0", DistInfo(0, 2, 0))


def test_cli_prepare_train_reconstruct(tmp_path, tiny_data):
    from deepcsp.cli.main import main

    assert (
        main(
            [
                "prepare",
                "-o",
                str(tmp_path / "d"),
                "--procedural",
                "2",
                "--config.n-surface",
                "300",
                "--config.n-near-per-scale",
                "50",
                "--config.n-uniform",
                "50",
                "--quiet",
            ]
        )
        == 0
    )
    assert len(list_records(tmp_path / "d")) == 2
    run = tmp_path / "run"
    args = [
        "train",
        str(tiny_data),
        "-o",
        str(run),
        "--quiet",
        "--config.max-steps",
        "2",
        "--config.batch",
        "2",
        "--config.n-input",
        "128",
        "--config.n-query",
        "32",
    ]
    args += [
        "--config.model.plane-resolution",
        "8",
        "--config.model.plane-channels",
        "4",
        "--config.model.decoder-hidden",
        "16",
        "--config.model.encoder-hidden",
        "8",
    ]
    assert main(args) == 0 and (run / "model.safetensors").exists()
    assert main(["train", str(tmp_path / "nowhere"), "-o", str(run)]) == 2
    pts = tmp_path / "pts.npy"
    np.save(pts, np.random.default_rng(0).normal(size=(500, 3)))
    out = tmp_path / "out.ply"
    fpath = tmp_path / "out.safetensors"
    assert main(
        [
            "reconstruct",
            str(pts),
            "-o",
            str(out),
            "--method",
            "global",
            "--model",
            str(run / "model.safetensors"),
            "--field",
            str(fpath),
            "--resolution",
            "32",
            "--field-resolution",
            "32",
            "--quiet",
        ]
    ) in (0, 2)  # an untrained model may leave no surface: an error line, exit 2
    from deepcsp.fields.query import load_field

    assert not fpath.exists() or load_field(fpath).config.resolution == 32


def test_shipped_model_reconstructs_a_held_out_mesh(tmp_path):
    """End to end with the shipped model on a mesh it never saw (spot): 3000 points in, mesh out,
    the saved field loads and agrees with the reconstruction."""
    from deepcsp.cli.main import main
    from deepcsp.fields.query import load_field
    from deepcsp.geometry.metrics import compare_surfaces
    from deepcsp.geometry.sampling import sample_surface
    from deepcsp.io import load_surface, save_points

    assert shipped_model_path().exists() and shipped_model_path().stat().st_size < 20e6
    gt = load_surface(BUNDLED / "spot.obj")
    pts = sample_surface(gt.vertices, gt.faces, 3000, np.random.default_rng(0)).points
    save_points(tmp_path / "spot.ply", pts)
    out, fpath = tmp_path / "spot_rec.ply", tmp_path / "spot.safetensors"
    assert (
        main(
            [
                "reconstruct",
                str(tmp_path / "spot.ply"),
                "-o",
                str(out),
                "--field",
                str(fpath),
                "--resolution",
                "64",
                "--field-resolution",
                "64",
            ]
        )
        == 0
    )
    rec = load_surface(out)
    assert rec.faces is not None and len(rec.faces) > 500
    m = compare_surfaces(rec.vertices, rec.faces, gt.vertices, gt.faces, n_samples=20_000)
    assert m.chamfer_l1_rel < 0.007, m  # measured 0.0047; the 3000 input points alone score 0.0084
    fld = load_field(fpath)
    d = fld.distances(pts)
    diag = float(np.linalg.norm(gt.vertices.max(0) - gt.vertices.min(0)))
    assert np.median(d) / diag < 0.0036  # measured 0.0024
