"""Pinhole cameras in normalised coordinates: look-at construction, view presets that frame the
normalised cube, and orbits for turntables.

Convention: right-handed world, ``+y`` up; a camera looks along ``forward = normalize(look_at - eye)``;
image rows go down (``-up``), columns go right. Rays pass through pixel centres.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Literal

import numpy as np

from deepcsp.constants import FILL, HALF_SIDE, MAX_SIDE

View = Literal["front", "side", "top", "iso"]
VIEWS: tuple[str, ...] = ("front", "side", "top", "iso")


#: (azimuth, elevation) in degrees of each preset; azimuth 0 looks from +z, 90 from +x.
_PRESETS: dict[str, tuple[float, float]] = {
    "front": (0.0, 0.0),
    "side": (90.0, 0.0),
    "top": (0.0, 90.0),
    "iso": (45.0, math.degrees(math.atan(1.0 / math.sqrt(2.0)))),
}


@dataclass
class Rays:
    """Camera rays, one per pixel: ``origins : (H, W, 3)`` and unit ``directions : (H, W, 3)``."""

    origins: np.ndarray
    directions: np.ndarray


def _vec3(value, name: str) -> np.ndarray:
    arr = np.asarray(value, dtype=np.float64)
    if arr.shape != (3,):
        raise ValueError(f"{name} must have shape (3,), got {arr.shape}")
    if not np.isfinite(arr).all():
        raise ValueError(f"{name} must be finite, got {arr.tolist()}")
    return arr


@dataclass(frozen=True)
class Camera:
    """A pinhole camera.

    Attributes
    ----------
    eye, look_at, up : (3,) float
        Camera position, the point it looks at and the approximate up direction (normalised
        coordinates when used with :func:`deepcsp.render.render_field`).
    fov : float
        Vertical field of view in degrees, in (0, 180).
    width, height : int
        Image size in pixels.
    """

    eye: tuple[float, float, float]
    look_at: tuple[float, float, float] = (0.0, 0.0, 0.0)
    up: tuple[float, float, float] = (0.0, 1.0, 0.0)
    fov: float = 30.0
    width: int = 512
    height: int = 512

    def __post_init__(self) -> None:
        eye, at, up = _vec3(self.eye, "eye"), _vec3(self.look_at, "look_at"), _vec3(self.up, "up")
        for name in ("width", "height"):
            v = getattr(self, name)
            if isinstance(v, bool) or not isinstance(v, (int, np.integer)) or not 1 <= int(v) <= MAX_SIDE:
                raise ValueError(f"{name} must be an integer in [1, {MAX_SIDE}], got {v!r}")
        if not (isinstance(self.fov, (int, float)) and math.isfinite(self.fov) and 0.0 < self.fov < 180.0):
            raise ValueError(f"fov must be in (0, 180) degrees, got {self.fov!r}")
        fwd = at - eye
        if np.linalg.norm(fwd) <= 1e-12:
            raise ValueError(f"eye and look_at coincide: {eye.tolist()}")
        if np.linalg.norm(np.cross(fwd, up)) <= 1e-9 * np.linalg.norm(fwd) * max(np.linalg.norm(up), 1e-300):
            raise ValueError(f"up {up.tolist()} is parallel to the viewing direction {fwd.tolist()} (or zero)")
        # store plain floats (hashable, JSON-friendly)
        object.__setattr__(self, "eye", tuple(float(c) for c in eye))
        object.__setattr__(self, "look_at", tuple(float(c) for c in at))
        object.__setattr__(self, "up", tuple(float(c) for c in up))
        object.__setattr__(self, "width", int(self.width))
        object.__setattr__(self, "height", int(self.height))

    def basis(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Orthonormal ``(right, true_up, forward)``, each ``(3,)``."""
        eye, at = np.asarray(self.eye), np.asarray(self.look_at)
        fwd = at - eye
        fwd = fwd / np.linalg.norm(fwd)
        right = np.cross(fwd, np.asarray(self.up))
        right = right / np.linalg.norm(right)
        return right, np.cross(right, fwd), fwd

    def rays(self) -> Rays:
        """One ray per pixel centre: origins ``(H, W, 3)`` (all at the eye), unit directions ``(H, W, 3)``."""
        right, up, fwd = self.basis()
        H, W = self.height, self.width
        tan_y = math.tan(math.radians(self.fov) / 2.0)
        tan_x = tan_y * W / H
        xs = ((np.arange(W) + 0.5) / W * 2.0 - 1.0) * tan_x
        ys = (1.0 - (np.arange(H) + 0.5) / H * 2.0) * tan_y
        d = fwd[None, None, :] + xs[None, :, None] * right[None, None, :] + ys[:, None, None] * up[None, None, :]
        d /= np.linalg.norm(d, axis=-1, keepdims=True)
        o = np.broadcast_to(np.asarray(self.eye), d.shape).copy()
        return Rays(origins=o, directions=d)

    def project(self, points: np.ndarray) -> np.ndarray:
        """Pixel coordinates ``(N, 2)`` (column, row; pixel centres at +0.5) of ``points : (N, 3)``
        in front of the camera (NaN behind it)."""
        right, up, fwd = self.basis()
        rel = np.asarray(points, np.float64) - np.asarray(self.eye)
        z = rel @ fwd
        with np.errstate(divide="ignore", invalid="ignore"):
            x = (rel @ right) / z
            y = (rel @ up) / z
        tan_y = math.tan(math.radians(self.fov) / 2.0)
        tan_x = tan_y * self.width / self.height
        col = (x / tan_x + 1.0) / 2.0 * self.width
        row = (1.0 - y / tan_y) / 2.0 * self.height
        out = np.stack([col, row], 1)
        out[z <= 0] = np.nan
        return out


