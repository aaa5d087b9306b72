"""Rendering entry points: :func:`render_field` (sphere tracing any field),
:func:`render_mesh_exact` (exact ray cast of a mesh, the ground truth), turntables and encoders.

Cameras, depths and normals live in the field's normalised coordinates; :meth:`RenderResult.ray_arrays`
converts rays and depths to the input's coordinates with the field's normalisation.
"""

from __future__ import annotations

import io
import time
from dataclasses import dataclass, field

import numpy as np
import torch

from deepcsp._validate import Fields
from deepcsp.constants import NORMAL_OFFSET
from deepcsp.geometry.normalize import Normalization
from deepcsp.render.camera import Camera, Rays
from deepcsp.render.shading import ShadingConfig, depth_image, normal_image, shade
from deepcsp.render.tracer import TraceConfig, field_normals, trace_rays


@dataclass
class RenderConfig:
    """How a field is rendered."""

    trace: TraceConfig = field(default_factory=TraceConfig)
    """Sphere-tracing thresholds and budgets."""
    shading: ShadingConfig = field(default_factory=ShadingConfig)
    """Material, lights and background."""
    normal_offset: float = NORMAL_OFFSET
    """Normals are the field's direction at the hit backed off this far towards the viewer
    (normalised units)."""

    def __post_init__(self) -> None:
        self.validate()

    def validate(self) -> "RenderConfig":
        """Raise :class:`~deepcsp._validate.OptionError` (a ValueError) naming the first bad setting; return self."""
        self.trace.validate()
        Fields(self).number("normal_offset", 0.0, 1.0, min_open=True)
        return self


@dataclass
class RenderResult:
    """A rendered view (H x W pixels).

    Attributes
    ----------
    image : (H, W, 3) uint8, shaded.
    normals : (H, W, 3) float32, unit normals facing the camera (zeros on misses), normalised coordinates.
    depth : (H, W) float32, distance along the unit ray in normalised units (inf on misses).
    hit : (H, W) bool.
    evaluations : (H, W) int32, field evaluations spent tracing each ray (0 for rays that miss the
        normalised box; shading adds one more per hit pixel, not counted here).
    unconverged : (H, W) bool, rays that ran out of iterations (counted as misses).
    rays : the camera rays, normalised coordinates.
    camera, normalization : what produced the image and how to map it to input coordinates.
    seconds : wall time of tracing and shading.
    """

    image: np.ndarray
    normals: np.ndarray
    depth: np.ndarray
    hit: np.ndarray
    evaluations: np.ndarray
    unconverged: np.ndarray
    rays: Rays
    camera: Camera
    normalization: Normalization
    seconds: float = 0.0

    def normal_map(self) -> np.ndarray:
        """(H, W, 3) uint8 normal map."""
        return normal_image(self.normals, self.hit)

    def depth_map(self) -> np.ndarray:
        """(H, W, 3) uint8 depth map."""
        return depth_image(self.depth, self.hit)

    def mean_evaluations(self) -> float:
        """Mean field evaluations per traced ray (rays that reach the normalised box; 0.0 when none does)."""
        traced = self.evaluations > 0
        return float(self.evaluations[traced].mean()) if traced.any() else 0.0

    def ray_arrays(self) -> dict[str, np.ndarray]:
        """Rays and hits in the INPUT's coordinates: ``origins (H, W, 3)``, ``directions (H, W, 3)``
        (unit), ``hit (H, W)`` bool, ``depth (H, W)`` (input units along the unit ray, inf for
        misses), plus ``normals (H, W, 3)`` and ``evaluations (H, W)``. The similarity
        normalisation keeps directions and scales depths by ``1 / scale``."""
        nz = self.normalization
        depth = np.where(self.hit, nz.distance_to_input(self.depth.astype(np.float64)), np.inf)
        return {
            "origins": nz.to_input(self.rays.origins.astype(np.float64)),
            "directions": self.rays.directions.astype(np.float64),
            "hit": self.hit.copy(),
            "depth": depth,
            "normals": self.normals.astype(np.float32),
            "evaluations": self.evaluations.copy(),
        }


def _check_camera(camera) -> Camera:
    if not isinstance(camera, Camera):
        raise ValueError(f"camera must be a deepcsp.render.Camera, got {type(camera).__name__}")
    return camera


