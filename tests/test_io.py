"""Loading, validation and writing of meshes and point clouds; the bad-input corpus; normalisation."""

from __future__ import annotations

import importlib.util
import io
import warnings

import numpy as np
import pytest
import trimesh
from conftest import BAD_DIR

from deepcsp.errors import DeepCSPError
from deepcsp.geometry.normalize import Normalization
from deepcsp.io import load_surface, save_mesh, save_points
from deepcsp.io.surface import surface_from_arrays


def _corpus():
    spec = importlib.util.spec_from_file_location("make_corpus", BAD_DIR / "make_corpus.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


EXPECTED = _corpus().EXPECTED


# --------------------------------------------------------------------------- bad inputs


def test_corpus_on_disk_matches_the_list():
    on_disk = {p.name for p in BAD_DIR.iterdir() if p.name != "make_corpus.py" and not p.name.startswith(".")}
    on_disk.discard("__pycache__")
    assert on_disk == set(EXPECTED)


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_bad_input_raises_one_error_naming_the_file(name):
    path = BAD_DIR / name
    with pytest.raises(DeepCSPError) as info:
        load_surface(path)
    exc = info.value
    assert exc.path == path
    assert str(exc).startswith(str(path) + ": ")
    assert EXPECTED[name] in exc.problem.lower(), exc.problem
    assert "\n" not in str(exc)


def test_missing_file(tmp_path):
    with pytest.raises(DeepCSPError, match="file not found") as info:
        load_surface(tmp_path / "nope.obj")
    assert "nope.obj" in str(info.value)


def test_folder_is_refused(tmp_path):
    (tmp_path / "shape.obj").mkdir()
    with pytest.raises(DeepCSPError, match="folder"):
        load_surface(tmp_path / "shape.obj")


def test_too_large_mesh_after_reading(tmp_path, tetrahedron):
    path = save_mesh(tmp_path / "tet.obj", *tetrahedron)
    with pytest.raises(DeepCSPError, match="4 faces, more than the limit of 3") as info:
        load_surface(path, max_elements=3)
    assert info.value.path == path
    assert load_surface(path, max_elements=4).faces.shape == (4, 3)


@pytest.mark.parametrize("suffix", [".ply", ".stl"])
def test_too_large_mesh_refused_from_its_header(tmp_path, tetrahedron, suffix, monkeypatch):
    path = save_mesh(tmp_path / f"tet{suffix}", *tetrahedron)

    def no_read(*a, **k):  # the header check must refuse it before the mesh is parsed
        raise AssertionError("mesh was parsed")

    monkeypatch.setattr(trimesh, "load", no_read)
    with pytest.raises(DeepCSPError, match="declares 4 faces, more than the limit of 3"):
        load_surface(path, max_elements=3)


def test_too_large_cloud_refused_from_npy_header(tmp_path, rng):
    path = save_points(tmp_path / "p.npy", rng.random((50, 3)))
    with pytest.raises(DeepCSPError, match="declares 50 points, more than the limit of 49"):
        load_surface(path, max_elements=49)
    path = save_points(tmp_path / "p.xyz", rng.random((50, 3)))
    with pytest.raises(DeepCSPError, match="50 points, more than the limit of 49"):
        load_surface(path, max_elements=49)


def test_kind_argument(tmp_path, tetrahedron, rng):
    mesh = save_mesh(tmp_path / "tet.obj", *tetrahedron)
    cloud = save_points(tmp_path / "p.npy", rng.random((10, 3)))
    assert load_surface(mesh, kind="points").faces is None
    with pytest.raises(DeepCSPError, match="mesh was required"):
        load_surface(cloud, kind="mesh")
    ply_cloud = save_points(tmp_path / "p.ply", rng.random((10, 3)))
    with pytest.raises(DeepCSPError, match="mesh was required"):
        load_surface(ply_cloud, kind="mesh")
    with pytest.raises(ValueError, match="kind"):
        load_surface(mesh, kind="cloud")


def test_vertex_only_obj_reads_as_points_only_when_asked():
    with pytest.raises(DeepCSPError, match="no faces"):
        load_surface(BAD_DIR / "zero_faces.obj")
    s = load_surface(BAD_DIR / "zero_faces.obj", kind="points")
    assert s.faces is None and s.vertices.shape == (4, 3)


def test_partly_degenerate_faces_are_dropped_with_unused_vertices():
    v = np.array([[0, 0, 0], [1, 0, 0], [0, 1, 0], [2, 0, 0], [5, 5, 5]], float)
    f = np.array([[0, 1, 2], [0, 1, 3], [1, 1, 2]])  # second collinear, third repeats a vertex
    s = surface_from_arrays(v, f)
    assert s.faces.shape == (1, 3)
    assert len(s.vertices) == 3
    np.testing.assert_array_equal(s.vertices[s.faces[0]], v[[0, 1, 2]])


def test_arrays_are_validated_like_files():
    with pytest.raises(DeepCSPError, match="shape"):
        surface_from_arrays(np.zeros((4, 2)))
    with pytest.raises(DeepCSPError, match="NaN or inf"):
        surface_from_arrays(np.array([[0, 0, 0], [1, 0, 0], [0, 1, np.inf]]), [[0, 1, 2]])
    with pytest.raises(DeepCSPError, match="out of range"):
        surface_from_arrays(np.eye(3), [[0, 1, 3]])


# --------------------------------------------------------------------------- round trips


def _triangles(v, f):
    """Triangles as a sorted (F, 9) array, independent of vertex order and duplication."""
    tri = np.round(np.asarray(v)[np.asarray(f)], 6).reshape(len(f), 9)
    return tri[np.lexsort(tri.T[::-1])]


@pytest.mark.parametrize("suffix", [".obj", ".ply", ".off", ".stl", ".glb"])
def test_mesh_round_trip(tmp_path, suffix):
    m = trimesh.creation.icosphere(subdivisions=2, radius=0.7)
    v = np.asarray(m.vertices) + [1.0, -2.0, 3.0]
    f = np.asarray(m.faces)
    path = save_mesh(tmp_path / f"shape{suffix}", v, f)
    s = load_surface(path)
    assert s.is_mesh and s.path == path
    assert len(s.faces) == len(f)
    if suffix != ".stl":  # STL stores triangles, not shared vertices
        assert len(s.vertices) == len(v)
    atol = 1e-6 if suffix in (".glb", ".stl") else 1e-7  # float32 formats
    np.testing.assert_allclose(_triangles(s.vertices, s.faces), _triangles(v, f), atol=atol * 10)
    # winding is kept: same signed volume
    vol = trimesh.Trimesh(s.vertices, s.faces, process=False).volume
    np.testing.assert_allclose(vol, m.volume, rtol=1e-5)


@pytest.mark.parametrize("suffix", [".ply", ".xyz", ".npy"])
def test_points_round_trip(tmp_path, rng, suffix):
    p = rng.normal(size=(200, 3)) * [1.0, 2.0, 3.0]
    path = save_points(tmp_path / f"cloud{suffix}", p)
    s = load_surface(path)
    assert s.faces is None and not s.is_mesh
    rtol = {".ply": 1e-6, ".xyz": 1e-7, ".npy": 0}[suffix]
    np.testing.assert_allclose(s.vertices, p, rtol=rtol, atol=1e-7 if suffix != ".npy" else 0)


def test_points_with_normals_xyz_reads_first_three_columns(tmp_path, rng):
    p, n = rng.random((30, 3)), rng.normal(size=(30, 3))
    s = load_surface(save_points(tmp_path / "c.xyz", p, normals=n))
    np.testing.assert_allclose(s.vertices, p, atol=1e-7)


def test_npz_clouds(tmp_path, rng):
    p, q = rng.random((40, 3)), rng.random((30, 3))
    for name, arrays, want in [("named.npz", {"other": q, "points": p}, p), ("first.npz", {"a": p, "b": q}, p)]:
        buf = io.BytesIO()
        np.savez(buf, **arrays)
        (tmp_path / name).write_bytes(buf.getvalue())
        np.testing.assert_array_equal(load_surface(tmp_path / name).vertices, want)


def test_float32_and_int_clouds_are_read_as_float64(tmp_path):
    for dtype in (np.float32, np.int32):
        a = (np.arange(30).reshape(10, 3) % 7).astype(dtype)
        path = tmp_path / "p.npy"
        path.write_bytes(_npy(a))  # save_points always writes float64; this keeps the dtype
        s = load_surface(path)
        assert s.vertices.dtype == np.float64
        np.testing.assert_array_equal(s.vertices, a)


@pytest.mark.parametrize(
    "version, point_format, pad, gap", [((1, 2), 0, 0, 0), ((1, 2), 1, 5, 54), ((1, 3), 3, 0, 0), ((1, 4), 6, 8, 120)]
)
def test_las_points_are_scaled_and_offset(tmp_path, rng, version, point_format, pad, gap):
    """A LAS file written by hand from the ASPRS layout (records longer than their format's, bytes
    of variable-length records before them): the points come back to the file's quantum."""
    p = rng.normal(size=(300, 3)) * [30.0, 20.0, 5.0] + [512_000.0, 4_100_000.0, 250.0]
    scale, offset = (0.001, 0.002, 0.0005), (512_000.0, 4_100_000.0, 0.0)
    data = _corpus().las_bytes(p, version, point_format, scale, offset, record_pad=pad, gap=gap)
    path = tmp_path / "scan.las"
    path.write_bytes(data)
    s = load_surface(path)
    assert s.faces is None and s.vertices.dtype == np.float64
    np.testing.assert_allclose(s.vertices, p, rtol=0, atol=0.5 * max(scale) * (1 + 1e-9))


def test_las_refused_from_its_header_and_never_a_mesh(tmp_path, rng):
    path = tmp_path / "scan.las"
    path.write_bytes(_corpus().las_bytes(rng.random((50, 3)), (1, 4), count=5_000_000_000))
    with pytest.raises(DeepCSPError, match="declares 5000000000 points, more than the limit"):
        load_surface(path)  # refused from its header, before the (missing) records are read
    path.write_bytes(_corpus().las_bytes(rng.random((50, 3))))
    with pytest.raises(DeepCSPError, match="scan.las: is a point cloud, but a mesh was required"):
        load_surface(path, kind="mesh")


def test_compressed_las_without_laspy_says_what_to_install(tmp_path, rng, monkeypatch):
    import sys

    monkeypatch.setitem(sys.modules, "laspy", None)  # import laspy -> ImportError
    path = tmp_path / "scan.laz"
    path.write_bytes(_corpus().las_bytes(rng.random((50, 3)), point_format=0x80 | 3))
    with pytest.raises(DeepCSPError, match=r"scan.laz: holds compressed \(LAZ\) points: install .*deepcsp\[las\]"):
        load_surface(path)


@pytest.mark.parametrize("suffix", [".las", ".laz"])
@pytest.mark.parametrize("version, point_format", [("1.2", 0), ("1.2", 3), ("1.3", 1), ("1.4", 6), ("1.4", 10)])
def test_las_and_laz_written_by_laspy(tmp_path, rng, suffix, version, point_format):
    """Files from an independent writer (laspy, with lazrs for LAZ; in the dev extra), with an extra
    per-point attribute: the same points as laspy reads."""
    laspy = pytest.importorskip("laspy")
    if suffix == ".laz" and not laspy.LazBackend.detect_available():
        pytest.skip("laspy has no LAZ backend (pip install lazrs)")
    p = rng.normal(size=(2_000, 3)) * [30.0, 20.0, 5.0] + [512_000.0, 4_100_000.0, 250.0]
    header = laspy.LasHeader(point_format=point_format, version=version)
    header.scales, header.offsets = [0.001, 0.001, 0.001], [512_000.0, 4_100_000.0, 0.0]
    header.add_extra_dim(laspy.ExtraBytesParams(name="reflectance", type=np.float32))
    las = laspy.LasData(header)
    las.x, las.y, las.z = p.T
    path = tmp_path / f"scan{suffix}"
    las.write(path)
    back = laspy.read(path)
    want = np.stack([np.asarray(back.x), np.asarray(back.y), np.asarray(back.z)], axis=1)
    s = load_surface(path)
    np.testing.assert_array_equal(s.vertices, want)
    np.testing.assert_allclose(s.vertices, p, rtol=0, atol=0.0005 * (1 + 1e-9))


@pytest.mark.parametrize("suffix", [".las", ".laz"])
@pytest.mark.parametrize("point_format", [1, 6])
def test_withheld_and_noise_points_are_left_out_with_a_warning(tmp_path, rng, suffix, point_format):
    """LAS defines withheld points as deleted and classes 7 / 18 as noise: they are left out, and a
    DeepCSPWarning counts them; a file of nothing else is an error."""
    laspy = pytest.importorskip("laspy")
    if suffix == ".laz" and not laspy.LazBackend.detect_available():
        pytest.skip("laspy has no LAZ backend (pip install lazrs)")
    from deepcsp.errors import DeepCSPWarning

    p = rng.normal(size=(1_000, 3)) * 10.0
    header = laspy.LasHeader(point_format=point_format, version="1.4" if point_format >= 6 else "1.2")
    header.scales = [0.001, 0.001, 0.001]
    las = laspy.LasData(header)
    las.x, las.y, las.z = p.T
    classes = np.full(1_000, 2, np.uint8)  # ground
    classes[:30], classes[30:50] = 7, 18
    las.classification = classes
    withheld = np.zeros(1_000, bool)
    withheld[50:55] = True
    las.withheld = withheld
    path = tmp_path / f"scan{suffix}"
    las.write(path)
    with pytest.warns(DeepCSPWarning, match=r"scan\.la.: left out 55 of 1000 points, withheld or classified as noise"):
        s = load_surface(path)
    np.testing.assert_allclose(s.vertices, p[55:], rtol=0, atol=0.0005 * (1 + 1e-9))
    las.classification = np.full(1_000, 7, np.uint8)
    las.write(path)
    with pytest.raises(DeepCSPError, match="all its 1000 points are withheld or classified as noise"):
        load_surface(path)


def _npy(a):
    buf = io.BytesIO()
    np.save(buf, a)
    return buf.getvalue()


def test_written_files_keep_georeferenced_coordinates(tmp_path, rng):
    """A scan in UTM metres (northing 4.1e6): 32-bit floats would move its points by up to 0.25 m,
    so PLY positions are written as doubles and XYZ with 17 digits; a mesh near the origin keeps
    32-bit PLY positions (half the bytes)."""
    sphere = trimesh.creation.icosphere(subdivisions=3, radius=20.0)
    v = sphere.vertices + [512_345.678, 4_100_123.456, 250.25]
    back = load_surface(save_mesh(tmp_path / "scan_mesh.ply", v, sphere.faces))
    np.testing.assert_allclose(back.vertices, v, rtol=0, atol=1e-9)
    np.testing.assert_array_equal(back.faces, sphere.faces)
    for suffix in (".ply", ".xyz"):
        path = save_points(tmp_path / f"scan{suffix}", v, normals=sphere.vertex_normals)
        np.testing.assert_allclose(load_surface(path).vertices, v, rtol=0, atol=1e-9)
    assert b"property double x" in (tmp_path / "scan_mesh.ply").read_bytes()[:300]
    with pytest.warns(
        UserWarning, match=r"scan.stl: .stl holds 32-bit floats, which move this mesh's vertices by up to"
    ):
        save_mesh(tmp_path / "scan.stl", v, sphere.faces)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        save_mesh(tmp_path / "scan.obj", v, sphere.faces)  # text with 8 decimals: no warning
        save_mesh(tmp_path / "near.stl", sphere.vertices, sphere.faces)
    np.testing.assert_allclose(load_surface(tmp_path / "scan.obj").vertices, v, rtol=0, atol=1e-8)
    near = save_mesh(tmp_path / "near.ply", sphere.vertices, sphere.faces)
    assert b"property float x" in near.read_bytes()[:300]
    np.testing.assert_allclose(load_surface(near).vertices, sphere.vertices, rtol=0, atol=1e-7 * 40 * 3**0.5)


def test_ply_points_keep_their_normals(tmp_path, rng):
    p, n = rng.random((30, 3)), rng.normal(size=(30, 3))
    n /= np.linalg.norm(n, axis=1, keepdims=True)
    cloud = trimesh.load(save_points(tmp_path / "c.ply", p, normals=n))
    np.testing.assert_allclose(cloud.vertices, p, atol=1e-7)
    got = np.stack([cloud.metadata["_ply_raw"]["vertex"]["data"][k] for k in ("nx", "ny", "nz")], axis=1)
    np.testing.assert_allclose(got, n, atol=1e-7)


def test_unknown_output_suffix(tmp_path, tetrahedron):
    with pytest.raises(DeepCSPError, match="output mesh format"):
        save_mesh(tmp_path / "x.abc", *tetrahedron)
    with pytest.raises(DeepCSPError, match="output point format"):
        save_points(tmp_path / "x.obj", tetrahedron[0])


def test_glb_scene_is_flattened_with_transforms(tmp_path):
    box = trimesh.creation.box(extents=(1.0, 1.0, 1.0))
    scene = trimesh.Scene()
    scene.add_geometry(
        box, node_name="a", geom_name="box", transform=trimesh.transformations.translation_matrix([10, 0, 0])
    )
    rot = trimesh.transformations.rotation_matrix(np.pi / 4, [0, 0, 1])
    scene.add_geometry(box, node_name="b", geom_name="box", transform=rot)  # same geometry, instanced twice
    path = tmp_path / "scene.glb"
    path.write_bytes(scene.export(file_type="glb"))
    s = load_surface(path)
    assert s.faces.shape == (24, 3)
    want = np.concatenate([box.vertices + [10, 0, 0], trimesh.transform_points(box.vertices, rot)])
    got = s.vertices
    # every expected vertex is present (float32 storage)
    d = np.linalg.norm(got[:, None] - want[None], axis=2).min(0)
    assert d.max() < 1e-6
    np.testing.assert_allclose(got.max(0)[0], 10.5, atol=1e-6)


def test_cesium_truck_glb_has_13_parts(meshes_dir):
    path = meshes_dir / "open" / "cesium_milk_truck.glb"
    s = load_surface(path)
    assert s.faces.shape == (3624, 3)
    merged = trimesh.Trimesh(s.vertices, s.faces, process=False)
    merged.merge_vertices(merge_tex=True, merge_norm=True)
    assert len(merged.vertices) == 1840
    parts = trimesh.graph.connected_components(merged.edges, nodes=np.arange(len(merged.vertices)))
    assert len(parts) == 13  # vertex-connected parts, as counted in MANIFEST.tsv
    # node transforms are applied: the wheels (one geometry, instanced at two nodes) appear twice
    scene = trimesh.load(path)
    per_node = sum(len(scene.geometry[scene.graph[n][1]].faces) for n in scene.graph.nodes_geometry)
    assert per_node == 3624 > sum(len(g.faces) for g in scene.geometry.values())


def test_dev_meshes_load(meshes_dir):
    import csv

    rows = list(csv.DictReader(open(meshes_dir / "MANIFEST.tsv"), delimiter="\t"))
    for row in rows:
        if int(row["faces"]) > 30_000:
            continue  # keep the test short; large ones go through the same path
        s = load_surface(meshes_dir / row["file"])
        assert len(s.faces) == int(row["faces"]), row["file"]


# --------------------------------------------------------------------------- normalisation and hashing


def test_normalisation_round_trip(rng):
    p = rng.normal(size=(500, 3)) * [3.0, 0.5, 10.0] + [100.0, -5.0, 2.0]
    n = Normalization.from_points(p)
    q = n.to_normalized(p)
    np.testing.assert_allclose(n.to_input(q), p, rtol=0, atol=1e-10)
    extent = q.max(0) - q.min(0)
    np.testing.assert_allclose(extent.max(), 0.8, rtol=1e-12)
    np.testing.assert_allclose((q.max(0) + q.min(0)) / 2, 0.0, atol=1e-12)
    assert np.abs(q).max() <= 0.5
    np.testing.assert_allclose(
        n.distance_to_input(np.linalg.norm(q[0] - q[1])), np.linalg.norm(p[0] - p[1]), rtol=1e-12
    )
    n2 = Normalization.from_dict(n.to_dict())
    assert n2 == n


def test_normalisation_torch_round_trip(rng):
    import torch

    p = rng.normal(size=(50, 3)) * 7
    n = Normalization.from_points(p)
    t = torch.tensor(p, dtype=torch.float64)
    np.testing.assert_allclose(n.to_normalized(t).numpy(), n.to_normalized(p), atol=1e-12)
    np.testing.assert_allclose(n.to_input(n.to_normalized(t)).numpy(), p, atol=1e-10)


def test_normalisation_refuses_degenerate():
    with pytest.raises(ValueError, match="extent"):
        Normalization.from_points(np.ones((5, 3)))


def test_surface_normalised_vertices_map_back(bundled_spot):
    s = load_surface(bundled_spot)
    np.testing.assert_allclose(s.normalization.to_input(s.normalized_vertices), s.vertices, atol=1e-12)
    assert np.abs(s.normalized_vertices).max() <= 0.4 + 1e-12


def test_content_hash(tetrahedron):
    v, f = tetrahedron
    a = surface_from_arrays(v, f)
    assert a.content_hash() == surface_from_arrays(v.copy(), f.copy()).content_hash()
    v2 = v.copy()
    v2[0, 0] += 1e-9
    assert a.content_hash() != surface_from_arrays(v2, f).content_hash()
    assert a.content_hash() != surface_from_arrays(v, f[:, [0, 2, 1]]).content_hash()


def test_load_points_accepts_any_finite_points(tmp_path):
    from deepcsp.io import load_points

    one = tmp_path / "one.npy"
    np.save(one, np.array([[0.1, 0.2, 0.3]]))
    np.testing.assert_array_equal(load_points(one), [[0.1, 0.2, 0.3]])
    line = tmp_path / "line.npy"
    np.save(line, np.array([[0.0, 0.0, 0.0], [1.0, 0.0, 0.0]]))
    assert load_points(line).shape == (2, 3)
    bad = tmp_path / "bad.npy"
    np.save(bad, np.array([[0.0, np.nan, 0.0]]))
    with pytest.raises(DeepCSPError, match="bad.npy.*NaN"):
        load_points(bad)
    flat = tmp_path / "flat.npy"
    np.save(flat, np.zeros((3, 2)))
    with pytest.raises(DeepCSPError, match="flat.npy"):
        load_points(flat)
