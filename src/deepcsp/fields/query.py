"""Query API shared by every field: closest points, distances and directions in the input's own
coordinates, batched in chunks with bounded memory, on CPU or CUDA.

* :class:`NeuralField` wraps a fitted network and its normalisation; saved as one
  ``.safetensors`` file whose header metadata holds the JSON config (no pickles anywhere).
* :class:`ExactField` wraps the exact BVH oracle of a mesh, with the same interface, so render
  and extract can be tested without training.
"""

from __future__ import annotations

import zlib
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from deepcsp.constants import MAX_INFLATED_BYTES
from deepcsp.errors import DeepCSPError
from deepcsp.fields import codec, diffgeo, meshcodec
from deepcsp.fields.batched import QUERY_CHUNK, as_points, map_rows, normalized_batches
from deepcsp.fields.files import check_finite, read_weights, write_weights
from deepcsp.fields.modules import FieldConfig, _n_out, build_module, synced_config
from deepcsp.geometry.closest import make_oracle
from deepcsp.geometry.inside import is_watertight, outside_mask
from deepcsp.geometry.normalize import Normalization

FORMAT = "deepcsp-field"
FORMAT_VERSION = 3
"""Version 3 (values of mesh fits predicted from the mesh) reads versions 1 and 2 too."""


@dataclass
class QueryResult:
    """``closest_points : (N, 3)`` and ``distances : (N,)``, in the input's coordinates."""

    closest_points: np.ndarray
    distances: np.ndarray


class Field:
    """Base of all fields. Subclasses implement :meth:`closest_points_normalized`."""

    kind: str = "csp"
    normalization: Normalization
    device: torch.device = torch.device("cpu")
    chunk: int = QUERY_CHUNK
    """Points per batch of this field's queries (:data:`deepcsp.fields.batched.QUERY_CHUNK`)."""
    closed: bool = False
    """True when the field knows inside from outside (fitted to, or built from, a closed mesh):
    then :meth:`signed_distances` works, normals can be oriented outward, and extraction uses
    true signs (watertight output)."""

    value_error: float = 0.0
    """Bound (normalised units) on the error of the closest points the field interpolates from
    stored values, where it is known: a band grid read back from a quantised file is off by up to
    half a quantisation step per component (``sqrt(3) / 2`` steps); 0 for fields in memory. The
    direction ``x - CSP(x)`` of a point within a few such errors of the surface is mostly error
    (the close-sheet merge aims its probes otherwise there)."""

    grid_cell: float | None = None
    """Spacing (normalised units) of the grid the field interpolates its closest points from (fitted
    band-grid CSP fields), or None: its errors are relative to that spacing, which extraction uses to
    pick the grid that decides a mesh's topology."""

    def closest_points_normalized(self, x: torch.Tensor) -> torch.Tensor:
        """Closest points ``(N, 3)`` for normalised points ``x : (N, 3)`` (a tensor on ``device``)."""
        raise NotImplementedError

    def distances_normalized(self, x: torch.Tensor) -> torch.Tensor:
        """Unsigned distances ``(N,)`` in normalised units."""
        return (x - self.closest_points_normalized(x)).norm(dim=1)

    def signed_distances_normalized(self, x: torch.Tensor) -> torch.Tensor:
        """Signed distances ``(N,)`` in normalised units, negative inside (closed fields only)."""
        raise ValueError(
            "this field has no inside/outside (closed=False): it was fitted to an open surface or a point cloud, "
            "or saved by an older deepcsp"
        )

    def _map(self, points, fn) -> list[np.ndarray]:
        return [fn(x) for x in normalized_batches(self, as_points(points), self.chunk)]

    def query(self, points) -> QueryResult:
        """Closest points and distances of ``points : (N, 3)`` in input coordinates."""
        arr = as_points(points)
        cps = [
            self.normalization.to_input(c.detach().double()).cpu()
            for c in self._map(arr, self.closest_points_normalized)
        ]
        cp = torch.cat(cps) if cps else torch.zeros((0, 3), dtype=torch.float64)
        dist = (torch.as_tensor(arr, dtype=torch.float64) - cp).norm(dim=1)
        return QueryResult(closest_points=cp.numpy(), distances=dist.numpy())

    def closest_points(self, points) -> np.ndarray:
        """``(N, 3)`` closest surface points, input coordinates."""
        return self.query(points).closest_points

    def distances(self, points) -> np.ndarray:
        """``(N,)`` unsigned distances, input units."""
        return self.query(points).distances

    def signed_distances(self, points) -> np.ndarray:
        """``(N,)`` signed distances in input units, negative inside; only for closed fields
        (:attr:`closed`), ValueError otherwise."""
        arr = as_points(points)
        if not self.closed:
            self.signed_distances_normalized(torch.zeros((0, 3)))  # raises with the reason
        sides = [torch.sign(s.detach()).cpu().numpy() for s in self._map(arr, self.signed_distances_normalized)]
        side = np.concatenate(sides) if sides else np.zeros(0)
        return np.where(side < 0, -1.0, 1.0) * self.distances(arr)

    def directions(self, points) -> np.ndarray:
        """``(N, 3)`` unit vectors from the closest point to the query, ``(p - CSP(p)) / |p - CSP(p)|``
        (zero where the query lies on the surface)."""
        arr = as_points(points)
        q = self.query(arr)
        d = arr - q.closest_points
        n = np.linalg.norm(d, axis=1, keepdims=True)
        return np.where(n > 0, d / np.maximum(n, 1e-300), 0.0)

    def normals(self, points, method: str = "auto", **kwargs) -> np.ndarray:
        """``(N, 3)`` unit normals at the closest points: outward for closed fields, else towards
        the query side (``orient="auto"|"outward"|"query"``); ``method`` is ``auto`` (``corners``
        for band grids), ``corners``, ``direction``, ``jacobian`` or ``udf_gradient``. See
        :func:`deepcsp.fields.diffgeo.normals`."""
        return diffgeo.normals(self, points, method=method, **kwargs)

    def curvatures(self, points, **kwargs):
        """Principal curvatures, directions, mean and Gaussian curvature (input units) at the
        closest points. See :func:`deepcsp.fields.diffgeo.curvatures`."""
        return diffgeo.curvatures(self, points, **kwargs)


