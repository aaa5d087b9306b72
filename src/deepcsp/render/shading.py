"""Images from per-pixel geometry: two-sided Blinn-Phong shading, normal maps and depth maps.

All functions take ``(H, W, ...)`` NumPy arrays and return ``(H, W, 3)`` uint8 images.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from deepcsp._validate import Fields


@dataclass
class ShadingConfig:
    """Material and lights (two lights fixed to the camera; colours are linear RGB in [0, 1])."""

    color: tuple[float, float, float] = (0.70, 0.74, 0.84)
    """Diffuse colour of the surface."""
    background: tuple[float, float, float] = (1.0, 1.0, 1.0)
    """Colour of pixels whose ray misses."""
    ambient: float = 0.18
    """Ambient term."""
    specular: float = 0.25
    """Weight of the Blinn-Phong highlight (0 for pure Lambert)."""
    shininess: float = 40.0
    """Blinn-Phong exponent."""
    gamma: float = 2.2
    """Display gamma applied to the linear result."""

    def __post_init__(self) -> None:
        f = Fields(self)
        for name in ("color", "background"):
            f.numbers(name, 0.0, 1.0, min_len=3, max_len=3)
        f.number("ambient", 0.0, 1.0)
        f.number("specular", 0.0, 10.0)
        f.number("shininess", 0.0, 1e4, min_open=True)
        f.number("gamma", 0.0, 10.0, min_open=True)


def _to_uint8(rgb: np.ndarray) -> np.ndarray:
    return (np.clip(rgb, 0.0, 1.0) * 255.0 + 0.5).astype(np.uint8)


def shade(
    normals: np.ndarray,
    hit: np.ndarray,
    directions: np.ndarray,
    camera_basis: tuple[np.ndarray, np.ndarray, np.ndarray],
    config: ShadingConfig | None = None,
) -> np.ndarray:
    """Two-sided Blinn-Phong shading.

    Parameters
    ----------
    normals : (H, W, 3) unit normals (any orientation: they are flipped to face the viewer).
    hit : (H, W) bool, which pixels show the surface.
    directions : (H, W, 3) unit view rays.
    camera_basis : ``(right, up, forward)`` of the camera; a key light sits above-left of the
        camera and a weaker fill light at the camera.
    """
    cfg = config or ShadingConfig()
    right, up, fwd = (np.asarray(v, np.float64) for v in camera_basis)
    n = np.asarray(normals, np.float64)
    v = -np.asarray(directions, np.float64)  # towards the viewer
    n = np.where((n * v).sum(-1, keepdims=True) < 0, -n, n)  # two-sided
    key = -fwd + 0.6 * up - 0.5 * right
    key /= np.linalg.norm(key)
    fill = -fwd
    lights = [(key, 0.75), (fill, 0.35)]
    base = np.asarray(cfg.color)
    rgb = cfg.ambient * base * np.ones_like(n)
    for l_dir, power in lights:
        ndl = np.clip((n * l_dir).sum(-1, keepdims=True), 0.0, None)
        rgb = rgb + power * ndl * base
        if cfg.specular:
            h = v + l_dir
            h /= np.maximum(np.linalg.norm(h, axis=-1, keepdims=True), 1e-12)
            ndh = np.clip((n * h).sum(-1, keepdims=True), 0.0, None)
            rgb = rgb + power * cfg.specular * ndh**cfg.shininess * (ndl > 0)
    rgb = np.clip(rgb, 0.0, 1.0) ** (1.0 / cfg.gamma)
    out = np.where(np.asarray(hit)[..., None], rgb, np.asarray(cfg.background))
    return _to_uint8(out)


def normal_image(normals: np.ndarray, hit: np.ndarray) -> np.ndarray:
    """World-space normal map: ``(n + 1) / 2`` as RGB, black where ``hit`` is False."""
    rgb = (np.asarray(normals, np.float64) + 1.0) / 2.0
    return _to_uint8(np.where(np.asarray(hit)[..., None], rgb, 0.0))


def depth_image(depth: np.ndarray, hit: np.ndarray) -> np.ndarray:
    """Grey depth map: near = white, far = dark grey over the range of hit depths; misses black."""
    hit = np.asarray(hit, bool)
    depth = np.asarray(depth, np.float64)
    g = np.zeros(depth.shape)
    if hit.any():
        lo, hi = depth[hit].min(), depth[hit].max()
        g[hit] = 1.0 - 0.8 * (depth[hit] - lo) / max(hi - lo, 1e-12)
    return _to_uint8(np.repeat(g[..., None], 3, axis=-1))