def framing_distance(
    fov: float,
    width: int,
    height: int,
    direction=(0.0, 0.0, 1.0),
    up=(0.0, 1.0, 0.0),
    half: float = HALF_SIDE * FILL,
    margin: float = 0.04,
) -> float:
    """Distance from the origin, along unit ``direction`` (origin to eye), at which the cube
    ``[-half, half]^3`` (default: the box any normalised shape fills) projects inside the image
    with ``margin`` (a fraction of the half-size) to spare."""
    corners = np.array([[x, y, z] for x in (-half, half) for y in (-half, half) for z in (-half, half)])
    fwd = -_vec3(direction, "direction")
    fwd /= np.linalg.norm(fwd)
    right = np.cross(fwd, _vec3(up, "up"))
    right /= np.linalg.norm(right)
    true_up = np.cross(right, fwd)
    tan_y = math.tan(math.radians(fov) / 2.0) * (1.0 - margin)
    tan_x = tan_y * width / height
    x, y, z = corners @ right, corners @ true_up, corners @ fwd
    # corner k fits when |x_k| <= tan_x (D + z_k) and |y_k| <= tan_y (D + z_k)
    need = np.maximum(np.abs(x) / tan_x - z, np.abs(y) / tan_y - z)
    return float(max(need.max(), half * math.sqrt(3.0) * 1.05))


def orbit_camera(
    azimuth: float,
    elevation: float,
    width: int = 512,
    height: int = 512,
    fov: float = 30.0,
    distance: float | None = None,
    look_at=(0.0, 0.0, 0.0),
) -> Camera:
    """A camera on a sphere about ``look_at``: ``azimuth`` (degrees, 0 = on +z, 90 = on +x) and
    ``elevation`` (degrees above the xz plane), at ``distance`` (default: :func:`framing_distance`,
    so the box a normalised shape fills is in view). At the poles the image's up is the
    azimuth's back (the azimuth's front at the bottom, looking down)."""
    if not (math.isfinite(azimuth) and math.isfinite(elevation)):
        raise ValueError(f"azimuth and elevation must be finite, got {azimuth!r}, {elevation!r}")
    if not -90.0 <= elevation <= 90.0:
        raise ValueError(f"elevation must be in [-90, 90] degrees, got {elevation!r}")
    az, el = math.radians(azimuth), math.radians(elevation)
    dirn = np.array([math.cos(el) * math.sin(az), math.sin(el), math.cos(el) * math.cos(az)])
    at = _vec3(look_at, "look_at")
    up = (0.0, 1.0, 0.0)
    if abs(elevation) > 89.0:  # looking straight down or up: keep the azimuth's front at the image bottom
        s = -1.0 if elevation > 0 else 1.0
        up = (s * math.sin(az), 0.0, s * math.cos(az))
    dist = distance if distance is not None else framing_distance(fov, width, height, dirn, up)
    return Camera(eye=tuple(at + dist * dirn), look_at=tuple(at), up=up, fov=fov, width=width, height=height)


def view_camera(view: str = "iso", width: int = 512, height: int = 512, fov: float = 30.0) -> Camera:
    """Preset camera (``front`` from +z, ``side`` from +x, ``top`` from +y, ``iso`` from (1, 1, 1))
    that frames the normalised cube."""
    if view not in _PRESETS:
        raise ValueError(f"view must be one of {VIEWS}, got {view!r}")
    az, el = _PRESETS[view]
    return orbit_camera(az, el, width, height, fov)


def orbit_cameras(n: int, view: str = "iso", width: int = 512, height: int = 512, fov: float = 30.0) -> list[Camera]:
    """``n`` cameras evenly spaced in azimuth around the ``+y`` axis, starting at ``view`` and
    keeping its elevation (a ``top`` orbit is tilted to 60 degrees so that it turns)."""
    if isinstance(n, bool) or not isinstance(n, (int, np.integer)) or n < 1:
        raise ValueError(f"n must be a positive integer, got {n!r}")
    if view not in _PRESETS:
        raise ValueError(f"view must be one of {VIEWS}, got {view!r}")
    az0, el = _PRESETS[view]
    el = min(el, 60.0)
    return [orbit_camera(az0 + 360.0 * i / n, el, width, height, fov) for i in range(int(n))]
