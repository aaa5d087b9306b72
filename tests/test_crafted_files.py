"""Bounded decoding and safe outputs: crafted field files, models and checkpoints are refused from
their header before anything large is allocated or inflated; written files get the umask's
permissions and their folder is flushed after the rename."""

from __future__ import annotations

import json
import os
import stat
import tracemalloc
import zlib

import numpy as np
import pytest
import torch

from deepcsp._atomic import atomic_path, current_umask, write_bytes
from deepcsp.errors import DeepCSPError
from deepcsp.fields.files import read_weights, write_weights
from deepcsp.fields.query import FORMAT, FORMAT_VERSION, MAX_INFLATED_BYTES, load_field


@pytest.fixture(scope="module", params=["mesh", "delta2"])
def field_file(request, tiny_field, tmp_path_factory):
    """The tiny field saved with each value codec: predicted from its mesh, and second differences.
    Saved once per module (saving compresses the values, about 2 s): the tests only read it."""
    tmp_path = tmp_path_factory.mktemp(f"crafted-{request.param}")
    path = tiny_field.save(tmp_path / "f.safetensors")
    if request.param == "delta2":
        from deepcsp.fields import load_field as load

        field = load(path)
        field.module.encoder.source = None
        path = field.save(tmp_path / "f2.safetensors")
    return path


def _codec(path) -> str:
    return read_weights(path, "deepcsp field", FORMAT, FORMAT_VERSION)[1]["compressed"]["encoder.values"]["codec"]


def _rewrite(path, out, edit) -> None:
    """Write ``out`` as ``path`` with ``edit(tensors, header)`` applied (safetensors stays valid)."""
    tensors, header = read_weights(path, "deepcsp field", FORMAT, FORMAT_VERSION)
    edit(tensors, header)
    write_weights(out, tensors, header)


@pytest.mark.parametrize(
    "key, value, needle",
    [
        ("resolution", 10**6, "FieldConfig.resolution"),
        ("coarse_resolution", 10**5, "FieldConfig.coarse_resolution"),
        ("n_active", 2**40, "FieldConfig.n_active"),
        ("hidden", [10**6], "FieldConfig.hidden"),
        ("encoding", "dense_grid_of_doom", "FieldConfig.encoding"),
        ("resolution", "48", "FieldConfig.resolution"),
    ],
)
def test_field_header_sizes_are_checked_before_allocation(field_file, tmp_path, key, value, needle):
    bad = tmp_path / "bad.safetensors"
    _rewrite(field_file, bad, lambda t, h: h["config"].__setitem__(key, value))
    tracemalloc.start()
    try:
        with pytest.raises(DeepCSPError, match=needle) as info:
            load_field(bad)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert "\n" not in str(info.value) and str(bad) in str(info.value)
    assert peak < 64 * 2**20, peak


def test_compressed_shape_must_match_the_config(field_file, tmp_path):
    bad = tmp_path / "bad.safetensors"
    _rewrite(field_file, bad, lambda t, h: h["compressed"]["encoder.values"].__setitem__("shape", [10**12, 3]))
    with pytest.raises(DeepCSPError, match=r"encoder.values: compressed tensor has shape \[1000000000000, 3\]"):
        load_field(bad)


def test_zlib_bomb_is_inflated_only_up_to_the_expected_size(field_file, tmp_path):
    """A values stream that inflates to 256 MiB (the header says ~60 kB) stops at the bound."""
    comp = zlib.compressobj(9)
    zeros = bytes(2**20)
    bomb = b"".join(comp.compress(zeros) for _ in range(256)) + comp.flush()
    assert len(bomb) < 2**20

    def edit(t, h):
        spec = h["compressed"]["encoder.values"]
        blob = bomb
        if "sections" in spec:  # the mesh codec: the residuals are the last section
            keep = sum(spec["sections"][:2])
            blob = t["encoder.values.zlib"].numpy().tobytes()[:keep] + bomb
            spec["sections"][2] = len(bomb)
        t["encoder.values.zlib"] = torch.from_numpy(np.frombuffer(blob, np.uint8).copy())

    bad = tmp_path / "bomb.safetensors"
    _rewrite(field_file, bad, edit)
    tracemalloc.start()
    try:
        with pytest.raises(DeepCSPError, match="encoder.values: compressed (tensor|section) holds more than"):
            load_field(bad)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < 32 * 2**20, peak


def test_inflation_limit_is_checked_before_inflating(field_file, tmp_path, monkeypatch):
    import deepcsp.fields.query as q

    monkeypatch.setattr(q, "MAX_INFLATED_BYTES", 1000)
    with pytest.raises(DeepCSPError, match="more than the limit 1000"):
        load_field(field_file)
    assert MAX_INFLATED_BYTES >= 2**30


