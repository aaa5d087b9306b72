"""``load_surface``: one entry point for meshes and point clouds, with clear errors.

Meshes: OBJ, PLY, OFF, STL, GLB/GLTF (scenes are flattened into one mesh with their
transforms applied). Point clouds: PLY without faces, XYZ (text, 3+ columns), NPY (N, 3),
NPZ (first array of shape (N, 3), or one named ``points``), LAS (and LAZ with laspy:
:mod:`deepcsp.io.las`).
"""

from __future__ import annotations

import io as _pyio
import logging
import warnings
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from deepcsp import _atomic
from deepcsp.constants import DEGENERATE_AREA_REL, MAX_ELEMENTS
from deepcsp.errors import DeepCSPError, DeepCSPWarning
from deepcsp.geometry.cleanup import drop_unused_vertices, face_areas
from deepcsp.geometry.normalize import Normalization
from deepcsp.io.las import read_las
from deepcsp.io.ply import float32_error, needs_doubles, ply_bytes

MESH_SUFFIXES = (".obj", ".ply", ".off", ".stl", ".glb", ".gltf")
CLOUD_SUFFIXES = (".ply", ".xyz", ".npy", ".npz", ".las", ".laz")
#: Suffixes :func:`save_mesh` and :func:`save_points` write.
MESH_OUTPUT_SUFFIXES = (".ply", ".obj", ".off", ".stl", ".glb")
POINT_OUTPUT_SUFFIXES = (".ply", ".xyz", ".npy")


@dataclass
class Surface:
    """A validated surface in its input coordinates.

    Attributes
    ----------
    vertices : (V, 3) float64
        Mesh vertices, or the points of a point cloud.
    faces : (F, 3) int64 or None
        Triangles; ``None`` for a point cloud.
    path : Path or None
        Where it was read from.
    normalization : Normalization
        Maps these coordinates into the normalised cube (and back).
    """

    vertices: np.ndarray
    faces: np.ndarray | None
    path: Path | None = None
    normalization: Normalization = field(default=None)  # type: ignore[assignment]

    def __post_init__(self) -> None:
        if self.normalization is None:
            self.normalization = Normalization.from_points(self.vertices)

    @property
    def is_mesh(self) -> bool:
        return self.faces is not None

    @property
    def normalized_vertices(self) -> np.ndarray:
        """(V, 3) vertices in the normalised cube."""
        return self.normalization.to_normalized(self.vertices)

    @property
    def bbox_diagonal(self) -> float:
        """Bounding-box diagonal in normalised units."""
        v = self.normalized_vertices
        return float(np.linalg.norm(v.max(0) - v.min(0)))

    def content_hash(self) -> str:
        """SHA-1 of the geometry (vertices and faces), for caches."""
        import hashlib

        h = hashlib.sha1(np.ascontiguousarray(self.vertices, dtype=np.float64).tobytes())
        if self.faces is not None:
            h.update(np.ascontiguousarray(self.faces, dtype=np.int64).tobytes())
        return h.hexdigest()


def load_surface(path: str | Path, max_elements: int = MAX_ELEMENTS, kind: str = "auto") -> Surface:
    """Read and validate a mesh or point cloud.

    Parameters
    ----------
    path
        File to read; the format is chosen by the suffix.
    max_elements
        Refuse inputs with more faces (or points) than this, before building large arrays.
    kind
        ``"auto"`` (a PLY without faces is a cloud), ``"mesh"`` or ``"points"``
        (a mesh file read as its vertices).

    Raises
    ------
    DeepCSPError
        Naming the file and the problem: missing, unknown suffix, empty, unreadable or
        truncated, no faces or points, non-finite coordinates, only degenerate faces, too large.
    """
    path = Path(path)
    vertices, faces = _read(path, max_elements, kind)
    return _validated(path, vertices, faces, max_elements)


def load_points(path: str | Path, max_elements: int = MAX_ELEMENTS) -> np.ndarray:
    """Query points ``(N, 3)`` float64 from a cloud or mesh file (a mesh gives its vertices).

    Unlike :func:`load_surface` any non-empty set of finite points is fine (one point, or points
    on a line): queries need no extent. Raises DeepCSPError naming the file otherwise."""
    path = Path(path)
    vertices, _ = _read(path, max_elements, "points")
    vertices = np.asarray(vertices, dtype=np.float64)
    if vertices.ndim != 2 or vertices.shape[1] != 3 or len(vertices) == 0:
        raise DeepCSPError(f"expected points of shape (N, 3) with N >= 1, found {vertices.shape}", path)
    if len(vertices) > max_elements:
        raise DeepCSPError(
            f"has {len(vertices)} points, more than the limit of {max_elements} (raise max_elements)", path
        )
    bad = ~np.isfinite(vertices).all(axis=1)
    if bad.any():
        raise DeepCSPError(
            f"has {int(bad.sum())} points with NaN or inf coordinates (first: row {int(np.argmax(bad))})", path
        )
    return vertices


