"""Compact storage of band-grid values: uniform quantisation, second differences along runs of
consecutive grid vertices, zlib.

A band grid's values (closest-point displacements) are piecewise linear along a grid row, so
their second differences along the row are zero except where the closest point changes face,
edge or sheet. Values are rounded to multiples of ``step`` (at most ``step / 2`` off per
component), then within each run of consecutive vertex ids the integers are replaced by their
second differences (the first of a run kept as is, the second as ``x_1 - 2 x_0``), zigzag-mapped
to unsigned int32, byte-shuffled (byte k of every value together) and deflated. Decoding is the
inverse: two segmented cumulative sums. Measured on the dev meshes: about half the bytes of the
float16 + zlib storage it replaces at a fine-cell step of 1/128.

The byte shuffle, zigzag map and bounded inflation are shared with the other stored streams
(:mod:`deepcsp.fields.meshcodec`, the masks of :mod:`deepcsp.fields.query`).
"""

from __future__ import annotations

import lzma
import zlib

import numpy as np
import torch

#: Codec name written into a field file's compression spec.
CODEC = "delta2-q"
#: Quantisation step as a fraction of the fine cell: values are stored to within half of it.
STEPS_PER_CELL = 128


def shuffled(a: np.ndarray) -> bytes:
    """The bytes of ``a`` with byte k of every element together (numbers that vary in their low
    bytes only then deflate well)."""
    a = np.ascontiguousarray(a)
    return np.ascontiguousarray(a.reshape(-1).view(np.uint8).reshape(-1, a.itemsize).T).tobytes()


def unshuffled(raw: bytes, dtype, count: int) -> np.ndarray:
    """Inverse of :func:`shuffled`: ``(count,)`` elements of ``dtype``."""
    dtype = np.dtype(dtype)
    return np.frombuffer(raw, np.uint8).reshape(dtype.itemsize, count).T.copy().view(dtype).reshape(count)


def zigzag(b: np.ndarray) -> np.ndarray:
    """Signed integers ``b`` (int64, ``|b| < 2^31``) as uint32: 0, -1, 1, -2, ... -> 0, 1, 2, 3, ..."""
    b = np.asarray(b, dtype=np.int64)
    return ((b << 1) ^ (b >> 63)).astype(np.uint32)


def unzigzag(z: np.ndarray) -> np.ndarray:
    """Inverse of :func:`zigzag` (int64)."""
    z = np.asarray(z).astype(np.int64)
    return (z >> 1) ^ -(z & 1)


def inflate(data: bytes, size: int, limit: int, what: str = "compressed tensor", xz: bool = False) -> bytes:
    """Exactly ``size`` inflated bytes of the zlib (or ``xz``) stream ``data``, refused before
    anything is allocated when ``size`` exceeds ``limit``; a crafted stream cannot inflate further.
    ``what`` names the stream in errors."""
    if size > limit:
        raise ValueError(f"would inflate to {size} bytes, more than the limit {limit}")
    if xz:
        try:
            inflater = lzma.LZMADecompressor()
            raw = inflater.decompress(data, size + 1)
        except lzma.LZMAError as exc:
            raise ValueError(f"{what} is not xz ({exc})") from None
        more = len(raw) > size or not inflater.eof
    else:
        inflater = zlib.decompressobj()
        raw = inflater.decompress(data, size + 1)
        more = len(raw) > size or bool(inflater.unconsumed_tail)
    if len(raw) != size or more:
        raise ValueError(f"{what} holds {'more than ' if more else ''}{len(raw)} bytes, expected {size}")
    return raw


def runs(ids: np.ndarray) -> np.ndarray:
    """``(N,)`` bool: which entries of the sorted ids ``(N,)`` continue a run (``ids[i] == ids[i-1] + 1``)."""
    ids = np.asarray(ids)
    out = np.zeros(len(ids), dtype=bool)
    out[1:] = ids[1:] == ids[:-1] + 1
    return out


def _segmented_cumsum(v: np.ndarray, cont: np.ndarray) -> np.ndarray:
    """Cumulative sums of ``v (N, C)`` restarted where ``cont`` is False."""
    cs = np.cumsum(v, axis=0)
    start = np.flatnonzero(~cont)
    run = np.cumsum(~cont) - 1
    base = (cs[start] - v[start])[run]
    return cs - base


def encode(values: torch.Tensor, cont: np.ndarray, step: float) -> tuple[torch.Tensor, dict]:
    """Compressed bytes (uint8 tensor) and spec of ``values (N, C)`` (float), with run flags
    ``cont (N,)`` (:func:`runs`) and quantisation ``step``."""
    width = int(np.prod(values.shape[1:], dtype=np.int64)) if values.dim() > 1 else 1
    v = values.detach().cpu().double().numpy().reshape(len(values), width)  # (0, C) too: an empty refined level
    q = np.round(v / step).astype(np.int64)
    c = np.asarray(cont, dtype=bool)[:, None]
    a = q - np.where(c, np.roll(q, 1, axis=0), 0)
    b = a - np.where(c, np.roll(a, 1, axis=0), 0)
    if len(b) and np.abs(b).max() >= 2**31:
        raise ValueError(f"values too large for step {step:g} (|residual| {int(np.abs(b).max())})")
    blob = np.frombuffer(zlib.compress(shuffled(zigzag(b)), 9), dtype=np.uint8).copy()
    return torch.from_numpy(blob), {
        "shape": list(values.shape),
        "dtype": "float32",
        "codec": CODEC,
        "step": float(step),
    }


def decode(raw: bytes, shape: list[int], cont: np.ndarray, step: float) -> torch.Tensor:
    """Inverse of :func:`encode` for the inflated bytes ``raw`` (``4 * prod(shape)`` of them)."""
    n = shape[0] if shape else 1
    count = int(np.prod(shape, dtype=np.int64)) if shape else 1
    if len(cont) != n:
        raise ValueError(f"run flags for {len(cont)} entries, the tensor has {n}")
    if not np.isfinite(step) or step <= 0:
        raise ValueError(f"quantisation step must be positive, got {step!r}")
    width = count // n if n else 0
    b = unzigzag(unshuffled(raw, np.uint32, count)).reshape(n, width)
    cont = np.asarray(cont, dtype=bool)
    q = _segmented_cumsum(_segmented_cumsum(b, cont), cont)
    return torch.from_numpy((q * step).astype(np.float32).reshape(shape))
