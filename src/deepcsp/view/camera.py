"""The browser's camera as a deepcsp :class:`~deepcsp.render.camera.Camera`, so that the current
view can be sphere-traced with deepcsp's renderer."""

from __future__ import annotations

import math

import numpy as np

from deepcsp.render.camera import Camera


def quaternion_matrix(wxyz) -> np.ndarray:
    """``(3, 3)`` rotation matrix of a unit quaternion ``(w, x, y, z)``."""
    w, x, y, z = np.asarray(wxyz, np.float64) / np.linalg.norm(wxyz)
    return np.array(
        [
            [1 - 2 * (y * y + z * z), 2 * (x * y - w * z), 2 * (x * z + w * y)],
            [2 * (x * y + w * z), 1 - 2 * (x * x + z * z), 2 * (y * z - w * x)],
            [2 * (x * z - w * y), 2 * (y * z + w * x), 1 - 2 * (x * x + y * y)],
        ]
    )


def viewer_camera(
    position, wxyz, fov: float, aspect: float, max_side: int, normalization=None, offset=(0.0, 0.0, 0.0)
) -> Camera:
    """A :class:`Camera` seeing what the browser sees.

    ``position : (3,)`` and ``wxyz`` are the browser camera's pose in page coordinates (OpenCV
    convention, as viser reports it: +z looks forward, +y points down the image), ``fov`` its
    vertical field of view in radians and ``aspect`` width / height. The camera is moved into an
    input's coordinates (minus ``offset``) and then its ``normalization`` (a
    :class:`~deepcsp.geometry.normalize.Normalization`; a similarity, so directions and the field
    of view are kept); the image's longer side is ``max_side`` pixels."""
    if not (math.isfinite(aspect) and aspect > 0):
        raise ValueError(f"aspect must be positive, got {aspect!r}")
    r = quaternion_matrix(wxyz)
    forward, up = r[:, 2], -r[:, 1]
    eye = np.asarray(position, np.float64) - np.asarray(offset, np.float64)
    if normalization is not None:
        eye = normalization.to_normalized(eye)
    width, height = (
        (max_side, max(1, round(max_side / aspect))) if aspect >= 1 else (max(1, round(max_side * aspect)), max_side)
    )
    return Camera(
        eye=tuple(eye),
        look_at=tuple(eye + forward),
        up=tuple(up),
        fov=math.degrees(fov),
        width=int(width),
        height=int(height),
    )