def _read(path: Path, max_elements: int, kind: str) -> tuple[np.ndarray, np.ndarray | None]:
    """Vertices and faces (None for clouds) of a file, with the file-level checks."""
    if not path.exists():
        raise DeepCSPError("file not found", path)
    if path.is_dir():
        raise DeepCSPError("is a folder, expected a mesh or point-cloud file", path)
    suffix = path.suffix.lower()
    if suffix not in MESH_SUFFIXES + CLOUD_SUFFIXES:
        raise DeepCSPError(
            f"unknown format {suffix or '(no suffix)'!r}; expected one of "
            + ", ".join(sorted(set(MESH_SUFFIXES + CLOUD_SUFFIXES))),
            path,
        )
    if kind not in ("auto", "mesh", "points"):
        raise ValueError(f"kind must be 'auto', 'mesh' or 'points', got {kind!r}")
    if path.stat().st_size == 0:
        raise DeepCSPError("file is empty", path)
    _check_header(path, suffix, max_elements)

    if suffix in (".xyz", ".npy", ".npz", ".las", ".laz"):
        vertices = read_las(path, max_elements) if suffix in (".las", ".laz") else _read_cloud(path, suffix)
        faces = None
        if kind == "mesh":
            raise DeepCSPError("is a point cloud, but a mesh was required", path)
    else:
        vertices, faces = _read_mesh(path, suffix, allow_cloud=kind == "points" or suffix in CLOUD_SUFFIXES)
        if kind == "points":
            faces = None
        elif faces is None and kind == "mesh":
            raise DeepCSPError("has no faces (it is a point cloud), but a mesh was required", path)
    return vertices, faces


_NPY_MAGIC = b"\x93NUMPY"
_ZIP_MAGICS = (b"PK\x03\x04", b"PK\x05\x06")  # a zip with members, an empty zip
_TEXT_BYTES = bytes([9, 10, 12, 13]) + bytes(range(32, 256))  # all but control characters


def _check_header(path: Path, suffix: str, max_elements: int) -> None:
    """Cheap checks on the first bytes: magic numbers, and element counts declared in headers
    (NPY shape, PLY ``element`` lines, binary STL count) against ``max_elements``, so a file too
    large for the memory settings is refused before its arrays are built."""
    with open(path, "rb") as fh:
        head = fh.read(4096)
    count, what = None, "points"
    if suffix == ".npy":
        if not head.startswith(_NPY_MAGIC):
            raise DeepCSPError("is not a valid .npy file (bad magic bytes)", path)
        try:  # header only, no data; an unparsable header is left for np.load to report
            with open(path, "rb") as fh:
                version = np.lib.format.read_magic(fh)
                read = np.lib.format.read_array_header_1_0 if version == (1, 0) else np.lib.format.read_array_header_2_0
                shape = read(fh)[0]
            count = int(shape[0]) if len(shape) else None
        except Exception:
            count = None
    elif suffix == ".npz":
        if not head.startswith(_ZIP_MAGICS):
            raise DeepCSPError("is not a valid .npz file (not a zip archive)", path)
    elif suffix == ".ply":
        if not head.startswith(b"ply"):
            raise DeepCSPError("is not a valid .ply file (missing 'ply' header)", path)
        counts = {}
        header = head.split(b"end_header")[0] if b"end_header" in head else b""  # a partial header is skipped
        for line in header.splitlines():
            parts = line.split()
            if len(parts) == 3 and parts[0] == b"element" and parts[2].isdigit():
                counts[parts[1].decode("ascii", "replace")] = int(parts[2])
        if counts.get("face"):
            count, what = counts["face"], "faces"
        elif "vertex" in counts:
            count = counts["vertex"]
    elif suffix == ".stl" and not head[:5].lower().startswith(
        b"solid"
    ):  # binary: 80-byte header, count, 50 bytes a face
        size = path.stat().st_size
        if size < 84:
            raise DeepCSPError(
                f"is truncated or not a valid .stl file ({size} bytes, shorter than a binary STL header)", path
            )
        n = int(np.frombuffer(head[80:84], dtype="<u4")[0])
        if size < 84 + 50 * n:
            raise DeepCSPError(
                f"is truncated or not a valid .stl file (declares {n} triangles, {84 + 50 * n} bytes, but has {size})",
                path,
            )
        count, what = n, "faces"
    elif suffix == ".obj" and head.translate(
        None, _TEXT_BYTES
    ):  # a text decoder may read bytes as text without a vertex
        raise DeepCSPError("is not a valid .obj file (control bytes in a text format)", path)
    elif suffix == ".gltf":
        import json

        try:
            json.loads(path.read_bytes())
        except (ValueError, UnicodeDecodeError) as exc:
            raise DeepCSPError(f"is not valid glTF JSON ({_short(exc)})", path) from None
    if count is not None and count > max_elements:
        raise DeepCSPError(f"declares {count} {what}, more than the limit of {max_elements} (raise max_elements)", path)