class NeuralField(Field):
    """A fitted network (``CSPNet`` or ``UDFNet``) with its normalisation."""

    def __init__(
        self,
        module: torch.nn.Module,
        config: FieldConfig,
        normalization: Normalization,
        device: str | torch.device = "cpu",
        meta: dict | None = None,
    ):
        self.module = module.to(device).eval()
        self.config = synced_config(config, module)
        self.kind = config.kind
        self.normalization = normalization
        self.device = torch.device(device)
        self.meta = dict(meta or {})

    @property
    def closed(self) -> bool:  # type: ignore[override]
        return bool(getattr(self.module, "has_sides", False))

    @property
    def grid_cell(self) -> float | None:  # type: ignore[override]
        if self.config.encoding != "band_grid" or self.kind != "csp":
            # a UDF's gradient closest points are not accurate enough to refine a mesh by
            # projection (measured: Chamfer-L1 +37-46%, more loops), so it keeps the full grid
            return None
        return 2.0 * self.config.half / (self.config.resolution - 1)

    def signed_distances_normalized(self, x: torch.Tensor) -> torch.Tensor:
        if not self.closed:
            return super().signed_distances_normalized(x)
        if not len(x):
            return x[:, 0].clone()
        with torch.no_grad():
            return map_rows(self.module.signed_distance, x, self.chunk)

    def closest_points_normalized(self, x: torch.Tensor) -> torch.Tensor:
        if not len(x):
            return x.clone()
        if self.kind == "udf":  # the UDF's closest points need autograd (its gradient)
            return map_rows(lambda c: self.module(c).detach(), x, self.chunk)
        with torch.no_grad():
            return map_rows(self.module, x, self.chunk)

    def distances_normalized(self, x: torch.Tensor) -> torch.Tensor:
        if self.kind == "udf":
            with torch.no_grad():
                return self.module.distance(x).abs()
        return super().distances_normalized(x)

    def to(self, device) -> "NeuralField":
        self.module.to(device)
        self.device = torch.device(device)
        return self

    def save(self, path: str | Path) -> Path:
        """Write weights (safetensors) with config and normalisation in its header, atomically."""
        return save_field(path, self.module, self.config, self.normalization, self.meta)


class OracleField(Field):
    """Closest points straight from an oracle in normalised coordinates (anything with
    ``query(points) -> ClosestPoints``, e.g. a :class:`~deepcsp.geometry.pointset.PointSetSurface`),
    with the query API of every field: extraction and rendering without a fitted grid."""

    kind = "exact"

    def __init__(self, oracle, normalization: Normalization, device: str = "cpu"):
        self.oracle = oracle
        self.normalization = normalization
        self.device = torch.device(device)

    def closest_points_normalized(self, x: torch.Tensor) -> torch.Tensor:
        res = self.oracle.query(x.detach().cpu().double().numpy())
        return torch.as_tensor(res.points, dtype=x.dtype, device=x.device)


