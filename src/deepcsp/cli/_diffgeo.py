"""Normals and curvatures for ``deepcsp query`` (filled by the differential-geometry issue)."""

from __future__ import annotations

from deepcsp.errors import DeepCSPError


def add_diffgeo(field, points, out: dict, normals: bool, curvature: bool) -> None:
    raise DeepCSPError("--normals/--curvature are not available in this build")