def test_truncated_and_unknown_compressed_streams(field_file, tmp_path):
    def truncate(t, h):
        t["encoder.values.zlib"] = t["encoder.values.zlib"][: len(t["encoder.values.zlib"]) // 2].clone()

    _rewrite(field_file, tmp_path / "t.safetensors", truncate)
    expect = "section sizes do not match" if _codec(field_file) == "mesh-ref-q" else "compressed tensor holds"
    with pytest.raises(DeepCSPError, match=f"encoder.values: {expect}"):
        load_field(tmp_path / "t.safetensors")

    def extra(t, h):
        t["encoder.extra.zlib"] = torch.zeros(4, dtype=torch.uint8)
        h["compressed"]["encoder.extra"] = {"shape": [10**9], "dtype": "uint8"}

    _rewrite(field_file, tmp_path / "x.safetensors", extra)
    with pytest.raises(DeepCSPError, match="encoder.extra: unexpected compressed tensor"):
        load_field(tmp_path / "x.safetensors")


def test_model_header_sizes_are_checked(tmp_path):
    from deepcsp.fields.conditional import FORMAT as MFORMAT
    from deepcsp.fields.conditional import FORMAT_VERSION as MVERSION
    from deepcsp.fields.conditional import ConditionalConfig, ConditionalModel, load_model, save_model

    path = save_model(
        tmp_path / "m.safetensors",
        ConditionalModel(ConditionalConfig(plane_resolution=8, plane_channels=4, encoder_hidden=8, decoder_hidden=8)),
    )
    tensors, header = read_weights(path, "deepcsp reconstruction model", MFORMAT, MVERSION)
    for key, value in (("plane_resolution", 10**5), ("decoder_hidden", 10**7), ("unet_depth", 40)):
        h = json.loads(json.dumps(header))
        h["config"][key] = value
        write_weights(tmp_path / "bad.safetensors", tensors, h)
        with pytest.raises(DeepCSPError, match=f"ConditionalConfig.{key}"):
            load_model(tmp_path / "bad.safetensors")


def test_fit_checkpoint_with_crafted_sizes_is_refused(tmp_path):
    """A checkpoint of the same input and config whose stored field config asks for a huge grid is
    refused by FieldConfig before the module is built."""
    from deepcsp._checkpoint import load_checkpoint, save_checkpoint
    from deepcsp.fields import FieldConfig
    from deepcsp.fit import FitConfig, fit_surface
    from deepcsp.geometry.analytic import open_hemisphere
    from deepcsp.geometry.sampling import SampleConfig
    from deepcsp.io.surface import surface_from_arrays

    v, f = open_hemisphere(radius=0.35, subdivisions=3)
    surface = surface_from_arrays(v, f, "hemisphere")
    samples = SampleConfig(n_surface=200, near_scales=(0.01,), n_near_per_scale=200, n_uniform=100)
    cfg = FitConfig(
        field=FieldConfig(encoding="fourier", n_frequencies=2, hidden=(8,)),
        max_steps=2,
        batch_size=64,
        eval_points=0,
        samples=samples,
    )
    ckpt = tmp_path / "f.ckpt"
    fit_surface(surface, cfg, checkpoint_path=ckpt)
    tensors, meta = load_checkpoint(ckpt)
    meta["field"]["hidden"] = [2**20]
    save_checkpoint(ckpt, tensors, meta)
    with pytest.raises(DeepCSPError, match="FieldConfig.hidden"):
        fit_surface(surface, cfg, checkpoint_path=ckpt)


@pytest.mark.parametrize("mask", [0o022, 0o077, 0o002])
def test_written_files_respect_the_umask(tmp_path, mask):
    old = os.umask(mask)
    try:
        assert current_umask() == mask
        write_bytes(tmp_path / "a.bin", b"x")
        with atomic_path(tmp_path / "b.bin") as tmp:  # writers that replace the temp file
            tmp.unlink()
            tmp.write_bytes(b"y")
    finally:
        os.umask(old)
    for name in ("a.bin", "b.bin"):
        assert stat.S_IMODE((tmp_path / name).stat().st_mode) == 0o666 & ~mask, name


def test_folder_is_fsynced_after_the_rename(tmp_path, monkeypatch):
    synced = []
    real = os.fsync

    def spy(fd):
        st = os.fstat(fd)
        synced.append((stat.S_ISDIR(st.st_mode), (tmp_path / "out.bin").exists()))
        return real(fd)

    monkeypatch.setattr(os, "fsync", spy)
    write_bytes(tmp_path / "out.bin", b"data")
    assert synced == [(False, False), (True, True)]  # the file before the rename, then its folder


def test_failed_write_leaves_the_old_file_and_no_temp(tmp_path):
    target = tmp_path / "keep.txt"
    target.write_text("old")
    with pytest.raises(RuntimeError):
        with atomic_path(target) as tmp:
            tmp.write_text("half")
            raise RuntimeError("writer died")
    assert target.read_text() == "old" and sorted(p.name for p in tmp_path.iterdir()) == ["keep.txt"]
