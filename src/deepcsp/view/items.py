"""What the viewer shows: inputs loaded once into :class:`ViewItem` (a field with its display mesh,
a mesh, or a point cloud), decimated for display above a stated size, laid out side by side.

A field's display mesh is extracted once (:func:`deepcsp.extract.extract_mesh`) and cached beside
the field file as ``FIELD.view.npz`` with the field's SHA-256 and the resolution, so a refitted
field or another resolution is extracted again. The cache is written atomically and never onto a
file the viewer was given.
"""

from __future__ import annotations

import hashlib
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

import numpy as np

from deepcsp.errors import DeepCSPError

ItemKind = Literal["field", "mesh", "cloud"]
FIELD_SUFFIXES = (".safetensors",)
#: Version of the ``.view.npz`` cache layout.
CACHE_VERSION = 1


@dataclass
class Decimation:
    """Display copy of a mesh or cloud: ``vertices : (V, 3)``, ``faces : (F, 3)`` or None, and
    ``kept`` ``(V,)`` indices into the input points (clouds; None for meshes), with the counts
    before (``n_in``, faces for meshes, points for clouds) and after (``n_shown``)."""

    vertices: np.ndarray
    faces: np.ndarray | None
    kept: np.ndarray | None
    n_in: int
    n_shown: int

    @property
    def reduced(self) -> bool:
        return self.n_shown < self.n_in


def decimate_mesh(vertices: np.ndarray, faces: np.ndarray, max_faces: int) -> Decimation:
    """Decimate a mesh ``vertices : (V, 3)``, ``faces : (F, 3)`` to about ``max_faces`` faces with
    fast-simplification (quadric edge collapse); meshes at or below the limit are returned as is."""
    v = np.asarray(vertices, np.float64)
    f = np.asarray(faces, np.int64)
    if len(f) <= max_faces:
        return Decimation(v, f, None, len(f), len(f))
    try:
        import fast_simplification
    except ImportError:
        raise DeepCSPError(
            f"a mesh of {len(f)} faces is over the display limit of {max_faces} and decimating it needs "
            "fast-simplification: pip install 'deepcsp[view]' (or raise --max-faces)"
        ) from None
    target = 1.0 - max_faces / len(f)
    dv, df = fast_simplification.simplify(v.astype(np.float32), f.astype(np.int32), target_reduction=target)
    return Decimation(np.asarray(dv, np.float64), np.asarray(df, np.int64), None, len(f), len(df))


def subsample_points(points: np.ndarray, max_points: int, seed: int = 0) -> Decimation:
    """A uniform random subset of at most ``max_points`` of ``points : (N, 3)`` (seeded, order kept)."""
    p = np.asarray(points, np.float64)
    if len(p) <= max_points:
        return Decimation(p, None, np.arange(len(p)), len(p), len(p))
    kept = np.sort(np.random.default_rng(seed).choice(len(p), size=max_points, replace=False))
    return Decimation(p[kept], None, kept, len(p), max_points)


@dataclass
class ViewItem:
    """One input as the viewer holds it, in the input's own coordinates.

    Attributes
    ----------
    name : str
        Shown in the page (the file name).
    kind : "field", "mesh" or "cloud"
    vertices, faces : (V, 3) float64, (F, 3) int64 or None
        The full surface: a field's extracted mesh, the mesh, or the cloud (faces None). Metrics
        against a reference use these.
    display : Decimation
        What is drawn (decimated / subsampled above the limits).
    field : deepcsp.fields.query.Field
        Answers probes, slices and traces: the fitted field, or the exact oracle of a mesh or cloud.
    cloud : Decimation or None
        The point cloud a field was fitted to, when its file is still there (display copy).
    path : Path or None
    note : str
        Where the surface came from (e.g. "extracted at 128 in 2.1 s, cached in X").
    offset : (3,) float64
        Translation from the input's coordinates to the page's (side-by-side layout).
    """

    name: str
    kind: ItemKind
    vertices: np.ndarray
    faces: np.ndarray | None
    display: Decimation
    field: object
    cloud: Decimation | None = None
    path: Path | None = None
    note: str = ""
    offset: np.ndarray = field(default_factory=lambda: np.zeros(3))

    @property
    def bounds(self) -> np.ndarray:
        """``(2, 3)`` bounding box (min, max) of :attr:`vertices`, input coordinates."""
        return np.stack([self.vertices.min(0), self.vertices.max(0)])

    @property
    def diagonal(self) -> float:
        lo, hi = self.bounds
        return float(np.linalg.norm(hi - lo))

    def counts(self) -> str:
        """One line of counts, e.g. ``"12,000 faces (shown: 3,001, decimated)"``."""
        what = "points" if self.faces is None else "faces"
        d = self.display
        text = f"{d.n_in:,} {what}" + (
            f" (shown: {d.n_shown:,}, {'subsampled' if self.faces is None else 'decimated'})" if d.reduced else ""
        )
        if self.cloud is not None:
            c = self.cloud
            text += f"; input cloud {c.n_in:,} points" + (f" (shown: {c.n_shown:,})" if c.reduced else "")
        return text


