"""``deepcsp query FIELD POINTS.npy -o OUT.npz``."""

from __future__ import annotations

import io
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated

import numpy as np
import tyro


@dataclass
class QueryCommand:
    """Closest points and distances (and optionally normals, curvatures) of query points,
    in the input's coordinates, written to an NPZ."""

    field: Annotated[Path, tyro.conf.Positional]
    """Field file written by ``deepcsp fit``."""
    points: Annotated[Path, tyro.conf.Positional]
    """Query points: .npy (N, 3), .npz, .xyz or .ply."""
    output: Annotated[Path, tyro.conf.arg(aliases=["-o"])] = Path("query.npz")
    """Output NPZ with ``closest_points`` (N, 3) and ``distances`` (N,)."""
    normals: bool = False
    """Also write ``normals`` (N, 3): outward for fields fitted to a closed mesh, else towards
    the query side."""
    curvature: bool = False
    """Also write ``k1``, ``k2``, ``mean_curvature``, ``gaussian_curvature`` (N,)."""
    signed: bool = False
    """Also write ``signed_distances`` (N,), negative inside; only for fields fitted to a closed
    mesh (the fit stores inside/outside then)."""
    device: str = "cpu"
    """``cpu`` or ``cuda``."""

    def check(self) -> None:
        """Refuse bad options before any work."""
        from deepcsp._validate import device, input_file, output_path

        input_file(self.field, "field")
        input_file(self.points, "points")
        output_path("--output", self.output, (".npz",), inputs=[self.field, self.points])
        device("--device", self.device)

    def run(self) -> int:
        import deepcsp
        from deepcsp._atomic import write_bytes
        from deepcsp.cli._common import echo
        from deepcsp.io import load_points

        self.check()
        field = deepcsp.load(self.field, device=self.device)
        pts = load_points(self.points)
        res = field.query(pts)
        out = {"closest_points": res.closest_points, "distances": res.distances}
        if self.signed:
            if not field.closed:
                from deepcsp.errors import DeepCSPError

                raise DeepCSPError(
                    "--signed needs a field fitted to a closed mesh (this one has no inside/outside)", self.field
                )
            out["signed_distances"] = field.signed_distances(pts)
        if self.normals or self.curvature:
            out.update(_diffgeo_arrays(field, pts, normals=self.normals, curvature=self.curvature))
        buf = io.BytesIO()
        np.savez(buf, **out)
        write_bytes(self.output, buf.getvalue())
        echo(f"wrote {self.output} ({len(pts)} points: {', '.join(out)})")
        return 0


def _diffgeo_arrays(field, points, normals: bool, curvature: bool) -> dict[str, np.ndarray]:
    """``normals`` (N, 3) and/or ``k1``, ``k2``, ``mean_curvature``, ``gaussian_curvature`` (N,), input
    coordinates (conventions: :mod:`deepcsp.fields.diffgeo`); with both, the curvature signs refer to
    the written normals."""
    from deepcsp.fields import diffgeo

    out = {}
    n = diffgeo.normals(field, points) if normals else None
    if curvature:
        c = diffgeo.curvatures(field, points)
        if n is not None:
            c = diffgeo.curvatures_along(c, n)
        out.update(k1=c.k1, k2=c.k2, mean_curvature=c.mean, gaussian_curvature=c.gaussian)
    if n is not None:
        out["normals"] = n
    return out