def _read_cloud(path: Path, suffix: str) -> np.ndarray:
    try:
        if suffix == ".xyz":
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                data = np.loadtxt(path, ndmin=2, comments="#")
            if data.size == 0:
                raise DeepCSPError("contains no points", path)
            if data.shape[1] < 3:
                raise DeepCSPError(f"expected at least 3 columns (x y z), found {data.shape[1]}", path)
            return data[:, :3]
        if suffix == ".npy":
            data = np.load(path, allow_pickle=False)
        else:
            with np.load(path, allow_pickle=False) as npz:
                if len(npz.files) == 0:
                    raise DeepCSPError("archive holds no arrays", path)
                key = "points" if "points" in npz.files else npz.files[0]
                data = npz[key]
    except DeepCSPError:
        raise
    except ValueError as exc:
        raise DeepCSPError(f"cannot be read as a point cloud ({_short(exc)})", path) from None
    except Exception as exc:  # zipfile, EOF, pickle refusals
        raise DeepCSPError(f"is truncated or not a valid {suffix} file ({_short(exc)})", path) from None
    data = np.asarray(data)
    if data.dtype.kind not in "fiu":
        raise DeepCSPError(f"holds {data.dtype} data, expected numbers", path)
    if data.ndim != 2 or data.shape[1] != 3:
        raise DeepCSPError(f"expected an array of shape (N, 3), found {data.shape}", path)
    return data


def _read_mesh(path: Path, suffix: str, allow_cloud: bool = True) -> tuple[np.ndarray, np.ndarray | None]:
    """Vertices and faces (``None`` for a cloud, only when ``allow_cloud``: a PLY without faces,
    or any mesh file read with ``kind="points"``)."""
    import trimesh

    logging.getLogger("trimesh").setLevel(logging.ERROR)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            loaded = trimesh.load(path, process=False, maintain_order=True)
    except ImportError:  # trimesh guesses a text encoding with an optional package: not text
        raise DeepCSPError(f"is truncated or not a valid {suffix} file (undecodable bytes)", path) from None
    except Exception as exc:
        raise DeepCSPError(f"is truncated or not a valid {suffix} file ({_short(exc)})", path) from None
    no_faces = "contains no faces" + (
        "" if suffix in CLOUD_SUFFIXES else f" (a {suffix} file must hold a triangle mesh)"
    )
    if isinstance(loaded, trimesh.Scene):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            parts = loaded.dump()  # every instance, with its node transform applied
        meshes = [g for g in parts if isinstance(g, trimesh.Trimesh) and len(g.faces)]
        if not meshes:
            clouds = [g for g in parts if isinstance(g, trimesh.PointCloud) and len(g.vertices)]
            if clouds and allow_cloud:
                return np.concatenate([np.asarray(c.vertices) for c in clouds]), None
            raise DeepCSPError("contains no triangles" if allow_cloud else no_faces, path)
        loaded = trimesh.util.concatenate(meshes)
    if isinstance(loaded, trimesh.PointCloud):
        if not allow_cloud:
            raise DeepCSPError(no_faces, path)
        return np.asarray(loaded.vertices, dtype=np.float64), None
    if not isinstance(loaded, trimesh.Trimesh):
        raise DeepCSPError(f"holds a {type(loaded).__name__}, expected a triangle mesh or point cloud", path)
    vertices = np.asarray(loaded.vertices, dtype=np.float64)
    faces = np.asarray(loaded.faces, dtype=np.int64)
    if faces.size == 0:
        if allow_cloud and len(vertices):
            return vertices, None
        raise DeepCSPError(no_faces, path)
    return vertices, faces


