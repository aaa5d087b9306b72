"""The viewer: a viser server that shows :class:`~deepcsp.view.items.ViewItem` s in the browser, with
colour modes, a probe, a distance slice, sphere tracing of the current view and screenshots.

viser is imported only when a :class:`Viewer` is made, so ``import deepcsp.view`` works without it.
Every control in the page calls a public method here (:meth:`Viewer.set_color_mode`,
:meth:`Viewer.set_probe`, :meth:`Viewer.set_slice`, :meth:`Viewer.trace_view`,
:meth:`Viewer.save_screenshot`), so scripts and tests drive the viewer exactly as a user does.
"""

from __future__ import annotations

import contextlib
import io
import threading
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from deepcsp.errors import DeepCSPError
from deepcsp.geometry.cleanup import vertex_normals
from deepcsp.view.colors import (
    CURVATURE_CMAP,
    ERROR_CMAP,
    ColorRange,
    colorbar_image,
    normal_colors,
    robust_range,
    scalar_colors,
    srgb_to_linear,
)
from deepcsp.view.config import COLOR_MODES, ViewConfig
from deepcsp.view.items import ViewItem, global_shift, layout_offsets
from deepcsp.view.probe import ProbeResult, probe
from deepcsp.view.slices import AXES, DistanceSlice, distance_slice, image_wxyz

MODE_LABELS = {
    "normal": "normal",
    "curvature": "mean curvature",
    "reference": "distance to reference",
    "plain": "plain",
}
#: Flat colours of surfaces in ``plain`` mode and of point clouds, per input (sRGB).
PALETTE = ((180, 180, 190), (230, 160, 90), (120, 170, 230), (150, 210, 140), (220, 130, 170))
CLOUD_COLOR = (40, 90, 200)
BACKGROUND = (255, 255, 255)
#: Initial camera: vertical field of view (degrees) and distance from the scene's centre in
#: bounding-box diagonals (the scene then fills about 70% of the page's height).
INITIAL_FOV = 45.0
INITIAL_DISTANCE = 1.7
#: Distance slices of point clouds measure distances to a random subset of at most this many
#: points: a KD-tree's nearest-neighbour search far from a dense cloud visits ~(distance / spacing)^2
#: points (measured: a 160-pixel slice through 2M points sampled on spot took 7-28 s).
SLICE_CLOUD_POINTS = 100_000


def _import_viser():
    try:
        import viser
    except ImportError:
        raise DeepCSPError("the viewer needs viser: pip install 'deepcsp[view]'") from None
    return viser


@dataclass
class TracedView:
    """A sphere-traced view: ``image : (H, W, 3)`` uint8, the full
    :class:`~deepcsp.render.render.RenderResult` (``result``), the file it was saved to and which
    input was traced."""

    image: np.ndarray
    result: object
    path: Path | None
    item: str


def mesh_mean_curvature(vertices: np.ndarray, faces: np.ndarray) -> np.ndarray:
    """``(V,)`` mean curvature of a triangle mesh by libigl's quadric fitting
    (``igl.principal_curvature``), positive where the surface bends away from the winding normal
    (an outward-wound sphere of radius r gives 1/r); NaN where libigl cannot fit. Meshes have no
    field to differentiate (the exact closest-point map is not smooth at a polyhedron's vertices)."""
    import igl

    try:
        res = igl.principal_curvature(np.asarray(vertices, np.float64), np.asarray(faces, np.int64))
    except (RuntimeError, ValueError):
        return np.full(len(vertices), np.nan)
    return 0.5 * (np.asarray(res[2], np.float64) + np.asarray(res[3], np.float64))