def render_field(field, camera: Camera, config: RenderConfig | None = None) -> RenderResult:
    """Sphere-trace ``field`` (any :class:`deepcsp.fields.query.Field`: CSP, UDF or exact) from
    ``camera`` (normalised coordinates) and shade it.

    Normals come from the field itself (:func:`deepcsp.render.tracer.field_normals`)."""
    if not callable(getattr(field, "closest_points_normalized", None)):
        raise ValueError(f"field must provide closest_points_normalized, got {type(field).__name__}")
    camera = _check_camera(camera)
    cfg = (config or RenderConfig()).validate()
    t0 = time.perf_counter()
    rays = camera.rays()
    H, W = camera.height, camera.width
    device = torch.device(getattr(field, "device", "cpu"))
    o = torch.as_tensor(rays.origins.reshape(-1, 3), dtype=torch.float32, device=device)
    d = torch.as_tensor(rays.directions.reshape(-1, 3), dtype=torch.float32, device=device)
    tr = trace_rays(field, o, d, cfg.trace)
    normals = torch.zeros_like(o)
    if bool(tr.hit.any()):
        normals[tr.hit] = field_normals(field, tr.points[tr.hit], d[tr.hit], cfg.normal_offset)
    hit = tr.hit.cpu().numpy().reshape(H, W)
    n = normals.cpu().numpy().reshape(H, W, 3)
    image = shade(n, hit, rays.directions, camera.basis(), cfg.shading)
    return RenderResult(
        image=image,
        normals=n.astype(np.float32),
        depth=tr.depth.cpu().numpy().reshape(H, W).astype(np.float32),
        hit=hit,
        evaluations=tr.evaluations.cpu().numpy().reshape(H, W),
        unconverged=tr.unconverged.cpu().numpy().reshape(H, W),
        rays=rays,
        camera=camera,
        normalization=getattr(field, "normalization", None) or Normalization.identity(),
        seconds=time.perf_counter() - t0,
    )


@dataclass
class RayHits:
    """Exact first hits of R rays: ``hit : (R,)`` bool, ``depth : (R,)`` float64 (inf for misses),
    ``face_ids : (R,)`` int64 (-1 for misses), ``normals : (R, 3)`` unit face normals (zeros for misses)."""

    hit: np.ndarray
    depth: np.ndarray
    face_ids: np.ndarray
    normals: np.ndarray


def _check_mesh(vertices, faces) -> tuple[np.ndarray, np.ndarray]:
    v = np.asarray(vertices, np.float64)
    f = np.asarray(faces)
    if v.ndim != 2 or v.shape[1] != 3 or len(v) == 0:
        raise ValueError(f"vertices must have shape (V, 3) with V > 0, got {v.shape}")
    if not np.isfinite(v).all():
        raise ValueError("vertices contain NaN or inf")
    if f.ndim != 2 or f.shape[1] != 3 or len(f) == 0 or f.dtype.kind not in "iu":
        raise ValueError(f"faces must be an integer array of shape (F, 3) with F > 0, got {f.shape} {f.dtype}")
    if f.min() < 0 or f.max() >= len(v):
        raise ValueError(f"faces index vertices outside [0, {len(v)}): range [{f.min()}, {f.max()}]")
    return v, f.astype(np.int64)


def exact_ray_cast(vertices: np.ndarray, faces: np.ndarray, origins: np.ndarray, directions: np.ndarray) -> RayHits:
    """First intersections of rays ``origins, directions : (R, 3)`` with the triangle mesh
    ``vertices : (V, 3)``, ``faces : (F, 3)`` (same coordinates). Embree (through trimesh and
    ``embreex``) finds the triangle when installed, else trimesh's pure-Python caster; the depth
    is then recomputed in float64 (Moller-Trumbore) along the unit direction."""
    import trimesh

    v, f = _check_mesh(vertices, faces)
    o = np.asarray(origins, np.float64).reshape(-1, 3)
    d = np.asarray(directions, np.float64).reshape(-1, 3)
    if o.shape != d.shape:
        raise ValueError(f"origins {o.shape} and directions {d.shape} differ in shape")
    if not (np.isfinite(o).all() and np.isfinite(d).all()):
        raise ValueError("rays contain NaN or inf")
    d = d / np.maximum(np.linalg.norm(d, axis=1, keepdims=True), 1e-300)
    mesh = trimesh.Trimesh(v, f, process=False, validate=False)
    try:
        from trimesh.ray.ray_pyembree import RayMeshIntersector
    except Exception:  # embreex missing: slower exact caster
        from trimesh.ray.ray_triangle import RayMeshIntersector
    tri = RayMeshIntersector(mesh).intersects_first(o, d)
    hit = tri >= 0
    depth = np.full(len(o), np.inf)
    normals = np.zeros((len(o), 3))
    if hit.any():
        a, b, c = (v[f[tri[hit], k]] for k in range(3))
        e1, e2 = b - a, c - a
        pv = np.cross(d[hit], e2)
        det = (e1 * pv).sum(1)
        qv = np.cross(o[hit] - a, e1)
        with np.errstate(divide="ignore", invalid="ignore"):
            t = (e2 * qv).sum(1) / det
        # A (near-)degenerate triangle found by Embree: fall back to its centroid's depth.
        bad = ~np.isfinite(t)
        t[bad] = (((a[bad] + b[bad] + c[bad]) / 3.0 - o[hit][bad]) * d[hit][bad]).sum(1)
        depth[hit] = t
        fn = np.cross(e1, e2)
        normals[hit] = fn / np.maximum(np.linalg.norm(fn, axis=1, keepdims=True), 1e-300)
    return RayHits(hit=hit, depth=depth, face_ids=np.where(hit, tri, -1), normals=normals)


