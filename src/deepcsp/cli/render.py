"""``deepcsp render FIELD -o IMAGE.png``: sphere-trace a field to a shaded image, a normal map and a
depth map; optionally a turntable animation and the per-pixel rays."""

from __future__ import annotations

from dataclasses import dataclass
from dataclasses import field as _field
from pathlib import Path
from typing import Annotated, Literal

import tyro

from deepcsp.errors import DeepCSPError
from deepcsp.render.render import RenderConfig

IMAGE_SUFFIXES = (".png",)
ANIMATION_SUFFIXES = (".gif", ".mp4")
#: Most memory the frames of one turntable may take (they are encoded together at the end).
MAX_FRAME_BYTES = 4 * 2**30


@dataclass
class RenderCommand:
    """Render a field by sphere tracing: IMAGE.png (shaded), IMAGE_normals.png and IMAGE_depth.png;
    ``--turntable N`` also writes IMAGE.gif; ``--save-rays`` writes the rays and hits (NPZ)."""

    field: Annotated[Path, tyro.conf.Positional]
    """Field file written by ``deepcsp fit`` (.safetensors); a mesh (.obj .ply .off .stl .glb) is
    ray cast exactly instead, as a ground-truth reference."""
    output: Annotated[Path, tyro.conf.arg(aliases=["-o"])] = Path("render.png")
    """Shaded image (.png). With ``--turntable`` it may also be a .gif/.mp4 (animation only)."""
    width: int = 512
    """Image width in pixels."""
    height: int = 512
    """Image height in pixels."""
    view: Literal["front", "side", "top", "iso"] = "iso"
    """Camera preset framing the normalised cube: front (+z), side (+x), top (+y), iso (1,1,1)."""
    fov: float = 30.0
    """Vertical field of view in degrees."""
    eye: tuple[float, float, float] | None = None
    """Camera position in the INPUT's coordinates (overrides --view)."""
    look_at: tuple[float, float, float] | None = None
    """Point looked at, input coordinates (default: the shape's bounding-box centre)."""
    up: tuple[float, float, float] = (0.0, 1.0, 0.0)
    """Up direction for --eye."""
    maps: bool = True
    """Also write the normal map (STEM_normals.png) and depth map (STEM_depth.png) beside the image."""
    save_rays: Path | None = None
    """Write per-pixel origins, directions (H,W,3), hit (H,W) and depth (H,W, inf on misses) in the
    input's coordinates to this .npz."""
    turntable: int = 0
    """Frames of an orbit around +y at the view's elevation, written as an animated GIF
    (STEM.gif, or OUTPUT if it ends in .gif/.mp4); 0 = none."""
    fps: float = 15.0
    """Frames per second of the turntable."""
    render: RenderConfig = _field(default_factory=RenderConfig)
    """Tracing thresholds and shading."""
    device: str = "cpu"
    """``cpu`` or ``cuda``."""
    threads: int = 0
    """Torch CPU threads (0 = leave torch's default)."""
    quiet: bool = False
    """No progress output."""

    def _paths(self) -> tuple[Path | None, Path | None]:
        from deepcsp._validate import OptionError

        out = Path(self.output)
        suffix = out.suffix.lower()
        if suffix in ANIMATION_SUFFIXES:
            if self.turntable <= 0:
                raise OptionError(
                    "--output", f"{str(out)!r} is an animation; pass --turntable N (N > 0) or use a .png output"
                )
            return None, out
        if suffix not in IMAGE_SUFFIXES:
            raise OptionError(
                "--output",
                f"{str(out)!r} must end in .png (or .gif/.mp4 with --turntable), got {out.suffix or 'no suffix'!r}",
            )
        return out, (out.with_suffix(".gif") if self.turntable > 0 else None)

    def check(self) -> tuple[Path | None, Path | None]:
        """Refuse bad options before any work; returns ``(image path, animation path)``."""
        from deepcsp._validate import (
            OptionError,
            device,
            distinct_outputs,
            finite_float,
            input_file,
            integer,
            output_path,
            sequence,
        )
        from deepcsp.constants import MAX_SIDE

        input_file(self.field, "field")
        for name in ("width", "height"):
            integer(f"--{name}", getattr(self, name), 1, MAX_SIDE)
        finite_float("--fov", self.fov, 0.0, 180.0, min_open=True, max_open=True)
        integer("--turntable", self.turntable, 0, 3600)
        finite_float("--fps", self.fps, 0.0, 1000.0, min_open=True)
        frame_bytes = 3 * self.width * self.height * self.turntable
        if frame_bytes > MAX_FRAME_BYTES:
            raise OptionError(
                "--turntable",
                f"{self.turntable} frames of {self.width}x{self.height} would hold {frame_bytes / 2**30:.1f} GiB "
                f"of frames (at most {MAX_FRAME_BYTES / 2**30:.0f} GiB)",
            )
        for name in ("eye", "look_at", "up"):
            if getattr(self, name) is not None:
                sequence(
                    f"--{name.replace('_', '-')}",
                    getattr(self, name),
                    lambda n, v: finite_float(n, v, -1e12, 1e12),
                    3,
                    3,
                )
        if self.look_at is not None and self.eye is None:
            raise OptionError("--look-at", "needs --eye")
        if not any(self.up):
            raise OptionError("--up", f"must be a non-zero direction, got {self.up!r}")
        if self.eye is not None and self.look_at is not None and tuple(self.eye) == tuple(self.look_at):
            raise OptionError("--look-at", f"is the camera position --eye {self.eye!r}; look somewhere else")
        device("--device", self.device)
        integer("--threads", self.threads, 0, 1024)
        image_path, anim_path = self._paths()
        outputs = {"--output": image_path}
        if image_path is not None and self.maps:
            for tag in ("normals", "depth"):
                outputs[f"--output ({tag} map)"] = image_path.with_name(f"{image_path.stem}_{tag}.png")
        outputs["--output (turntable)" if image_path is not None else "--output"] = anim_path
        if self.save_rays is not None:
            outputs["--save-rays"] = output_path("--save-rays", self.save_rays, (".npz",), inputs=[self.field])
        for opt, p in outputs.items():
            if p is not None:
                output_path(opt.split(" ")[0], p, inputs=[self.field])
        distinct_outputs(outputs)
        if anim_path is not None and anim_path.suffix.lower() == ".mp4":
            try:
                import imageio_ffmpeg  # noqa: F401
            except ImportError:
                raise OptionError(
                    "--output",
                    f"{str(anim_path)!r}: writing MP4 needs the imageio-ffmpeg package "
                    "(pip install imageio-ffmpeg); use .gif",
                ) from None
        return image_path, anim_path

    def _load(self):
        """The scene to render: the field, or an :class:`~deepcsp.render.render.ExactMesh` of a mesh file."""
        from deepcsp.cli._common import need_file
        from deepcsp.io.surface import MESH_SUFFIXES
        from deepcsp.render.render import ExactMesh

        path = need_file(self.field, "field")
        if path.suffix.lower() in MESH_SUFFIXES:
            from deepcsp.io import load_surface

            surface = load_surface(path, kind="mesh")
            return ExactMesh(surface.vertices, surface.faces, surface.normalization)
        import deepcsp

        return deepcsp.load(path, device=self.device)

    def _camera(self, normalization):
        import numpy as np

        from deepcsp.render.camera import Camera, view_camera

        if self.eye is None:
            return view_camera(self.view, self.width, self.height, self.fov)
        eye = normalization.to_normalized(np.asarray(self.eye, np.float64))
        at = (
            normalization.to_normalized(np.asarray(self.look_at, np.float64))
            if self.look_at is not None
            else np.zeros(3)
        )
        try:
            return Camera(
                eye=tuple(eye), look_at=tuple(at), up=self.up, fov=self.fov, width=self.width, height=self.height
            )
        except ValueError as exc:
            raise DeepCSPError(f"bad camera: {exc}") from None

    def run(self) -> int:
        import time

        import torch

        from deepcsp._atomic import write_bytes
        from deepcsp.cli._common import echo, fmt, table
        from deepcsp.render.camera import orbit_cameras
        from deepcsp.render.render import (
            ExactMesh,
            encode_animation,
            encode_png,
            render_turntable,
            render_view,
            save_rays,
        )

        image_path, anim_path = self.check()
        if self.threads:
            torch.set_num_threads(self.threads)
        scene = self._load()
        exact = isinstance(scene, ExactMesh)
        normalization = scene.normalization

        rows: list[tuple[str, str]] = []
        written: list[tuple[str, str]] = []
        t0 = time.perf_counter()
        if image_path is not None or self.save_rays is not None:
            res = render_view(scene, self._camera(normalization), self.render)
            if image_path is not None:
                write_bytes(image_path, encode_png(res.image))
                written.append(("image", str(image_path)))
                if self.maps:
                    for tag, img in (("normals", res.normal_map()), ("depth", res.depth_map())):
                        p = image_path.with_name(f"{image_path.stem}_{tag}.png")
                        write_bytes(p, encode_png(img))
                        written.append((f"{tag} map", str(p)))
            if self.save_rays is not None:
                save_rays(self.save_rays, res)
                written.append(("rays", str(self.save_rays)))
            n_rays = res.hit.size
            rows += [
                ("pixels hit", f"{int(res.hit.sum())} / {n_rays}"),
                ("evaluations / ray", fmt(float(res.evaluations.mean())) if not exact else "exact ray cast"),
                ("seconds", f"{res.seconds:.2f}"),
            ]
        if anim_path is not None:
            cams = orbit_cameras(self.turntable, self.view, self.width, self.height, self.fov)
            frames = render_turntable(
                scene, cams, self.render, progress=None if self.quiet else lambda i, n: echo(f"turntable frame {i}/{n}")
            )
            try:
                data = encode_animation(frames, anim_path.suffix.lower(), self.fps)
            except ValueError as exc:
                raise DeepCSPError(str(exc), anim_path) from None
            write_bytes(anim_path, data)
            written.append(("turntable", str(anim_path)))
        rows += [("total seconds", f"{time.perf_counter() - t0:.2f}")]
        if not self.quiet:
            echo(table(rows + written, f"rendered {self.field.name}"))
        return 0