class ExactField(Field):
    """The exact closest-point oracle of a mesh or cloud given in input coordinates."""

    kind = "exact"

    def __init__(
        self,
        vertices: np.ndarray,
        faces: np.ndarray | None,
        normalization: Normalization | None = None,
        device: str = "cpu",
    ):
        self.normalization = normalization or Normalization.from_points(np.asarray(vertices))
        self.vertices_normalized = self.normalization.to_normalized(np.asarray(vertices, np.float64))
        self.faces = faces
        self.oracle = make_oracle(self.vertices_normalized, faces)
        self.device = torch.device(device)
        self.closed = faces is not None and is_watertight(self.vertices_normalized, faces)

    def closest_points_normalized(self, x: torch.Tensor) -> torch.Tensor:
        res = self.oracle.query(x.detach().cpu().double().numpy())
        return torch.as_tensor(res.points, dtype=x.dtype, device=x.device)

    def signed_distances_normalized(self, x: torch.Tensor) -> torch.Tensor:
        if not self.closed:
            return super().signed_distances_normalized(x)
        pts = x.detach().cpu().double().numpy()
        res = self.oracle.query(pts)
        out = outside_mask(self.vertices_normalized, self.faces, pts)
        return torch.as_tensor(np.where(out, res.distances, -res.distances), dtype=x.dtype, device=x.device)


def save_field(
    path,
    module: torch.nn.Module,
    config: FieldConfig,
    normalization: Normalization,
    meta: dict | None = None,
    half: bool = True,
) -> Path:
    """Save a field as one ``.safetensors`` file (atomic: temp file + rename); band-grid values
    are quantised to 1/128 of a fine cell (:mod:`deepcsp.fields.codec`) unless ``half`` is False
    (then stored as float32)."""
    path = Path(path)
    config = synced_config(config, module)
    header = {
        "format": FORMAT,
        "version": FORMAT_VERSION,
        "config": config.to_dict(),
        "normalization": normalization.to_dict(),
        "meta": meta or {},
    }
    tensors = {k: v.detach().cpu().contiguous() for k, v in module.state_dict().items()}
    compressed = {}
    if half and config.encoding == "band_grid":
        # Grid values (displacements of at most ~0.1 normalised units, a few for the coarse grid)
        # are quantised to 1/128 of a fine cell: predicted from the mesh they were collocated on
        # where the grid knows it (deepcsp.fields.meshcodec), otherwise zlib'd second differences
        # along runs of consecutive vertices (deepcsp.fields.codec); masks are zlib'd bytes.
        step = module.encoder.h / codec.STEPS_PER_CELL
        source = module.encoder.source if config.kind == "csp" and config.output == "displacement" else None
        values = {k: tensors.pop(k) for k in [k for k in tensors if k.endswith("values")]}
        tensors.update(_encode_all_values(values, module.encoder, source, step, compressed))
        for k in [k for k in tensors if k.endswith("_mask")]:
            tensors[k + ".zlib"], compressed[k] = _compress(tensors.pop(k))
    header["compressed"] = compressed
    return write_weights(path, tensors, header)


def load_field(path, device: str = "cpu") -> NeuralField:
    """Load a field saved by :func:`save_field`; never unpickles. Raises DeepCSPError on a
    missing, corrupted or mismatched file."""
    path = Path(path)
    tensors, header = read_weights(path, "deepcsp field", FORMAT, FORMAT_VERSION)
    try:
        config = FieldConfig.from_dict(header["config"])  # bounded sizes (FieldConfig checks them)
        expected = _compressed_shapes(config)
        module = build_module(config)
        specs = header.get("compressed", {})
        mesh = _source_mesh(tensors, specs)
        face_ids = {}
        # masks first: the values' grid vertices follow from them
        for key in sorted((k for k in specs if k != "source_mesh"), key=lambda k: _is_values(specs[k])):
            spec = specs[key]
            try:
                blob = tensors.pop(key + ".zlib")
                if _is_values(spec):
                    ids, res = _value_ids(key, tensors, module.encoder, config)
                    tensors[key], fids = _decode_values(blob, spec, expected.get(key), ids, res, config.half, mesh)
                    if fids is not None:
                        face_ids[key.removeprefix("encoder.")] = fids
                else:
                    tensors[key] = _decompress(blob, spec, expected.get(key))
            except (KeyError, ValueError, TypeError, zlib.error) as exc:
                raise ValueError(f"{key}: {exc}") from None
        normalization = Normalization.from_dict(header["normalization"])
        module.load_state_dict(tensors, strict=True)
        if mesh is not None:  # saved again, it keeps the compact storage
            module.encoder.source = meshcodec.MeshSource(mesh[0], mesh[1], face_ids)
    except Exception as exc:
        raise DeepCSPError(f"field header or weights do not match ({' '.join(str(exc).split())[:300]})", path) from None
    check_finite(tensors, path)
    field = NeuralField(module, config, normalization, device=device, meta=header.get("meta", {}))
    field.value_error = _quantisation_error(specs)
    return field