def mesh_glb(vertices: np.ndarray, faces: np.ndarray, colors: np.ndarray) -> bytes:
    """Binary glTF of a double-sided mesh with per-vertex sRGB ``colors : (V, 3)`` uint8 (stored
    linear, as glTF requires) and a matte material."""
    import trimesh
    from trimesh.visual.material import PBRMaterial

    material = PBRMaterial(
        baseColorFactor=[255, 255, 255, 255], metallicFactor=0.0, roughnessFactor=0.85, doubleSided=True
    )
    mesh = trimesh.Trimesh(
        np.asarray(vertices, np.float32),
        np.asarray(faces, np.int64),
        visual=trimesh.visual.TextureVisuals(material=material),
        process=False,
    )
    rgba = np.concatenate([srgb_to_linear(colors), np.full((len(colors), 1), 255, np.uint8)], axis=1)
    mesh.visual.vertex_attributes["color"] = rgba
    return mesh.export(file_type="glb")


def fresh_path(folder: Path, stem: str, suffix: str = ".png") -> Path:
    """``folder/stem_NNN.suffix`` with the first number not taken (outputs never replace a file)."""
    folder = Path(folder)
    for k in range(1, 100_000):
        p = folder / f"{stem}_{k:03d}{suffix}"
        if not p.exists():
            return p
    raise DeepCSPError("no free file name left", folder)