def render_mesh_exact(
    vertices: np.ndarray,
    faces: np.ndarray,
    camera: Camera,
    normalization: Normalization | None = None,
    config: RenderConfig | None = None,
) -> RenderResult:
    """Ground-truth render of a triangle mesh by exact ray casting (:func:`exact_ray_cast`), shaded
    like :func:`render_field` (flat face normals).

    ``vertices : (V, 3)`` are in input coordinates and are mapped into the normalised cube by
    ``normalization`` (default: ``Normalization.from_points(vertices)``, which is what fitting
    uses), so the same ``camera`` frames the mesh and a field fitted to it identically."""
    camera = _check_camera(camera)
    v, f = _check_mesh(vertices, faces)
    cfg = config or RenderConfig()
    nz = normalization or Normalization.from_points(v)
    t0 = time.perf_counter()
    rays = camera.rays()
    H, W = camera.height, camera.width
    res = exact_ray_cast(nz.to_normalized(v), f, rays.origins.reshape(-1, 3), rays.directions.reshape(-1, 3))
    hit = res.hit.reshape(H, W)
    n = res.normals.reshape(H, W, 3)
    n = np.where((n * rays.directions).sum(-1, keepdims=True) > 0, -n, n)
    image = shade(n, hit, rays.directions, camera.basis(), cfg.shading)
    return RenderResult(
        image=image,
        normals=n.astype(np.float32),
        depth=res.depth.reshape(H, W).astype(np.float32),
        hit=hit,
        evaluations=np.zeros((H, W), np.int32),
        unconverged=np.zeros((H, W), bool),
        rays=rays,
        camera=camera,
        normalization=nz,
        seconds=time.perf_counter() - t0,
    )


@dataclass(frozen=True)
class ExactMesh:
    """A triangle mesh to render by exact ray casting (:func:`render_mesh_exact`): ``vertices : (V, 3)``
    in input coordinates, ``faces : (F, 3)``, and the normalisation placing it in the cube (None:
    fitted to the vertices)."""

    vertices: np.ndarray
    faces: np.ndarray
    normalization: Normalization | None = None


def render_view(scene, camera: Camera, config: RenderConfig | None = None) -> RenderResult:
    """One view of ``scene``: :func:`render_field` of a field, or :func:`render_mesh_exact` of an
    :class:`ExactMesh` (shaded with ``config.shading``)."""
    if isinstance(scene, ExactMesh):
        return render_mesh_exact(scene.vertices, scene.faces, camera, scene.normalization, config)
    return render_field(scene, camera, config)


def render_turntable(
    scene, cameras: list[Camera], config: RenderConfig | None = None, progress=None
) -> list[np.ndarray]:
    """Shaded frames ``(H, W, 3)`` uint8 of ``scene`` (a field or an :class:`ExactMesh`, as in
    :func:`render_view`) from each camera (e.g. :func:`orbit_cameras`); ``progress(i, n)`` is called
    after frame ``i`` of ``n``."""
    frames = []
    for i, cam in enumerate(cameras):
        frames.append(render_view(scene, cam, config).image)
        if progress is not None:
            progress(i + 1, len(cameras))
    return frames


def encode_png(image: np.ndarray) -> bytes:
    """PNG bytes of an ``(H, W, 3)`` or ``(H, W)`` uint8 image."""
    import imageio.v3 as iio

    return iio.imwrite("<bytes>", np.asarray(image, np.uint8), extension=".png")


def encode_animation(frames: list[np.ndarray], suffix: str = ".gif", fps: float = 15.0) -> bytes:
    """Animated GIF (looping) or MP4 (needs ``imageio-ffmpeg``) bytes of ``(H, W, 3)`` uint8 frames."""
    import imageio.v3 as iio

    if not frames:
        raise ValueError("no frames to encode")
    stack = np.stack([np.asarray(f, np.uint8) for f in frames])
    if suffix == ".gif":
        return iio.imwrite("<bytes>", stack, extension=".gif", duration=1000.0 / fps, loop=0)
    if suffix == ".mp4":
        try:
            import imageio_ffmpeg  # noqa: F401
        except ImportError:
            raise ValueError(
                "writing MP4 needs the imageio-ffmpeg package (pip install imageio-ffmpeg); use .gif instead"
            ) from None
        return iio.imwrite("<bytes>", stack, extension=".mp4", fps=fps)
    raise ValueError(f"animation suffix must be .gif or .mp4, got {suffix!r}")


def save_rays(path, result: RenderResult) -> None:
    """Write :meth:`RenderResult.ray_arrays` to an ``.npz`` file atomically."""
    from deepcsp._atomic import write_bytes

    buf = io.BytesIO()
    np.savez(buf, **result.ray_arrays())
    write_bytes(path, buf.getvalue())