def _validated(path: Path | None, vertices: np.ndarray, faces: np.ndarray | None, max_elements: int) -> Surface:
    n = len(faces) if faces is not None else len(vertices)
    if n > max_elements:
        what = "faces" if faces is not None else "points"
        raise DeepCSPError(f"has {n} {what}, more than the limit of {max_elements} (raise max_elements)", path)
    vertices = np.asarray(vertices, dtype=np.float64)
    if len(vertices) == 0:
        raise DeepCSPError("contains no vertices or points", path)
    bad = ~np.isfinite(vertices).all(axis=1)
    if bad.any():
        raise DeepCSPError(
            f"has {int(bad.sum())} vertices with NaN or inf coordinates (first: row {int(np.argmax(bad))})", path
        )
    extent = vertices.max(0) - vertices.min(0)
    if faces is None:
        if len(vertices) < 4 or float(extent.max()) == 0.0:
            raise DeepCSPError(
                f"point cloud is degenerate ({len(vertices)} points, extent {float(extent.max()):g})", path
            )
        return Surface(vertices=vertices, faces=None, path=path)
    faces = np.asarray(faces, dtype=np.int64)
    if faces.ndim != 2 or faces.shape[1] != 3:
        raise DeepCSPError(f"faces must have shape (F, 3), found {faces.shape}", path)
    if faces.min() < 0 or faces.max() >= len(vertices):
        raise DeepCSPError(f"face indices out of range [0, {len(vertices)})", path)
    areas = face_areas(vertices, faces)
    diag2 = float((extent**2).sum())
    good = areas > DEGENERATE_AREA_REL * max(diag2, 1e-300)
    if not good.any():
        raise DeepCSPError(f"all {len(faces)} faces are degenerate (zero area)", path)
    vertices, faces = drop_unused_vertices(vertices, faces[good])
    return Surface(vertices=vertices, faces=faces, path=path)


def surface_from_arrays(vertices, faces=None, name: str = "<arrays>") -> Surface:
    """Validate in-memory arrays the same way files are validated."""
    v = np.asarray(vertices)
    if v.ndim != 2 or v.shape[1] != 3:
        raise DeepCSPError(f"vertices must have shape (V, 3), got {v.shape}", name)
    return _validated(Path(name), v, None if faces is None else np.asarray(faces), MAX_ELEMENTS)


def save_mesh(
    path: str | Path, vertices: np.ndarray, faces: np.ndarray, vertex_normals: np.ndarray | None = None
) -> Path:
    """Write a triangle mesh (format by suffix: PLY, OBJ, OFF, STL, GLB) atomically. PLY keeps
    double-precision positions where 32-bit floats would move them (:mod:`deepcsp.io.ply`); STL and
    GLB hold only 32-bit floats, and a warning says how far they move such a mesh."""
    import trimesh

    path = Path(path)
    suffix = path.suffix.lower()
    if suffix not in MESH_OUTPUT_SUFFIXES:
        raise DeepCSPError("unknown output mesh format; use .ply, .obj, .off, .stl or .glb", path)
    if suffix == ".ply":
        _atomic.write_bytes(path, ply_bytes(vertices, faces, vertex_normals))
        return path
    if suffix in (".stl", ".glb") and needs_doubles(vertices):
        warnings.warn(
            f"{path}: {suffix} holds 32-bit floats, which move this mesh's vertices by up to "
            f"{float32_error(vertices):.3g} (far from the origin for its size); .ply, .obj or .off keep them",
            DeepCSPWarning,
            stacklevel=2,
        )
    mesh = trimesh.Trimesh(
        vertices=np.asarray(vertices), faces=np.asarray(faces), vertex_normals=vertex_normals, process=False
    )
    data = mesh.export(file_type=path.suffix.lower()[1:])
    _atomic.write_bytes(path, data if isinstance(data, bytes) else data.encode())
    return path


def save_points(path: str | Path, points: np.ndarray, normals: np.ndarray | None = None) -> Path:
    """Write a point cloud (PLY, XYZ or NPY by suffix) atomically, at the precision the points
    need (PLY and XYZ: that of 32-bit floats where it moves no point, else of doubles)."""
    path = Path(path)
    suffix = path.suffix.lower()
    points = np.asarray(points, dtype=np.float64)
    if suffix == ".npy":
        buf = _pyio.BytesIO()
        np.save(buf, points)
        _atomic.write_bytes(path, buf.getvalue())
    elif suffix == ".xyz":
        cols = points if normals is None else np.concatenate([points, normals], axis=1)
        buf = _pyio.StringIO()
        np.savetxt(buf, cols, fmt="%.17g" if needs_doubles(points) else "%.9g")
        _atomic.write_text(path, buf.getvalue())
    elif suffix == ".ply":
        _atomic.write_bytes(path, ply_bytes(points, normals=normals))
    else:
        raise DeepCSPError("unknown output point format; use .ply, .xyz or .npy", path)
    return path


def _short(exc: BaseException) -> str:
    msg = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
    if isinstance(exc, (KeyError, FileNotFoundError)):  # e.g. a glTF buffer that is not there
        msg = f"missing {msg}"
    return msg[:160]