class Viewer:
    """Serve ``items`` (and an optional ``reference`` :class:`~deepcsp.io.Surface` in the same
    coordinates) at :attr:`url` until :meth:`stop`.

    The probe, slice and traces apply to one input, :attr:`target` (initially the first field, else
    the first input). Public methods are thread-safe: the page's callbacks run on viser's threads.
    """

    def __init__(self, items: list[ViewItem], config: ViewConfig | None = None, reference=None):
        if not items:
            raise DeepCSPError("nothing to view: give at least one field, mesh or point cloud")
        self.config = (config or ViewConfig()).validate()
        if self.config.initial_color(reference is not None) == "reference" and reference is None:
            raise DeepCSPError("--color reference needs --reference GT (a mesh or point cloud)")
        viser = _import_viser()
        self.items = list(items)
        bounds = [it.bounds for it in self.items]
        shift = global_shift(bounds)  # a georeferenced scene is drawn near the origin
        for item, off in zip(self.items, layout_offsets(bounds, self.config.layout)):
            item.offset = off + shift
        self.reference = reference
        self._ref_oracle = None
        if reference is not None:
            from deepcsp.geometry.closest import make_oracle

            self._ref_oracle = make_oracle(reference.vertices, reference.faces)
        lo = np.min([it.bounds[0] + it.offset for it in self.items], axis=0)
        hi = np.max([it.bounds[1] + it.offset for it in self.items], axis=0)
        self.scene_bounds = np.stack([lo, hi])
        self.scale = float(np.linalg.norm(hi - lo))
        self.target = next((i for i, it in enumerate(self.items) if it.kind == "field"), 0)
        self.color_mode = ""
        self.color_range: ColorRange | None = None
        self.probe_result: ProbeResult | None = None
        self.slice: DistanceSlice | None = None
        self._slice_at: tuple[str, float] = ("z", 0.5)
        self._slice_fields: dict[int, object] = {}
        self.metrics = self._metrics()
        self._values: dict[tuple[int, str], np.ndarray] = {}
        self._lock = threading.RLock()
        self._syncing = False
        self._visible = [True] * len(self.items)

        with contextlib.redirect_stdout(io.StringIO()):  # viser prints a banner; the CLI prints the URL
            self.server = viser.ViserServer(host=self.config.host, port=self.config.port, verbose=False)
        try:
            self.server.scene.set_up_direction("+y")
            self.server.gui.configure_theme(
                control_width="large", dark_mode=False, show_logo=False, show_share_button=False
            )
            self._build_gui()
            self._set_initial_camera()
            self._add_clouds()
            self.set_color_mode(self.config.initial_color(reference is not None))
            self.set_probe(self._initial_probe_point(self.target))
            if self.config.slice != "none":
                self.set_slice(self.config.slice)
        except BaseException:
            self.server.stop()
            raise

    # ----------------------------------------------------------------- lifecycle

    @property
    def port(self) -> int:
        return int(self.server.get_port())

    @property
    def url(self) -> str:
        host = self.config.host
        shown = "127.0.0.1" if host in ("0.0.0.0", "") else f"[{host}]" if ":" in host else host
        return f"http://{shown}:{self.port}/"

    def stop(self) -> None:
        """Close the server (connected pages show that they are disconnected)."""
        with contextlib.redirect_stdout(io.StringIO()):
            self.server.stop()

    def __enter__(self) -> "Viewer":
        return self

    def __exit__(self, *exc) -> None:
        self.stop()

    def clients(self) -> list:
        """Connected browser pages (viser ``ClientHandle`` s), oldest first."""
        return [c for _, c in sorted(self.server.get_clients().items())]

    def wait_for_client(self, timeout: float = 30.0):
        """The first connected page, waiting up to ``timeout`` seconds (TimeoutError after)."""
        end = time.monotonic() + timeout
        while time.monotonic() < end:
            cl = self.clients()
            if cl:
                return cl[0]
            time.sleep(0.05)
        raise TimeoutError(f"no browser connected to {self.url} within {timeout:g} s")

    # ----------------------------------------------------------------- colours

    def _surface_values(self, i: int, mode: str) -> np.ndarray | None:
        """Per display-vertex (or point) values of input ``i`` under ``mode`` (cached)."""
        key = (i, mode)
        if key in self._values:
            return self._values[key]
        it = self.items[i]
        v, f = it.display.vertices, it.display.faces
        out = None
        if mode == "reference" and self._ref_oracle is not None:
            out = self._ref_oracle.query(v).distances
        elif f is not None and mode == "normal":
            vn = vertex_normals(v, f)
            if it.kind == "field":
                n = np.asarray(it.field.normals(v), np.float64)
                n = np.where((n * vn).sum(1, keepdims=True) < 0, -n, n)  # the side the mesh's winding faces
                out = np.where(np.isfinite(n).all(1, keepdims=True), n, vn)
            else:
                out = vn
        elif f is not None and mode == "curvature" and it.kind == "field":
            k = it.field.curvatures(v)
            flip = (np.asarray(k.normals) * vertex_normals(v, f)).sum(1) < 0
            out = np.where(flip, -k.mean, k.mean)  # relative to the displayed (winding) normal
        elif f is not None and mode == "curvature":
            out = mesh_mean_curvature(v, f)
        self._values[key] = out
        return out

    def _range(self, mode: str) -> ColorRange | None:
        if mode == "reference":
            vals = [self._surface_values(i, mode) for i in range(len(self.items))]
            lo, hi = robust_range(np.concatenate(vals), percentile=99.0)
            return ColorRange(lo, hi, ERROR_CMAP, "distance to reference (input units)")
        if mode == "curvature":
            vals = [x for i in range(len(self.items)) if (x := self._surface_values(i, mode)) is not None]
            lo, hi = robust_range(np.concatenate(vals) if vals else np.zeros(0), symmetric=True, percentile=95.0)
            return ColorRange(lo, hi, CURVATURE_CMAP, "mean curvature (1 / input units), + bends away from the normal")
        return None

    def item_colors(self, i: int, mode: str | None = None) -> np.ndarray:
        """``(V, 3)`` uint8 sRGB colours of input ``i``'s displayed vertices (or points) under
        ``mode`` (default: the current one)."""
        mode = mode or self.color_mode
        it = self.items[i]
        vals = self._surface_values(i, mode)
        n = len(it.display.vertices)
        if vals is None or mode == "plain":
            flat = CLOUD_COLOR if it.faces is None else PALETTE[i % len(PALETTE)]
            return np.tile(np.asarray(flat, np.uint8), (n, 1))
        if mode == "normal":
            return normal_colors(vals)
        rng = self._range(mode) if self.color_range is None or mode != self.color_mode else self.color_range
        return scalar_colors(vals, rng.vmin, rng.vmax, rng.cmap)

    def set_color_mode(self, mode: str) -> ColorRange | None:
        """Colour every surface (and cloud) by ``mode`` (``normal``, ``curvature``, ``reference``,
        ``plain``); returns the colour bar's range (None for ``normal`` and ``plain``)."""
        if mode not in COLOR_MODES:
            raise DeepCSPError(f"colour mode must be one of {', '.join(COLOR_MODES)}, got {mode!r}")
        if mode == "reference" and self.reference is None:
            raise DeepCSPError("colouring by distance to a reference needs --reference")
        with self._lock:
            self._status(f"colouring by {MODE_LABELS[mode]} ...")
            rng = self._range(mode)
            self.color_mode, self.color_range = mode, rng
            for i, it in enumerate(self.items):
                colors = self.item_colors(i, mode)
                if it.display.faces is not None:
                    self.server.scene.add_glb(  # moved in float64, then drawn in float32
                        f"/inputs/{i}/surface",
                        mesh_glb(it.display.vertices + it.offset, it.display.faces, colors),
                        visible=self._visible[i],
                    )
                else:
                    self._add_points(f"/inputs/{i}/points", it.display.vertices + it.offset, colors, self._visible[i])
            self._sync_gui(lambda: setattr(self._gui_mode, "value", MODE_LABELS[mode]))
            self._show_colorbar(rng, mode)
            self._status("")
        return rng

    def _add_points(self, name: str, points: np.ndarray, colors, visible: bool = True) -> None:
        self.server.scene.add_point_cloud(
            name,
            points.astype(np.float32),
            colors,
            point_size=0.004 * self.scale,
            point_shape="circle",
            precision="float32",
            visible=visible,
        )

    def _add_clouds(self) -> None:
        for i, it in enumerate(self.items):
            if it.cloud is not None:
                self._add_points(
                    f"/inputs/{i}/input_cloud", it.cloud.vertices + it.offset, np.asarray(CLOUD_COLOR, np.uint8)
                )

    def set_visible(self, i: int, visible: bool) -> None:
        """Show or hide input ``i`` (its surface or points, and its input cloud)."""
        with self._lock:
            self._visible[i] = bool(visible)
            for part in ("surface", "points", "input_cloud"):
                h = self.server.scene.get_handle_by_name(f"/inputs/{i}/{part}")
                if h is not None:
                    h.visible = bool(visible)
            self._sync_gui(lambda: setattr(self._gui_visible[i], "value", bool(visible)))

    # ----------------------------------------------------------------- probe

    def _initial_probe_point(self, i: int) -> np.ndarray:
        lo, hi = self.items[i].bounds
        return (lo + hi) / 2.0 + np.array([0.0, 0.25, 0.6]) * (hi - lo)

    def set_target(self, i: int) -> None:
        """Probe, slice and trace input ``i``."""
        if not 0 <= i < len(self.items):
            raise DeepCSPError(f"input index must be in [0, {len(self.items)}), got {i}")
        with self._lock:
            moved = self.target != i
            self.target = i
            self._sync_gui(lambda: setattr(self._gui_target, "value", self._target_label(i)))
            if moved:
                self.set_probe(self._initial_probe_point(i))
                if self.slice is not None:
                    self.set_slice(*self._slice_at)

    def set_probe(self, point) -> ProbeResult:
        """Put the probe at ``point : (3,)`` in the target input's coordinates and draw its closest
        point, the segment to it and the normal there; returns what the field reported."""
        with self._lock:
            it = self.items[self.target]
            try:
                res = probe(it.field, point)
            except ValueError as exc:
                raise DeepCSPError(f"bad probe point: {exc}") from None
            self.probe_result = res
            self._draw_probe(res, it)
            return res

    def _draw_probe(self, res: ProbeResult, it: ViewItem) -> None:
        s = self.scale
        p, c = res.point + it.offset, res.closest_point + it.offset
        scene = self.server.scene
        if getattr(self, "_control", None) is None:
            self._control = scene.add_transform_controls(
                "/probe", scale=0.12 * s, disable_rotations=True, position=tuple(p)
            )
            self._control.on_update(lambda _event: self._on_control())
        elif np.linalg.norm(np.asarray(self._control.position) - p) > 1e-9 * s:
            self._control.position = tuple(p)
        scene.add_icosphere("/probe_marks/point", radius=0.008 * s, color=(255, 200, 0), position=tuple(p))
        scene.add_icosphere("/probe_marks/closest", radius=0.008 * s, color=(230, 30, 30), position=tuple(c))
        scene.add_line_segments(
            "/probe_marks/segment", np.array([[p, c]], np.float32), (255, 200, 0), thickness=0.003 * s
        )
        scene.add_line_segments(
            "/probe_marks/normal",
            np.array([[c, c + 0.08 * s * res.normal]], np.float32),
            (30, 200, 60),
            thickness=0.004 * s,
        )
        self._sync_gui(lambda: setattr(self._gui_probe_pos, "value", tuple(float(x) for x in res.point)))
        self._gui_probe_md.content = (
            f"**closest point** `{_fmt3(res.closest_point)}`  \n"
            f"**distance** `{res.distance:.6g}`  \n"
            f"**normal** `{_fmt3(res.normal)}`"
        )

    def _on_control(self) -> None:
        with self._lock:
            if self._syncing:
                return
            it = self.items[self.target]
            p = np.asarray(self._control.position, np.float64) - it.offset
            if self.probe_result is None or np.linalg.norm(p - self.probe_result.point) > 1e-12 * self.scale:
                self.set_probe(p)

    # ----------------------------------------------------------------- slice

    def set_slice(self, axis: str | None, fraction: float = 0.5) -> DistanceSlice | None:
        """Show the unsigned-distance slice of the target input across ``axis`` (``x``, ``y``,
        ``z``) at ``fraction`` of its bounding box (0 = min, 1 = max), with iso-lines; ``None``
        hides it."""
        with self._lock:
            if axis is None:
                self.slice = None
                for name in ("/slice/image", "/slice/iso"):
                    self._remove(name)
                self._sync_gui(lambda: setattr(self._gui_slice_on, "value", False))
                return None
            if axis not in AXES:
                raise DeepCSPError(f"slice axis must be x, y or z, got {axis!r}")
            if not (np.isfinite(fraction) and 0.0 <= fraction <= 1.0):
                raise DeepCSPError(f"slice position must be a fraction in [0, 1], got {fraction!r}")
            it = self.items[self.target]
            lo, hi = it.bounds
            a = AXES.index(axis)
            self._status("slicing ...")
            field, note = self._slice_field(self.target)
            sl = distance_slice(
                field,
                it.bounds,
                axis,
                float(lo[a] + fraction * (hi[a] - lo[a])),
                self.config.slice_resolution,
                self.config.iso_lines,
            )
            self.slice, self._slice_at = sl, (axis, fraction)
            g = sl.grid
            scene = self.server.scene
            scene.add_image(
                "/slice/image",
                sl.image,
                render_width=float(g.size[0]),
                render_height=float(g.size[1]),
                format="png",
                wxyz=tuple(image_wxyz(g)),
                position=tuple(g.center + it.offset),
                cast_shadow=False,
                receive_shadow=False,
            )
            if len(sl.segments):
                scene.add_line_segments(
                    "/slice/iso",
                    (sl.segments + it.offset).astype(np.float32),
                    (255, 255, 255),
                    thickness=0.0015 * self.scale,
                )
            else:
                self._remove("/slice/iso")

            def sync():
                self._gui_slice_on.value = True
                self._gui_slice_axis.value = axis
                self._gui_slice_pos.value = float(fraction)

            self._sync_gui(sync)
            step = sl.levels[0] if len(sl.levels) else float("nan")
            self._gui_slice_md.content = f"unsigned distance, 0 to {sl.vmax:.4g}; iso-lines every {step:.4g}{note}"
            self._status("")
            return sl

    def _slice_field(self, i: int):
        """The field a slice of input ``i`` measures, with a note for the page: the input's own,
        except for clouds above :data:`SLICE_CLOUD_POINTS` (a seeded random subset of them)."""
        it = self.items[i]
        if it.kind != "cloud" or len(it.vertices) <= SLICE_CLOUD_POINTS:
            return it.field, ""
        if i not in self._slice_fields:
            from deepcsp.fields.query import ExactField
            from deepcsp.view.items import subsample_points

            sub = subsample_points(it.vertices, SLICE_CLOUD_POINTS, self.config.seed)
            self._slice_fields[i] = ExactField(sub.vertices, None, it.field.normalization)
        return self._slice_fields[i], f" (to {SLICE_CLOUD_POINTS:,} of the {len(it.vertices):,} points)"

    # ----------------------------------------------------------------- traces and screenshots

    def _client(self, client):
        if client is not None:
            return client
        cl = self.clients()
        if not cl:
            raise DeepCSPError(f"no browser is connected: open {self.url}")
        return cl[0]

    def trace_view(self, client=None, camera=None, save: bool = True) -> TracedView:
        """Sphere-trace the target input (a field; meshes are ray cast exactly) from ``camera`` (a
        :class:`~deepcsp.render.camera.Camera` in the target's normalised coordinates) or, by
        default, from ``client``'s current view (the first page's); show the image in the page and
        save it under ``save_dir`` when ``save``."""
        from deepcsp._atomic import write_bytes
        from deepcsp.render import RenderConfig, encode_png, render_field, render_mesh_exact
        from deepcsp.view.camera import viewer_camera

        it = self.items[self.target]
        if it.kind == "cloud":
            raise DeepCSPError(
                "a point cloud has no surface to trace; pick a field or a mesh as the probed input", it.path
            )
        nz = it.field.normalization
        if camera is None:
            cam = self._client(client).camera
            camera = viewer_camera(cam.position, cam.wxyz, cam.fov, cam.aspect, self.config.trace_size, nz, it.offset)
        self._status(f"tracing {camera.width}x{camera.height} ...")
        if it.kind == "field":
            res = render_field(it.field, camera, RenderConfig())
        else:
            res = render_mesh_exact(it.vertices, it.faces, camera, nz)
        path = None
        if save:
            path = fresh_path(self.config.save_dir, "deepcsp_trace")
            write_bytes(path, encode_png(res.image))
        self._gui_trace_img.image = res.image
        self._gui_trace_img.visible = True
        what = "sphere traced" if it.kind == "field" else "exact ray cast"
        self._status(
            f"{it.name}: {what} in {res.seconds:.2f} s, {int(res.hit.sum())} pixels hit"
            + (f"; saved {path}" if path else "")
        )
        return TracedView(res.image, res, path, it.name)

    def save_screenshot(self, client=None, path: str | Path | None = None, timeout: float = 30.0) -> Path:
        """Save what ``client``'s page shows (the first page's by default) as a PNG: ``path``, or a
        fresh name under ``save_dir``. An existing file is never overwritten."""
        from deepcsp._atomic import write_bytes
        from deepcsp.render import encode_png

        c = self._client(client)
        out = Path(path) if path is not None else fresh_path(self.config.save_dir, "deepcsp_view")
        if out.exists():
            raise DeepCSPError("exists; screenshots never overwrite a file", out)
        h, w = int(c.camera.image_height), int(c.camera.image_width)
        rgba = np.asarray(c.get_render(height=h, width=w, transport_format="png", timeout=timeout))
        if rgba.ndim == 3 and rgba.shape[2] == 4:
            a = rgba[..., 3:4].astype(np.float64) / 255.0
            rgb = np.round(rgba[..., :3] * a + np.asarray(BACKGROUND) * (1.0 - a)).astype(np.uint8)
        else:
            rgb = rgba[..., :3].astype(np.uint8)
        write_bytes(out, encode_png(rgb))
        self._status(f"saved screenshot {out}")
        return out

    # ----------------------------------------------------------------- metrics

    def _metrics(self) -> list:
        """Chamfer / F-score of every input against the reference (None without one)."""
        if self.reference is None:
            return [None] * len(self.items)
        from deepcsp.geometry.metrics import compare_surfaces

        ref = self.reference
        return [
            compare_surfaces(
                it.vertices,
                it.faces,
                ref.vertices,
                ref.faces,
                n_samples=self.config.metric_samples,
                tau_rel=self.config.fscore_tau,
                seed=self.config.seed,
            )
            for it in self.items
        ]

    def _metrics_markdown(self) -> str:
        if self.reference is None:
            return ""
        name = self.reference.path.name if self.reference.path is not None else "reference"
        rows = [
            f"against **{name}** ({self.config.metric_samples:,} samples per surface; "
            "Chamfer-L1 = sum of the two mean distances)",
            "",
            "| input | Chamfer-L1 | / diag | F-score | Hausdorff |",
            "|---|---|---|---|---|",
        ]
        for it, m in zip(self.items, self.metrics):
            rows.append(
                f"| {it.name} | {m.chamfer_l1:.4g} | {m.chamfer_l1_rel:.3%} | {m.fscore:.3f} @ {m.fscore_tau:.3g} | "
                f"{m.hausdorff:.4g} |"
            )
        return "\n".join(rows)

    # ----------------------------------------------------------------- page

    def _set_initial_camera(self) -> None:
        lo, hi = self.scene_bounds
        center = (lo + hi) / 2.0
        direction = np.array([0.45, 0.35, 1.0])
        cam = self.server.initial_camera
        cam.fov = np.radians(INITIAL_FOV)
        cam.near, cam.far = 1e-3 * self.scale, 100.0 * self.scale  # inputs come in any unit
        cam.look_at = tuple(center)
        cam.position = tuple(center + INITIAL_DISTANCE * self.scale * direction / np.linalg.norm(direction))
        cam.up = (0.0, 1.0, 0.0)

    def _target_label(self, i: int) -> str:
        return f"{i + 1}: {self.items[i].name}"

    def _build_gui(self) -> None:
        gui = self.server.gui
        c = self.config
        lines = [
            f"**{it.name}** ({it.kind}): {it.counts()}" + (f"  \n_{it.note}_" if it.note else "") for it in self.items
        ]
        lines.append(
            f"_display limits: {c.max_faces:,} faces (decimated above), {c.max_points:,} points (subsampled above)_"
        )
        with gui.add_folder("Inputs"):
            gui.add_markdown("  \n".join(lines))
            self._gui_visible = []
            for i, it in enumerate(self.items):
                box = gui.add_checkbox(f"show {self._target_label(i)}", initial_value=True)
                box.on_update(lambda _e, i=i, box=box: self._guarded(lambda: self.set_visible(i, box.value)))
                self._gui_visible.append(box)
        with gui.add_folder("Colour"):
            modes = [m for m in COLOR_MODES if m != "reference" or self.reference is not None]
            self._gui_mode = gui.add_dropdown(
                "colour by", [MODE_LABELS[m] for m in modes], initial_value=MODE_LABELS[modes[0]]
            )
            by_label = {MODE_LABELS[m]: m for m in modes}
            self._gui_mode.on_update(
                lambda _e: self._guarded(lambda: self.set_color_mode(by_label[self._gui_mode.value]))
            )
            self._gui_bar = gui.add_image(colorbar_image(ERROR_CMAP), label=None, format="png", visible=False)
            self._gui_bar_md = gui.add_markdown("")
            if self.reference is not None:
                gui.add_markdown(self._metrics_markdown())
                self._gui_ref_on = gui.add_checkbox("show reference", initial_value=False)
                self._gui_ref_on.on_update(lambda _e: self._show_reference(self._gui_ref_on.value))
        with gui.add_folder("Probe"):
            labels = [self._target_label(i) for i in range(len(self.items))]
            self._gui_target = gui.add_dropdown(
                "input", labels, initial_value=labels[self.target], disabled=len(labels) == 1
            )
            self._gui_target.on_update(
                lambda _e: self._guarded(lambda: self.set_target(labels.index(self._gui_target.value)))
            )
            self._gui_probe_pos = gui.add_vector3("point", (0.0, 0.0, 0.0), step=1e-4)
            self._gui_probe_pos.on_update(
                lambda _e: self._guarded(lambda: self.set_probe(np.asarray(self._gui_probe_pos.value)))
            )
            self._gui_probe_md = gui.add_markdown("")
        with gui.add_folder("Slice"):
            self._gui_slice_on = gui.add_checkbox("distance slice", initial_value=False)
            self._gui_slice_axis = gui.add_dropdown("axis", list(AXES), initial_value="z")
            self._gui_slice_pos = gui.add_slider("position", min=0.0, max=1.0, step=0.01, initial_value=0.5)
            self._gui_slice_md = gui.add_markdown("")

            def slice_changed(_e) -> None:
                self._guarded(
                    lambda: self.set_slice(
                        self._gui_slice_axis.value if self._gui_slice_on.value else None,
                        float(self._gui_slice_pos.value),
                    )
                )

            for h in (self._gui_slice_on, self._gui_slice_axis, self._gui_slice_pos):
                h.on_update(slice_changed)
        with gui.add_folder("Render"):
            trace = gui.add_button("Sphere-trace this view")
            shot = gui.add_button("Save screenshot")
            trace.on_click(lambda e: self._guarded(lambda: self.trace_view(e.client), button=trace))
            shot.on_click(lambda e: self._guarded(lambda: self.save_screenshot(e.client), button=shot))
            self._gui_trace_img = gui.add_image(
                np.full((8, 8, 3), 255, np.uint8), label="sphere-traced view", format="png", visible=False
            )
        self._gui_status = gui.add_markdown("")

    def _show_colorbar(self, rng: ColorRange | None, mode: str) -> None:
        if rng is None:
            self._gui_bar.visible = False
            self._gui_bar_md.content = "RGB = (n + 1) / 2 of the unit normal" if mode == "normal" else ""
            return
        self._gui_bar.image = colorbar_image(rng.cmap)
        self._gui_bar.visible = True
        self._gui_bar_md.content = f"{rng.label}: `{rng.vmin:.4g}` (left) to `{rng.vmax:.4g}` (right)"

    def _show_reference(self, on: bool) -> None:
        ref = self.reference
        for i, it in enumerate(self.items):
            name = f"/inputs/{i}/reference"
            if not on:
                self._remove(name)
            elif ref.faces is not None:
                self.server.scene.add_mesh_simple(
                    name,
                    (ref.vertices + it.offset).astype(np.float32),
                    ref.faces,
                    color=(160, 160, 160),
                    opacity=0.35,
                    side="double",
                )
            else:
                self._add_points(name, ref.vertices + it.offset, np.asarray((120, 120, 120), np.uint8))

    def _remove(self, name: str) -> None:
        h = self.server.scene.get_handle_by_name(name)
        if h is not None:
            h.remove()

    def _sync_gui(self, fn) -> None:
        """Set GUI values without their callbacks acting on them again."""
        self._syncing = True
        try:
            fn()
        finally:
            self._syncing = False

    def _guarded(self, fn, button=None) -> None:
        """Run a page callback: skipped while the server itself sets values; errors are shown in
        the page instead of killing the callback thread."""
        if self._syncing:
            return
        if button is not None:
            button.disabled = True
        try:
            fn()
        except (DeepCSPError, ValueError, TimeoutError) as exc:
            self._status(f"error: {exc}")
        finally:
            if button is not None:
                button.disabled = False

    def _status(self, text: str) -> None:
        if getattr(self, "_gui_status", None) is not None:
            self._gui_status.content = f"_{text}_" if text else ""


def _fmt3(v) -> str:
    return "(" + ", ".join(f"{float(x):.5g}" for x in v) + ")"
