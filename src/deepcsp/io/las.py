"""LAS point clouds (ASPRS LAS 1.0-1.4, the format of airborne and terrestrial laser scans).

Uncompressed ``.las`` files are read here with NumPy: every point record starts with its x, y, z
as 32-bit integers, scaled and offset by the header, so the coordinates are read without a
dependency whatever the point format (0-10) and its other fields. Points flagged withheld (which
the format defines as deleted) or classified as noise (classes 7 and 18) are left out, with a
:class:`~deepcsp.errors.DeepCSPWarning` that counts them. Compressed ``.laz`` files (and
``.las`` files whose header says compressed) are read through laspy with its lazrs backend when it
is installed (``pip install 'deepcsp[las]'``); without it the error says so.
"""

from __future__ import annotations

import struct
import warnings
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from deepcsp.errors import DeepCSPError, DeepCSPWarning

#: Bytes of the public header block of LAS 1.0-1.2 (1.3: 235, 1.4: 375).
HEADER_BYTES = 227
#: Bytes of the 1.4 header, which adds 64-bit point counts.
HEADER_BYTES_14 = 375
#: ASPRS classes of noise (low and high), left out with withheld points.
NOISE_CLASSES = (7, 18)
#: Shortest point record of each point data format (ASPRS LAS 1.4 R15, tables 7-17).
RECORD_BYTES = {0: 20, 1: 28, 2: 26, 3: 34, 4: 57, 5: 63, 6: 30, 7: 36, 8: 38, 9: 59, 10: 67}


@dataclass(frozen=True)
class LasHeader:
    """What of a LAS header the points need."""

    point_format: int
    """Point data format, 0-10, the compression bits cleared."""
    record_bytes: int
    count: int
    points_at: int
    """Byte offset of the first point record."""
    scale: tuple[float, float, float]
    offset: tuple[float, float, float]
    compressed: bool
    file_bytes: int


def read_las_header(path: Path) -> LasHeader:
    """The header of a LAS or LAZ file; DeepCSPError naming the file when it is not one."""
    size = path.stat().st_size
    with open(path, "rb") as fh:
        head = fh.read(HEADER_BYTES_14)
    if not head.startswith(b"LASF"):
        raise DeepCSPError(f"is not a valid {path.suffix.lower()} file (missing 'LASF' signature)", path)
    if len(head) < HEADER_BYTES:
        raise DeepCSPError(f"is truncated ({size} bytes, shorter than a LAS header of {HEADER_BYTES})", path)
    major, minor = head[24], head[25]
    header_bytes, points_at = struct.unpack_from("<HI", head, 94)
    format_byte, record_bytes, legacy_count = struct.unpack_from("<BHI", head, 104)
    scale = struct.unpack_from("<3d", head, 131)
    offset = struct.unpack_from("<3d", head, 155)
    if major != 1:
        raise DeepCSPError(f"is LAS version {major}.{minor}; only LAS 1.x is read", path)
    count = legacy_count
    if minor >= 4:
        if header_bytes < HEADER_BYTES_14 or len(head) < HEADER_BYTES_14:
            raise DeepCSPError(f"is truncated or not a valid LAS 1.{minor} file (header of {header_bytes} bytes)", path)
        count = struct.unpack_from("<Q", head, 247)[0] or legacy_count
    if header_bytes < HEADER_BYTES or not header_bytes <= points_at <= size:
        raise DeepCSPError(
            f"is not a valid LAS file (header of {header_bytes} bytes, points from byte {points_at} of {size})", path
        )
    # LAZ sets bit 7 of the format byte (and not bit 6, which some writers use otherwise)
    compressed = bool(format_byte & 0x80) and not format_byte & 0x40
    point_format = format_byte & 0x3F
    if point_format not in RECORD_BYTES:
        raise DeepCSPError(f"has point data format {point_format}; LAS defines 0-10", path)
    if not compressed and record_bytes < RECORD_BYTES[point_format]:
        raise DeepCSPError(
            f"is not a valid LAS file (records of {record_bytes} bytes, "
            f"format {point_format} needs at least {RECORD_BYTES[point_format]})",
            path,
        )
    if not all(np.isfinite(scale)) or 0.0 in scale or not all(np.isfinite(offset)):
        raise DeepCSPError(f"has an unusable coordinate scale {scale} or offset {offset}", path)
    return LasHeader(point_format, record_bytes, count, points_at, scale, offset, compressed, size)


