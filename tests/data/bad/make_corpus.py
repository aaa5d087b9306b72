"""Regenerate the bad-input corpus in this folder: ``python tests/data/bad/make_corpus.py``.

Every file here must make ``deepcsp.io.load_surface`` raise ``DeepCSPError`` (and the CLI print
one line and exit with code 2). ``EXPECTED`` maps each file to a word its message must contain;
``tests/test_io.py`` checks both. The files are small and committed; this script only documents
how they were made (it is deterministic).
"""

from __future__ import annotations

import io
import struct
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent

#: file name -> a fragment the error message must contain (lower case).
EXPECTED: dict[str, str] = {
    "unknown_extension.abc": "unknown format",
    "no_suffix": "unknown format",
    "empty.obj": "empty",
    "empty.npy": "empty",
    "truncated.obj": "no faces",
    "truncated.ply": "truncated",
    "truncated.stl": "truncated",
    "truncated.off": "truncated",
    "truncated.glb": "truncated",
    "truncated.npy": "elements",
    "truncated.npz": "truncated",
    "garbage.obj": "not a valid .obj",
    "garbage.ply": "not a valid .ply",
    "garbage.stl": "not a valid .stl",
    "garbage.off": "not a valid .off",
    "garbage.glb": "not a valid .glb",
    "garbage.npy": "not a valid .npy",
    "garbage.npz": "not a valid .npz",
    "garbage.xyz": "cannot be read",
    "text.xyz": "cannot be read",
    "bad_json.gltf": "gltf json",
    "missing_buffer.gltf": "missing not_here.bin",
    "zero_faces.obj": "no faces",
    "zero_faces.off": "no faces",
    "zero_faces.stl": "no faces",
    "zero_points.ply": "no triangles",
    "zero_points.xyz": "no points",
    "zero_points.npy": "no vertices or points",
    "zero_points.npz": "no vertices or points",
    "no_arrays.npz": "no arrays",
    "nan.obj": "nan or inf",
    "inf.off": "nan or inf",
    "nan.ply": "nan or inf",
    "nan.npy": "nan or inf",
    "inf.xyz": "nan or inf",
    "degenerate.obj": "degenerate",
    "degenerate.ply": "degenerate",
    "coincident_cloud.xyz": "degenerate",
    "out_of_range.obj": "out of bounds",
    "two_columns.xyz": "3 columns",
    "wrong_shape.npy": "shape (n, 3)",
    "wrong_shape_1d.npy": "shape (n, 3)",
    "wrong_shape.npz": "shape (n, 3)",
    "strings.npy": "expected numbers",
    "pickled.npy": "cannot be read",
    "garbage.las": "not a valid .las",
    "garbage.laz": "not a valid .laz",
    "truncated.las": "truncated",
    "truncated_header.las": "truncated",
    "zero_points.las": "no points",
    "bad_scale.las": "scale",
    "unknown_point_format.las": "point data format 11",
    "version_2.las": "only las 1.x",
    "coincident_cloud.las": "degenerate",
    "compressed_garbage.las": "laz",
}


def _npy(a: np.ndarray, allow_pickle: bool = False) -> bytes:
    buf = io.BytesIO()
    np.save(buf, a, allow_pickle=allow_pickle)
    return buf.getvalue()


def _npz(**arrays: np.ndarray) -> bytes:
    buf = io.BytesIO()
    np.savez(buf, **arrays)
    return buf.getvalue()


def las_bytes(
    points: np.ndarray,
    version: tuple[int, int] = (1, 2),
    point_format: int = 0,
    scale: tuple[float, float, float] = (0.001, 0.001, 0.001),
    offset: tuple[float, float, float] = (0.0, 0.0, 0.0),
    record_pad: int = 0,
    gap: int = 0,
    count: int | None = None,
) -> bytes:
    """A LAS file of ``points`` written by hand from the ASPRS layout (public header block,
    ``gap`` bytes standing in for variable-length records, then records of the format's length plus
    ``record_pad``, each starting with x, y, z as scaled int32)."""
    record_bytes = {0: 20, 1: 28, 3: 34, 6: 30, 7: 36, 10: 67, 11: 20}[point_format & 0x3F] + record_pad
    header_bytes = 375 if version[1] >= 4 else 235 if version[1] == 3 else 227
    n = len(points) if count is None else count
    ints = np.round((np.asarray(points, np.float64) - offset) / scale).astype("<i4")
    head = bytearray(header_bytes)
    head[0:4] = b"LASF"
    head[24:26] = bytes(version)
    struct.pack_into("<HII", head, 94, header_bytes, header_bytes + gap, 0)
    struct.pack_into("<BHI", head, 104, point_format, record_bytes, n if n < 2**32 else 0)
    struct.pack_into("<3d3d", head, 131, *scale, *offset)
    if version[1] >= 4:
        struct.pack_into("<Q", head, 247, n)
    records = np.zeros((len(points), record_bytes), np.uint8)
    records[:, :12] = ints.view(np.uint8).reshape(len(points), 12)
    return bytes(head) + b"\0" * gap + records.tobytes()


def _mesh_bytes(suffix: str) -> bytes:
    import trimesh

    m = trimesh.creation.icosphere(subdivisions=1)
    data = m.export(file_type=suffix)
    return data if isinstance(data, bytes) else data.encode()


