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
        out = Path(self.output)
        suffix = out.suffix.lower()
        if suffix in ANIMATION_SUFFIXES:
            if self.turntable <= 0:
                raise DeepCSPError("is an animation; pass --turntable N (N > 0) or use a .png output", out)
            return None, out
        if suffix not in IMAGE_SUFFIXES:
            raise DeepCSPError(f"output must end in .png (or .gif/.mp4 with --turntable), got {out.suffix or 'no suffix'!r}", out)
        return out, (out.with_suffix(".gif") if self.turntable > 0 else None)

    def _check(self) -> None:
        from deepcsp.render.camera import MAX_SIDE

        for name in ("width", "height"):
            v = getattr(self, name)
            if not 1 <= v <= MAX_SIDE:
                raise DeepCSPError(f"--{name} must be in [1, {MAX_SIDE}], got {v}")
        if not 0.0 < self.fov < 180.0:
            raise DeepCSPError(f"--fov must be in (0, 180) degrees, got {self.fov}")
        if self.turntable < 0 or self.turntable > 3600:
            raise DeepCSPError(f"--turntable must be in [0, 3600] frames, got {self.turntable}")
        if not self.fps > 0:
            raise DeepCSPError(f"--fps must be positive, got {self.fps}")
        if self.save_rays is not None and Path(self.save_rays).suffix.lower() != ".npz":
            raise DeepCSPError("--save-rays must end in .npz", self.save_rays)
        try:
            self.render.validate()
        except ValueError as exc:
            raise DeepCSPError(f"bad --render option: {exc}") from None

    def _load(self):
        from deepcsp.cli._common import need_file
        from deepcsp.io.surface import MESH_SUFFIXES

        path = need_file(self.field, "field")
        if path.suffix.lower() in MESH_SUFFIXES:
            from deepcsp.io import load_surface

            surface = load_surface(path, kind="mesh")
            return None, surface
        import deepcsp

        return deepcsp.load(path, device=self.device), None

    def _camera(self, normalization):
        import numpy as np

        from deepcsp.render.camera import Camera, view_camera

        if self.eye is None:
            if self.look_at is not None:
                raise DeepCSPError("--look-at needs --eye")
            return view_camera(self.view, self.width, self.height, self.fov)
        eye = normalization.to_normalized(np.asarray(self.eye, np.float64))
        at = normalization.to_normalized(np.asarray(self.look_at, np.float64)) if self.look_at is not None else np.zeros(3)
        try:
            return Camera(eye=tuple(eye), look_at=tuple(at), up=self.up, fov=self.fov, width=self.width, height=self.height)
        except ValueError as exc:
            raise DeepCSPError(f"bad camera: {exc}") from None

    def run(self) -> int:
        import time

        import torch

        from deepcsp._atomic import write_bytes
        from deepcsp.cli._common import echo, fmt, table
        from deepcsp.render.camera import orbit_cameras
        from deepcsp.render.render import encode_animation, encode_png, render_field, render_mesh_exact, save_rays

        self._check()
        image_path, anim_path = self._paths()
        if self.threads:
            torch.set_num_threads(self.threads)
        fld, surface = self._load()
        normalization = surface.normalization if surface is not None else fld.normalization

        def render_one(cam):
            if surface is not None:
                return render_mesh_exact(surface.vertices, surface.faces, cam, normalization, self.render)
            return render_field(fld, cam, self.render)

        rows: list[tuple[str, str]] = []
        written: list[tuple[str, str]] = []
        t0 = time.perf_counter()
        if image_path is not None or self.save_rays is not None:
            res = render_one(self._camera(normalization))
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
                ("evaluations / ray", fmt(float(res.evaluations.mean())) if surface is None else "exact ray cast"),
                ("seconds", f"{res.seconds:.2f}"),
            ]
        if anim_path is not None:
            cams = orbit_cameras(self.turntable, self.view, self.width, self.height, self.fov)
            frames = []
            for i, cam in enumerate(cams):
                frames.append(render_one(cam).image)
                if not self.quiet:
                    echo(f"turntable frame {i + 1}/{len(cams)}")
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