def read_las(path: str | Path, max_elements: int) -> np.ndarray:
    """The points ``(N, 3)`` float64 of a LAS or LAZ file, in its coordinates (scale and offset
    applied). Refuses a file that declares more than ``max_elements`` points before reading them;
    DeepCSPError naming the file for a truncated, compressed-without-laspy or invalid one."""
    path = Path(path)
    header = read_las_header(path)
    if header.count > max_elements:
        raise DeepCSPError(
            f"declares {header.count} points, more than the limit of {max_elements} (raise max_elements)", path
        )
    if header.count == 0:
        raise DeepCSPError("contains no points (its header declares 0)", path)
    if header.compressed or path.suffix.lower() == ".laz":
        xyz, withheld, classes = _read_laz(path)
    else:
        xyz, withheld, classes = _read_records(path, header)
    keep = ~withheld & ~np.isin(classes, NOISE_CLASSES)
    if not keep.all():
        if not keep.any():
            raise DeepCSPError(f"all its {len(keep)} points are withheld or classified as noise (classes 7, 18)", path)
        warnings.warn(
            f"{path}: left out {int((~keep).sum())} of {len(keep)} points, withheld or classified as noise "
            "(classes 7, 18)",
            DeepCSPWarning,
            stacklevel=3,
        )
    return xyz[keep]


def _read_records(path: Path, header: LasHeader) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Points ``(N, 3)``, withheld flags ``(N,)`` and classes ``(N,)`` of an uncompressed file."""
    end = header.points_at + header.count * header.record_bytes
    if end > header.file_bytes:
        raise DeepCSPError(
            f"is truncated: it declares {header.count} points of {header.record_bytes} bytes from byte "
            f"{header.points_at} ({end} bytes) but has {header.file_bytes}",
            path,
        )
    # formats 0-5: byte 15 holds the class (bits 0-4) and the withheld flag (bit 7); formats 6-10:
    # byte 15 the flags (withheld: bit 2), byte 16 the class
    record = np.dtype(
        {
            "names": ["xyz", "b15", "b16"],
            "formats": [("<i4", 3), "u1", "u1"],
            "offsets": [0, 15, 16],
            "itemsize": header.record_bytes,
        }
    )
    raw = np.fromfile(path, dtype=record, count=header.count, offset=header.points_at)
    xyz = raw["xyz"] * np.asarray(header.scale) + np.asarray(header.offset)
    if header.point_format <= 5:
        return xyz, (raw["b15"] & 0x80) > 0, raw["b15"] & 0x1F
    return xyz, (raw["b15"] & 0x04) > 0, raw["b16"]


def _read_laz(path: Path) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """A compressed file's points, withheld flags and classes through laspy (its lazrs or laszip
    backend)."""
    try:
        import laspy
    except ImportError:
        raise DeepCSPError(
            "holds compressed (LAZ) points: install laspy with a LAZ backend (pip install 'deepcsp[las]') "
            "or decompress it to .las",
            path,
        ) from None
    try:
        las = laspy.read(path)
    except Exception as exc:  # laspy's own errors, missing backend, truncation
        first = (str(exc).splitlines() or [""])[0][:200]
        raise DeepCSPError(f"cannot be read as LAZ ({type(exc).__name__}: {first})", path) from None
    xyz = np.stack([np.asarray(las.x, np.float64), np.asarray(las.y, np.float64), np.asarray(las.z, np.float64)], 1)
    return xyz, np.asarray(las.withheld, bool), np.asarray(las.classification, np.uint8)