def files() -> dict[str, bytes]:
    rng = np.random.default_rng(0)
    garbage = rng.bytes(256)
    pts = rng.random((20, 3))
    out: dict[str, bytes] = {
        "unknown_extension.abc": b"v 0 0 0\n",
        "no_suffix": b"v 0 0 0\n",
        "empty.obj": b"",
        "empty.npy": b"",
        "truncated.npy": _npy(pts)[:200],
        "truncated.npz": _npz(points=pts)[:300],
        "garbage.xyz": garbage,
        "text.xyz": b"hello world again\n",
        "bad_json.gltf": b'{"asset": {"version": "2.0"}, "meshes": [',
        "missing_buffer.gltf": (
            b'{"asset":{"version":"2.0"},"buffers":[{"uri":"not_here.bin","byteLength":36}],'
            b'"bufferViews":[{"buffer":0,"byteLength":36}],"accessors":[{"bufferView":0,'
            b'"componentType":5126,"count":3,"type":"VEC3","max":[1,1,0],"min":[0,0,0]}],'
            b'"meshes":[{"primitives":[{"attributes":{"POSITION":0}}]}],"nodes":[{"mesh":0}],'
            b'"scenes":[{"nodes":[0]}],"scene":0}'
        ),
        "zero_faces.obj": b"v 0 0 0\nv 1 0 0\nv 0 1 0\nv 0 0 1\n",
        "zero_faces.off": b"OFF\n4 0 0\n0 0 0\n1 0 0\n0 1 0\n0 0 1\n",
        "zero_faces.stl": b"\0" * 80 + struct.pack("<I", 0),
        "zero_points.ply": b"ply\nformat ascii 1.0\nelement vertex 0\nproperty float x\nproperty float y\n"
        b"property float z\nend_header\n",
        "zero_points.xyz": b"# x y z\n",
        "zero_points.npy": _npy(np.zeros((0, 3))),
        "zero_points.npz": _npz(points=np.zeros((0, 3))),
        "no_arrays.npz": _npz(),
        "nan.obj": b"v 0 0 0\nv 1 0 nan\nv 0 1 0\nv 0 0 1\nf 1 2 3\nf 1 3 4\n",
        "inf.off": b"OFF\n3 1 0\n0 0 0\n1 0 inf\n0 1 0\n3 0 1 2\n",
        "nan.ply": b"ply\nformat ascii 1.0\nelement vertex 4\nproperty float x\nproperty float y\n"
        b"property float z\nend_header\n0 0 0\n1 0 0\nnan 1 0\n0 0 1\n",
        "nan.npy": _npy(np.array([[0, 0, 0], [1, np.nan, 0], [0, 1, 0], [0, 0, 1.0]])),
        "inf.xyz": b"0 0 0\n1 0 0\n0 -inf 0\n0 0 1\n",
        "degenerate.obj": b"v 0 0 0\nv 1 0 0\nv 2 0 0\nv 3 0 0\nf 1 2 3\nf 2 3 4\nf 1 2 4\n",
        "degenerate.ply": b"ply\nformat ascii 1.0\nelement vertex 3\nproperty float x\nproperty float y\n"
        b"property float z\nelement face 2\nproperty list uchar int vertex_indices\nend_header\n"
        b"0 0 0\n1 0 0\n0 1 0\n3 0 0 1\n3 1 2 2\n",
        "coincident_cloud.xyz": b"0 0 0\n0 0 0\n0 0 0\n0 0 0\n0 0 0\n",
        "out_of_range.obj": b"v 0 0 0\nv 1 0 0\nv 0 1 0\nf 1 2 7\n",
        "two_columns.xyz": b"0 0\n1 0\n0 1\n",
        "wrong_shape.npy": _npy(pts[:, :2]),
        "wrong_shape_1d.npy": _npy(pts[:, 0]),
        "wrong_shape.npz": _npz(points=pts.reshape(-1, 4, 3)),
        "strings.npy": _npy(np.array([["a", "b", "c"]] * 4)),
        "pickled.npy": _npy(np.array([{"x": 1}, None], dtype=object), allow_pickle=True),
    }
    for suffix in ("obj", "ply", "stl", "off", "glb"):
        data = _mesh_bytes(suffix)
        if suffix == "obj":  # a text file cut inside its vertex block: no faces survive
            data = data[: data.index(b"\nf ") // 2]
        else:
            data = data[: len(data) // 2]
        out[f"truncated.{suffix}"] = data
        out[f"garbage.{suffix}"] = garbage
    out["garbage.npy"] = garbage
    out["garbage.npz"] = garbage
    out["garbage.las"] = garbage
    out["garbage.laz"] = garbage
    out["truncated.las"] = las_bytes(pts)[:400]
    out["truncated_header.las"] = las_bytes(pts)[:120]
    out["zero_points.las"] = las_bytes(pts[:0])
    out["bad_scale.las"] = las_bytes(pts)
    out["bad_scale.las"] = out["bad_scale.las"][:139] + struct.pack("<d", 0.0) + out["bad_scale.las"][147:]  # y scale 0
    out["unknown_point_format.las"] = las_bytes(pts, point_format=11)
    out["version_2.las"] = las_bytes(pts, version=(2, 0))
    out["coincident_cloud.las"] = las_bytes(np.ones((5, 3)))
    out["compressed_garbage.las"] = las_bytes(pts, point_format=0x80 | 3)  # says LAZ, holds plain records
    assert set(out) == set(EXPECTED), set(out) ^ set(EXPECTED)
    return out


def main() -> None:
    for name, data in files().items():
        (HERE / name).write_bytes(data)


if __name__ == "__main__":
    main()