def sha256_of(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def cache_path_for(field_path: Path) -> Path:
    """Where a field's display mesh is cached: ``FIELD.view.npz`` beside it."""
    field_path = Path(field_path)
    return field_path.with_name(field_path.name + ".view.npz")


@dataclass
class FieldMesh:
    """A field's display mesh: ``vertices (V, 3)``, ``faces (F, 3)``, where it came from."""

    vertices: np.ndarray
    faces: np.ndarray
    from_cache: bool
    cache: Path | None
    seconds: float


def _read_cache(cache: Path, digest: str, resolution: int) -> tuple[np.ndarray, np.ndarray] | None:
    """The cached mesh when it matches the field's digest and resolution, else None."""
    try:
        with np.load(cache, allow_pickle=False) as z:
            if (
                int(z["version"]) != CACHE_VERSION
                or str(z["field_sha256"]) != digest
                or int(z["resolution"]) != resolution
            ):
                return None
            v, f = np.asarray(z["vertices"], np.float64), np.asarray(z["faces"], np.int64)
    except Exception:  # missing, truncated or foreign: extract again
        return None
    if (
        v.ndim != 2
        or v.shape[1] != 3
        or f.ndim != 2
        or f.shape[1] != 3
        or len(f) == 0
        or f.min() < 0
        or f.max() >= len(v)
    ):
        return None
    return v, f


def field_display_mesh(field, path: Path | None, resolution: int, protect: frozenset[Path] = frozenset()) -> FieldMesh:
    """The mesh of ``field`` at ``resolution``: read from the cache beside ``path`` when it matches,
    else extracted and cached (atomically; not when the cache path is one of ``protect``, the
    viewer's inputs, nor when there is no ``path`` or the folder is read-only)."""
    import io

    from deepcsp._atomic import write_bytes
    from deepcsp.extract import ExtractConfig, extract_mesh

    t0 = time.perf_counter()
    cache = cache_path_for(path) if path is not None and Path(path).is_file() else None
    digest = sha256_of(Path(path)) if cache is not None else ""
    if cache is not None and cache.resolve() not in protect and cache.exists():
        hit = _read_cache(cache, digest, resolution)
        if hit is not None:
            return FieldMesh(hit[0], hit[1], True, cache, time.perf_counter() - t0)
    res = extract_mesh(field, ExtractConfig(resolution=resolution))
    if len(res.faces) == 0:
        raise DeepCSPError("no surface found in the field (the extracted mesh is empty)", path)
    written = None
    if cache is not None and cache.resolve() not in protect:
        buf = io.BytesIO()
        np.savez(
            buf,
            version=CACHE_VERSION,
            field_sha256=digest,
            resolution=resolution,
            vertices=res.vertices,
            faces=res.faces.astype(np.int32),
        )
        try:
            write_bytes(cache, buf.getvalue())
            written = cache
        except OSError:  # a read-only folder: show the mesh without caching it
            written = None
    return FieldMesh(
        np.asarray(res.vertices, np.float64), np.asarray(res.faces, np.int64), False, written, time.perf_counter() - t0
    )


def item_from_field(
    field,
    name: str,
    resolution: int,
    max_faces: int,
    max_points: int = 500_000,
    path: Path | None = None,
    protect: frozenset[Path] = frozenset(),
    seed: int = 0,
) -> ViewItem:
    """A field with its display mesh (cached beside ``path``) and, when its fit source is a point
    cloud that still exists, that cloud."""
    fm = field_display_mesh(field, path, resolution, protect)
    if fm.from_cache:
        note = f"mesh from cache {fm.cache.name}"
    else:
        note = f"mesh extracted at {resolution} in {fm.seconds:.1f} s" + (
            f", cached in {fm.cache.name}" if fm.cache else ""
        )
    return ViewItem(
        name=name,
        kind="field",
        vertices=fm.vertices,
        faces=fm.faces,
        display=decimate_mesh(fm.vertices, fm.faces, max_faces),
        field=field,
        cloud=_source_cloud(field, path, protect, max_points, seed),
        path=path,
        note=note,
    )


def _source_cloud(field, path: Path | None, protect: frozenset[Path], max_points: int, seed: int) -> Decimation | None:
    """The point cloud a field was fitted to (``meta["fit"]["source"]``), if it is a cloud file that
    still exists and is not shown as an input of its own."""
    from deepcsp.io import load_surface

    source = ((getattr(field, "meta", None) or {}).get("fit") or {}).get("source")
    if not source:
        return None
    cands = [Path(source)] + (
        [Path(path).parent / source] if path is not None and not Path(source).is_absolute() else []
    )
    for cand in cands:
        if cand.is_file() and cand.resolve() not in protect:
            try:
                surface = load_surface(cand)
            except DeepCSPError:
                return None
            return subsample_points(surface.vertices, max_points, seed) if surface.faces is None else None
    return None


def item_from_surface(surface, name: str, max_faces: int, max_points: int, seed: int = 0) -> ViewItem:
    """A mesh or point cloud (:class:`deepcsp.io.Surface`), probed through its exact oracle."""
    from deepcsp.fields.query import ExactField

    exact = ExactField(surface.vertices, surface.faces, surface.normalization)
    if surface.faces is None:
        return ViewItem(
            name=name,
            kind="cloud",
            vertices=surface.vertices,
            faces=None,
            display=subsample_points(surface.vertices, max_points, seed),
            field=exact,
            path=surface.path,
        )
    return ViewItem(
        name=name,
        kind="mesh",
        vertices=surface.vertices,
        faces=surface.faces,
        display=decimate_mesh(surface.vertices, surface.faces, max_faces),
        field=exact,
        path=surface.path,
    )


def load_item(
    path: Path,
    resolution: int = 128,
    max_faces: int = 300_000,
    max_points: int = 500_000,
    protect: frozenset[Path] = frozenset(),
    device: str = "cpu",
    seed: int = 0,
) -> ViewItem:
    """Load a field file (``.safetensors``), a mesh or a point cloud as a :class:`ViewItem`."""
    import deepcsp
    from deepcsp.io import load_surface

    path = Path(path)
    if not path.exists():
        raise DeepCSPError("file not found", path)
    if path.suffix.lower() in FIELD_SUFFIXES:
        return item_from_field(
            deepcsp.load(path, device=device),
            path.name,
            resolution,
            max_faces,
            max_points,
            path=path,
            protect=protect,
            seed=seed,
        )
    return item_from_surface(load_surface(path), path.name, max_faces, max_points, seed)


#: A scene whose largest coordinate exceeds this many times its diagonal is shown moved to the origin
#: (:func:`global_shift`): the page draws in 32-bit floats, which at a UTM northing of 4.1e6 m step by
#: 0.5 m.
FAR_FROM_ORIGIN = 1000.0


def global_shift(bounds: list[np.ndarray]) -> np.ndarray:
    """A translation ``(3,)`` that brings a scene of boxes ``(2, 3)`` far from the origin (see
    ``FAR_FROM_ORIGIN``: georeferenced scans) to it, as a point-cloud viewer's global shift does: minus
    the scene's centre rounded to its order of magnitude; zeros for a scene near the origin. Where
    things are drawn changes, never what is reported (probe and slice read input coordinates)."""
    if not bounds:
        return np.zeros(3)
    lo = np.min([b[0] for b in bounds], axis=0)
    hi = np.max([b[1] for b in bounds], axis=0)
    diagonal = float(np.linalg.norm(hi - lo)) or 1.0
    if np.abs(np.concatenate([lo, hi])).max() <= FAR_FROM_ORIGIN * diagonal:
        return np.zeros(3)
    unit = 10.0 ** np.floor(np.log10(diagonal))
    return -np.round(0.5 * (lo + hi) / unit) * unit


def layout_offsets(bounds: list[np.ndarray], layout: str = "row", gap: float = 0.15) -> list[np.ndarray]:
    """Translations ``(3,)`` that put boxes ``(2, 3)`` side by side along +x (``row``: each box
    starts ``gap`` times the largest box side after the previous one ends) or leave them in place
    (``overlay``)."""
    if layout == "overlay" or not bounds:
        return [np.zeros(3) for _ in bounds]
    if layout != "row":
        raise ValueError(f"layout must be 'row' or 'overlay', got {layout!r}")
    side = max(float((b[1] - b[0]).max()) for b in bounds)
    out, cursor = [], float(bounds[0][0][0])
    for b in bounds:
        out.append(np.array([cursor - float(b[0][0]), 0.0, 0.0]))
        cursor += float(b[1][0] - b[0][0]) + gap * side
    return out
