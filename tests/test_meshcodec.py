"""Field files of mesh fits store the mesh and each band-grid value's triangle
(:mod:`deepcsp.fields.meshcodec`): the values come back within the quantisation bound, the file is
smaller than with second differences, and a damaged stream is refused with a one-line error."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from deepcsp.errors import DeepCSPError
from deepcsp.fields import load_field, meshcodec
from deepcsp.fields.files import read_weights, write_weights
from deepcsp.fields.query import FORMAT, FORMAT_VERSION


def _values(field) -> dict[str, torch.Tensor]:
    enc = field.module.encoder
    return {"values": enc.values.detach(), "coarse": enc.coarse.values.detach(), "fine": enc.fine.detach()}


def test_mesh_fit_round_trip_within_the_quantisation_bound(tiny_field, tmp_path):
    path = tiny_field.save(tmp_path / "f.safetensors")
    header = read_weights(path, "deepcsp field", FORMAT, FORMAT_VERSION)[1]
    assert header["compressed"]["encoder.values"]["codec"] == meshcodec.CODEC
    assert header["compressed"]["encoder.coarse.values"]["codec"] == meshcodec.CODEC
    loaded = load_field(path)
    bound = tiny_field.module.encoder.h / 256 * 1.0001
    for key, before in _values(tiny_field).items():
        after = _values(loaded)[key]
        assert after.shape == before.shape, key
        assert after.numel() == 0 or float((after - before).abs().max()) <= bound, key
    assert loaded.value_error == pytest.approx(0.5 * np.sqrt(3) * tiny_field.module.encoder.h / 128)


def test_mesh_codec_beats_second_differences_and_survives_a_second_save(tiny_field, tmp_path):
    mesh_path = tiny_field.save(tmp_path / "mesh.safetensors")
    loaded = load_field(mesh_path)
    again = loaded.save(tmp_path / "again.safetensors")  # a loaded field keeps its triangles
    assert again.stat().st_size <= 1.02 * mesh_path.stat().st_size
    loaded.module.encoder.source = None
    plain = loaded.save(tmp_path / "plain.safetensors")
    assert mesh_path.stat().st_size < 0.8 * plain.stat().st_size, (mesh_path.stat().st_size, plain.stat().st_size)


def test_values_the_mesh_does_not_predict_are_kept_by_the_residuals():
    """Values off the mesh (an optimised field, say) still come back within step / 2."""
    rng = np.random.default_rng(0)
    v = np.array([[-0.3, -0.3, 0.0], [0.3, -0.3, 0.0], [0.0, 0.3, 0.0]], dtype=np.float32)
    f = np.array([[0, 1, 2]])
    res, half, step = 9, 0.5, 1e-3
    ids = np.sort(rng.choice(res**3, 300, replace=False))
    pos = meshcodec.lattice_positions(ids, res, half)
    exact = meshcodec._predict(pos, meshcodec.triangles(v, f), np.zeros(len(ids), dtype=np.int64))
    values = exact + rng.normal(0, 0.01, exact.shape) * (rng.random((len(ids), 1)) < 0.3)
    src = meshcodec.MeshSource(v, f, {})
    blob, spec = meshcodec.encode(values, ids, res, half, src, np.zeros(len(ids), dtype=np.int64), step)
    out, faces = meshcodec.decode(blob, spec, ids, half, v, f, limit=2**30)
    assert np.abs(out - values).max() <= step / 2 + 1e-6
    assert (faces == 0).all()


def test_lattice_neighbours_only_within_rows():
    res = 4
    ids = np.array([3, 4, 5, 9, 20])  # 3 ends a row, 4 starts the next one
    nb = meshcodec.lattice_neighbours(ids, res)
    assert nb[1, 0] == -1  # 4 = (0, 1, 0): its k-1 neighbour would be 3, which is another row
    assert nb[2, 0] == 1  # 5 after 4
    assert nb[3, 1] == 2  # 9 = (0, 2, 1): j-1 is 5
    assert nb[4, 2] == 1  # 20 = (1, 1, 0): i-1 is 4


def _edit(path, out, edit):
    tensors, header = read_weights(path, "deepcsp field", FORMAT, FORMAT_VERSION)
    edit(tensors, header)
    write_weights(out, tensors, header)


@pytest.mark.parametrize(
    "what, edit, needle",
    [
        ("no mesh", lambda t, h: (t.pop("source_mesh.zlib"), h["compressed"].pop("source_mesh")), "stores no mesh"),
        (
            "mesh sizes",
            lambda t, h: h["compressed"]["source_mesh"].__setitem__("n_faces", 10**9),
            "source_mesh: would inflate to 12000000000 bytes",
        ),
        (
            "lattice",
            lambda t, h: h["compressed"]["encoder.values"].__setitem__("lattice", 7),
            "encoder.values: values on a lattice of 7",
        ),
        (
            "sections",
            lambda t, h: h["compressed"]["encoder.values"].__setitem__("sections", [1, 2, 3]),
            "encoder.values: section sizes do not match",
        ),
    ],
)
def test_damaged_mesh_coded_files_are_refused(tiny_field, tmp_path, what, edit, needle):
    path = tiny_field.save(tmp_path / "f.safetensors")
    bad = tmp_path / "bad.safetensors"
    _edit(path, bad, edit)
    with pytest.raises(DeepCSPError, match=needle) as info:
        load_field(bad)
    assert "\n" not in str(info.value) and str(bad) in str(info.value)


def test_triangle_index_out_of_range_is_refused():
    v = np.array([[0, 0, 0], [1, 0, 0], [0, 1, 0]], dtype=np.float32)
    f = np.array([[0, 1, 2]])
    ids = np.array([0, 1, 2])
    values = np.zeros((3, 3))
    blob, spec = meshcodec.encode(values, ids, 4, 0.5, meshcodec.MeshSource(v, f, {}), np.zeros(3, np.int64), 1e-3)
    with pytest.raises(ValueError, match="triangle index outside"):
        meshcodec.decode(blob, spec, ids, 0.5, v, f[:0], limit=2**20)


def test_a_finely_tessellated_flat_sheet_keeps_second_differences(tmp_path):
    """Its values are linear, so second differences store them in fewer bytes than its mesh."""
    from deepcsp.fields import FieldConfig
    from deepcsp.fit import FitConfig, fit_surface
    from deepcsp.io.surface import surface_from_arrays

    n = 80
    u = np.linspace(0.0, 1.0, n)
    v = np.stack(np.meshgrid(u, u, indexing="ij"), -1).reshape(-1, 2)
    v = np.concatenate([v, 0.01 * np.sin(3 * v[:, :1])], 1)  # gently bent: not exactly planar
    i = np.arange(n - 1)[:, None] * n + np.arange(n - 1)[None]
    f = np.concatenate([np.stack([i, i + n, i + 1], -1), np.stack([i + 1, i + n, i + n + 1], -1)]).reshape(-1, 3)
    cfg = FitConfig(max_steps=0, eval_points=0, field=FieldConfig(resolution=48, coarse_resolution=16))
    field = fit_surface(surface_from_arrays(v, f), cfg).field
    path = field.save(tmp_path / "sheet.safetensors")
    header = read_weights(path, "deepcsp field", FORMAT, FORMAT_VERSION)[1]
    assert header["compressed"]["encoder.values"]["codec"] == "delta2-q"
    assert "source_mesh" not in header["compressed"]
    assert float((load_field(path).module.encoder.values - field.module.encoder.values).abs().max()) <= (
        field.module.encoder.h / 256 * 1.0001
    )