def _quantisation_error(specs: dict) -> float:
    """Bound on the error of one stored vector of quantised values (``sqrt(3) / 2`` of the largest
    quantisation step in ``specs``; 0 when nothing was quantised)."""
    steps = [float(s["step"]) for s in specs.values() if _is_values(s)]
    return 0.5 * float(np.sqrt(3.0)) * max(steps, default=0.0)


def _compress(t: torch.Tensor) -> tuple[torch.Tensor, dict]:
    """zlib of a tensor's bytes, shuffled so that byte k of every element is contiguous."""
    a = t.numpy()
    return _bytes_tensor(zlib.compress(codec.shuffled(a), 6)), {"shape": list(a.shape), "dtype": str(a.dtype)}


def _compressed_shapes(config: FieldConfig) -> dict[str, list[int]]:
    """Shapes the compressed tensors of a band-grid field must have, from its (checked) config."""
    if config.encoding != "band_grid":
        return {}
    c = _n_out(config)
    n, fine, coarse = config.n_active, config.resolution**3, config.coarse_resolution**3
    return {
        "encoder.values": [n, c],
        "encoder.fine_values": [config.n_subvertices, c],
        "encoder.refined_mask": [(fine + 7) // 8],
        "encoder.coarse.values": [coarse, c],
        "encoder.active_mask": [(fine + 7) // 8],
        "encoder.outside_mask": [(n + 7) // 8],
        "encoder.coarse_outside_mask": [(coarse + 7) // 8],
    }


def _is_values(spec) -> bool:
    """Whether a compression spec describes quantised band-grid values (either codec)."""
    return isinstance(spec, dict) and spec.get("codec") in (codec.CODEC, meshcodec.CODEC)


def _bytes_tensor(blob: bytes) -> torch.Tensor:
    return torch.from_numpy(np.frombuffer(blob, dtype=np.uint8).copy())


def _encode_all_values(values: dict, encoder, source, step: float, specs: dict) -> dict[str, torch.Tensor]:
    """Compressed tensors of a band grid's value tensors ``values`` (their specs go into ``specs``):
    predicted from the mesh's triangles where ``source`` has one per value (the mesh stored once),
    unless second differences store them in fewer bytes (flat sheets, whose values are linear), else
    by second differences."""
    ids = {k: _value_ids(k, {}, encoder) for k in values}
    plain = {}

    def second_differences(k):
        if k not in plain:
            plain[k] = codec.encode(values[k], codec.runs(ids[k][0]), step)
        return plain[k]

    coded = {}
    for k, v in values.items():
        fids = source.face_ids.get(k.removeprefix("encoder.")) if source is not None else None
        if fids is not None and len(fids) == len(ids[k][0]) and v.dim() == 2 and v.shape[1] == 3:
            blob, spec = meshcodec.encode(v.numpy(), *ids[k], encoder.half, source, fids, step)
            coded[k] = (_bytes_tensor(blob), spec)
    if coded:
        blob, mesh_spec = meshcodec.pack_mesh(source.vertices, source.faces)
        mesh_bytes = len(blob) + sum(coded[k][0].numel() for k in coded)
        # the stored mesh is most of the bytes: compare with second differences
        if len(blob) < mesh_bytes / 2 or mesh_bytes < sum(second_differences(k)[0].numel() for k in coded):
            specs["source_mesh"] = mesh_spec
            out = {"source_mesh.zlib": _bytes_tensor(blob)}
        else:
            coded, out = {}, {}
    else:
        out = {}
    for k in values:
        out[k + ".zlib"], specs[k] = coded[k] if k in coded else second_differences(k)
    return out


def _source_mesh(tensors: dict, specs: dict) -> tuple[np.ndarray, np.ndarray] | None:
    """The mesh stored for mesh-predicted values, popped from ``tensors`` (None when there is none)."""
    if "source_mesh" not in specs:
        return None
    try:
        blob = tensors.pop("source_mesh.zlib").numpy().tobytes()
        return meshcodec.unpack_mesh(blob, specs["source_mesh"], MAX_INFLATED_BYTES)
    except (KeyError, ValueError, TypeError, zlib.error) as exc:
        raise ValueError(f"source_mesh: {exc}") from None


def _decode_values(blob: torch.Tensor, spec: dict, expected, ids: np.ndarray, res: int, half: float, mesh):
    """``(values, triangle per value or None)`` of a quantised value tensor (either codec)."""
    if expected is None:
        raise ValueError(f"unexpected compressed tensor (spec {str(spec)[:80]})")
    if [int(n) for n in spec["shape"]] != list(expected):
        raise ValueError(f"compressed tensor has shape {list(spec['shape'])[:4]}, the config says {list(expected)}")
    if spec["codec"] == codec.CODEC:
        return _decompress(blob, spec, expected, codec.runs(ids)), None
    if mesh is None:
        raise ValueError("values predicted from a mesh, but the file stores no mesh")
    if int(spec["lattice"]) != res:
        raise ValueError(f"values on a lattice of {spec['lattice']}, the grid has {res}")
    values, fids = meshcodec.decode(blob.numpy().tobytes(), spec, ids, half, *mesh, limit=MAX_INFLATED_BYTES)
    return torch.from_numpy(values), fids


def _value_ids(key: str, tensors: dict, encoder, config: FieldConfig | None = None) -> tuple[np.ndarray, int]:
    """Sorted flat ids of the entries of a band grid's value tensor ``key`` and the vertices per
    axis of their lattice: its active vertices, refined-level vertices or coarse vertices, from the
    (decoded) masks in ``tensors`` or, when saving (``config`` None), from ``encoder`` itself. With
    ``config`` (loading) the masks' counts must match it."""
    if key == "encoder.coarse.values":
        return np.arange(encoder.coarse_res**3), encoder.coarse_res
    if key == "encoder.values":
        if config is None:
            return encoder.active.cpu().numpy(), encoder.res
        ids = np.flatnonzero(
            np.unpackbits(tensors["encoder.active_mask"].numpy().astype(np.uint8), count=encoder.res**3)
        )
        if len(ids) != config.n_active:
            raise ValueError(f"active_mask marks {len(ids)} vertices, the config says {config.n_active}")
        return ids, encoder.res
    if key == "encoder.fine_values":
        if config is None:
            cells = encoder.refined.cpu()
        else:
            cells = torch.from_numpy(
                np.flatnonzero(
                    np.unpackbits(tensors["encoder.refined_mask"].numpy().astype(np.uint8), count=encoder.res**3)
                )
            )
            if len(cells) != config.n_refined:
                raise ValueError(f"refined_mask marks {len(cells)} cells, the config says {config.n_refined}")
        ids = torch.unique(encoder._inner_sub_vertices(cells)[0]).numpy()
        return ids, (encoder.res - 1) * max(encoder.refine, 1) + 1
    raise ValueError("no grid vertices for this tensor")


def _decompress(
    blob: torch.Tensor, spec: dict, expected: list[int] | None = None, runs: np.ndarray | None = None
) -> torch.Tensor:
    """Inverse of :func:`_compress` (or of :func:`deepcsp.fields.codec.encode`, given the value
    runs). The shape in ``spec`` must equal ``expected`` (from the config) and stay under
    :data:`MAX_INFLATED_BYTES` before anything is allocated; zlib inflates at most that many bytes
    (a crafted stream cannot run further)."""
    if expected is None:
        raise ValueError(f"unexpected compressed tensor (spec {str(spec)[:80]})")
    quantised = spec.get("codec") == codec.CODEC
    if "codec" in spec and not quantised:
        raise ValueError(f"unknown codec {str(spec['codec'])[:40]!r}")
    dtype = np.dtype("uint32") if quantised else np.dtype(spec["dtype"])
    if dtype not in (np.dtype("float16"), np.dtype("float32"), np.dtype("uint8"), np.dtype("uint32")):
        raise ValueError(f"unsupported compressed dtype {spec['dtype']!r}")
    shape = [int(n) for n in spec["shape"]]
    if shape != list(expected):
        raise ValueError(f"compressed tensor has shape {shape[:4]}, the config says {list(expected)}")
    count = int(np.prod(shape, dtype=np.int64)) if shape else 1
    raw = codec.inflate(blob.numpy().tobytes(), count * dtype.itemsize, MAX_INFLATED_BYTES)
    if quantised:
        return codec.decode(
            raw,
            shape,
            runs if runs is not None else np.zeros(shape[0] if shape else 1, dtype=bool),
            float(spec["step"]),
        )
    return torch.from_numpy(codec.unshuffled(raw, dtype, count).reshape(shape))
