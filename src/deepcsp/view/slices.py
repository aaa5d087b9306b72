"""Distance slices: the unsigned distance of a field on an axis-aligned plane, as a coloured image
and iso-distance lines (marching squares, scikit-image's ``find_contours``)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from deepcsp.view.colors import SLICE_CMAP, scalar_colors

AXES = ("x", "y", "z")
#: In-plane axes (u, v) per slice axis, chosen so that u x v is the slice axis (right-handed).
_PLANE_AXES = {"x": (1, 2), "y": (2, 0), "z": (0, 1)}


@dataclass
class SliceGrid:
    """Sample points of a slice: pixel ``(i, j)`` (row i from the top, column j) is at
    ``origin + (j + 0.5) * du + (i + 0.5) * dv`` with ``origin`` the top-left corner, ``du`` one
    column to the right along +u and ``dv`` one row down (along -v).

    Attributes
    ----------
    points : (H * W, 3) float64, row-major.
    origin, du, dv : (3,) float64.
    height, width : int.
    center : (3,) float64, the plane's centre; ``u``, ``v``, ``normal`` : (3,) unit axes.
    size : (2,) float64, extent along u and v.
    """

    points: np.ndarray
    origin: np.ndarray
    du: np.ndarray
    dv: np.ndarray
    height: int
    width: int
    center: np.ndarray
    u: np.ndarray
    v: np.ndarray
    normal: np.ndarray
    size: np.ndarray


@dataclass
class DistanceSlice:
    """A slice's ``distances : (H, W)`` (input units), its ``image : (H, W, 3)`` uint8 (``0 .. vmax``
    through ``cmap``), ``levels : (K,)`` iso-distances and ``segments : (S, 2, 3)`` iso-lines."""

    grid: SliceGrid
    distances: np.ndarray
    image: np.ndarray
    vmax: float
    cmap: str
    levels: np.ndarray
    segments: np.ndarray


def slice_grid(bounds: np.ndarray, axis: str, position: float, resolution: int, pad: float = 0.15) -> SliceGrid:
    """Pixel centres of the plane ``axis = position`` across ``bounds : (2, 3)`` padded by ``pad``
    times the largest side; ``resolution`` samples along the longer in-plane side."""
    if axis not in AXES:
        raise ValueError(f"axis must be one of {AXES}, got {axis!r}")
    if resolution < 2:
        raise ValueError(f"resolution must be at least 2, got {resolution}")
    b = np.asarray(bounds, np.float64)
    a = AXES.index(axis)
    iu, iv = _PLANE_AXES[axis]
    margin = pad * float((b[1] - b[0]).max())
    lo, hi = b[0] - margin, b[1] + margin
    su, sv = hi[iu] - lo[iu], hi[iv] - lo[iv]
    step = max(su, sv) / resolution
    W, H = max(int(round(su / step)), 2), max(int(round(sv / step)), 2)
    u, v, n = np.eye(3)[iu], np.eye(3)[iv], np.eye(3)[a]
    center = (lo + hi) / 2.0
    center[a] = position
    du, dv = u * (su / W), -v * (sv / H)
    origin = center - u * su / 2.0 + v * sv / 2.0
    jj, ii = np.meshgrid(np.arange(W) + 0.5, np.arange(H) + 0.5)
    pts = origin + jj.reshape(-1, 1) * du + ii.reshape(-1, 1) * dv
    return SliceGrid(pts, origin, du, dv, H, W, center, u, v, n, np.array([su, sv]))


def iso_segments(values: np.ndarray, levels, grid: SliceGrid) -> np.ndarray:
    """Line segments ``(S, 2, 3)`` where the ``(H, W)`` image ``values`` crosses each level, placed on
    the slice's plane."""
    from skimage.measure import find_contours

    segs = []
    for level in np.asarray(levels, np.float64).reshape(-1):
        for c in find_contours(values, level):  # (n, 2) (row, col) in pixel-index coordinates
            if len(c) < 2:
                continue
            xyz = grid.origin + (c[:, 1:2] + 0.5) * grid.du + (c[:, 0:1] + 0.5) * grid.dv
            segs.append(np.stack([xyz[:-1], xyz[1:]], axis=1))
    return np.concatenate(segs) if segs else np.zeros((0, 2, 3))


def distance_slice(
    field,
    bounds: np.ndarray,
    axis: str,
    position: float,
    resolution: int = 160,
    n_iso: int = 10,
    vmax: float | None = None,
    cmap: str = SLICE_CMAP,
) -> DistanceSlice:
    """Unsigned distances of ``field`` on the plane ``axis = position`` (input coordinates) over
    ``bounds``, coloured from 0 to ``vmax`` (default: a quarter of the box diagonal), with ``n_iso``
    iso-lines evenly spaced in ``(0, vmax)``."""
    grid = slice_grid(bounds, axis, position, resolution)
    d = field.distances(grid.points).reshape(grid.height, grid.width)
    b = np.asarray(bounds, np.float64)
    top = float(vmax) if vmax is not None else 0.25 * float(np.linalg.norm(b[1] - b[0]))
    image = scalar_colors(d.reshape(-1), 0.0, top, cmap).reshape(grid.height, grid.width, 3)
    levels = top * np.arange(1, n_iso + 1) / (n_iso + 1) if n_iso > 0 else np.zeros(0)
    return DistanceSlice(grid, d, image, top, cmap, levels, iso_segments(d, levels, grid))


def image_wxyz(grid: SliceGrid) -> np.ndarray:
    """Orientation ``(w, x, y, z)`` of a scene image showing ``grid``'s pixels in place: viser
    draws an image's columns along its local +x and its rows down local +y (top row at local -y,
    as in OpenCV), so local x is ``u`` and local y is ``-v``."""
    return rotation_wxyz(grid.u, -grid.v)


def rotation_wxyz(u: np.ndarray, v: np.ndarray) -> np.ndarray:
    """Quaternion ``(w, x, y, z)`` of the rotation taking local +x to ``u`` and +y to ``v``
    (orthonormal), as scene nodes expect."""
    m = np.stack([u, v, np.cross(u, v)], axis=1)
    w = np.sqrt(max(0.0, 1.0 + m[0, 0] + m[1, 1] + m[2, 2])) / 2.0
    if w > 1e-6:
        return np.array(
            [w, (m[2, 1] - m[1, 2]) / (4 * w), (m[0, 2] - m[2, 0]) / (4 * w), (m[1, 0] - m[0, 1]) / (4 * w)]
        )
    i = int(np.argmax(np.diag(m)))
    j, k = (i + 1) % 3, (i + 2) % 3
    s = np.sqrt(max(0.0, 1.0 + m[i, i] - m[j, j] - m[k, k])) * 2.0
    q = np.zeros(4)
    q[0] = (m[k, j] - m[j, k]) / s
    q[1 + i] = s / 4.0
    q[1 + j] = (m[j, i] + m[i, j]) / s
    q[1 + k] = (m[k, i] + m[i, k]) / s
    return q
