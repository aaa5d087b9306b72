"""``deepcsp mesh FIELD -o OUT.ply [--resolution 256] [--points N]``."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Annotated

import tyro


@dataclass
class MeshCommand:
    """Extract a single-layer, consistently wound mesh (open sheets stay open) from a field, in the
    input's coordinates; optionally a dense point cloud on the surface by one-shot projection."""

    field: Annotated[Path, tyro.conf.Positional]
    """Field file written by ``deepcsp fit``."""
    output: Annotated[Path, tyro.conf.arg(aliases=["-o"])] = Path("mesh.ply")
    """Output mesh (.ply, .obj, .off, .stl or .glb)."""
    resolution: int = 256
    """Grid cells per side of the normalised cube (the detail of the mesh)."""
    topology_resolution: int = 0
    """Grid that decides the topology, refined to ``--resolution`` by subdivision and CSP projection.
    0 = auto: 2/3 of an open band-grid field's resolution (1/3 unrefined), else ``--resolution``."""
    points: int = 0
    """Also write this many surface points to ``<output stem>_points.ply`` (0: none)."""
    points_output: Path | None = None
    """Where the points go (default ``<output stem>_points.ply``)."""
    min_component_faces: int = 0
    """Drop connected components with fewer faces than this (0 keeps all)."""
    speck_faces: int = 48
    """Closed fields: drop components of at most this many faces within 3 cells of a much larger one
    (sign flips beside the surface); 0 keeps them."""
    zip_slits: float = 0.15
    """Open fields: close slits (boundary loops whose patch is at most twice this many grid cells wide
    and lies within this many cells of the surface: tears along creases); 0: never."""
    creases: bool = False
    """Open fields: also recover crossings next to sharp creases (CAD shapes); may add faces along
    open boundaries."""
    signs: bool = True
    """Fields fitted to a closed mesh: contour the stored inside/outside (watertight, outward);
    ``--no-signs`` uses the open-surface (pseudo-sign) path instead."""
    dilate: float = 0.5
    """Closed fields: contour ``signed distance = dilate`` grid cells, then snap onto the surface, so
    that parts thinner than a cell come out closed (narrower gaps close); 0: the surface itself."""
    thin_parts: bool = False
    """Closed fields with ``--dilate 0``: flip grid corners next to parts thinner than a cell
    (superseded by ``--dilate``)."""
    unmerge: bool = True
    """Open fields: two sheets closer than the topology grid resolves are meshed as one mid-surface
    (that keeps them from shredding) and then split back into both layers where the field sees two;
    ``--no-unmerge`` keeps the single mid-surface."""
    sharpen: float = 1.0
    """Move vertices onto the creases and corners the field shows, reading tangent planes this many
    grid cells around each vertex (CAD edges, wing trailing edges); 0: never."""
    device: str = "cpu"
    """``cpu`` or ``cuda``."""

    def _points_path(self) -> Path:
        return (
            Path(self.points_output)
            if self.points_output is not None
            else self.output.with_name(self.output.stem + "_points.ply")
        )

    def check(self):
        """Refuse bad options before any work; returns the extraction config."""
        from deepcsp._validate import (
            OptionError,
            device,
            distinct_outputs,
            finite_float,
            input_file,
            integer,
            output_path,
        )
        from deepcsp.constants import MAX_POINTS, MAX_RESOLUTION
        from deepcsp.extract import ExtractConfig
        from deepcsp.io.surface import MESH_OUTPUT_SUFFIXES, POINT_OUTPUT_SUFFIXES

        input_file(self.field, "field")
        output_path("--output", self.output, MESH_OUTPUT_SUFFIXES, inputs=[self.field])
        integer("--resolution", self.resolution, 4, MAX_RESOLUTION)
        if self.topology_resolution != 0:
            integer("--topology-resolution", self.topology_resolution, 4, MAX_RESOLUTION)
        integer("--points", self.points, 0, MAX_POINTS)
        integer("--min-component-faces", self.min_component_faces, 0, 2**31 - 1)
        integer("--speck-faces", self.speck_faces, 0, 2**31 - 1)
        finite_float("--dilate", self.dilate, 0.0, 2.0)
        finite_float("--zip-slits", self.zip_slits, 0.0, 1.0)
        finite_float("--sharpen", self.sharpen, 0.0, 4.0)
        if self.points_output is not None and self.points == 0:
            raise OptionError("--points-output", "is set but --points is 0 (no points are written)")
        if self.points > 0:
            output_path("--points-output", self._points_path(), POINT_OUTPUT_SUFFIXES, inputs=[self.field])
            distinct_outputs({"--output": self.output, "--points-output": self._points_path()})
        device("--device", self.device)
        return ExtractConfig(
            resolution=self.resolution,
            topology_resolution=self.topology_resolution,
            points=self.points,
            min_component_faces=self.min_component_faces,
            speck_faces=self.speck_faces,
            zip_slits=self.zip_slits,
            side_cos=0.5 if self.creases else -1.0,
            use_signs=self.signs,
            thin_parts=self.thin_parts,
            dilate=self.dilate,
            unmerge_sheets=self.unmerge,
            sharpen=self.sharpen,
        )

    def run(self) -> int:
        import deepcsp
        from deepcsp.cli._common import echo, fmt, table
        from deepcsp.errors import DeepCSPError
        from deepcsp.extract import extract_mesh
        from deepcsp.io import save_mesh, save_points

        cfg = self.check()
        field = deepcsp.load(self.field, device=self.device)
        res = extract_mesh(field, cfg)
        if len(res.faces) == 0:
            raise DeepCSPError("no surface found in the field (empty mesh); is it a fitted field?", self.field)
        save_mesh(self.output, res.vertices, res.faces)
        rows = [
            ("vertices / faces", f"{len(res.vertices)} / {len(res.faces)}"),
            ("path", "signed (closed field)" if res.signed else "pseudo-sign (open field)"),
            (
                "topology grid",
                f"{res.topology_resolution}^3, refined {res.refine_passes}x"
                if res.refine_passes
                else f"{res.topology_resolution}^3",
            ),
            *_retry_row(
                "pinched boundary",
                f"{res.n_pinched} vertices on the automatic grid",
                res.n_pinched,
                res.unpinched,
                f"; {res.n_bridged} strips put back" if res.n_bridged else "",
            ),
            *_retry_row(
                "walls between sheets", f"{res.n_walls} faces on the automatic grid's mesh", res.n_walls, res.unwalled
            ),
            *(
                [("close sheets", f"merged, {res.n_unmerged} vertices split back into two layers")]
                if res.n_merged
                else []
            ),
            *([("sharp features", f"{res.n_sharpened} vertices moved onto creases")] if res.n_sharpened else []),
            ("components", str(res.stats.n_components)),
            ("boundary loops", str(res.stats.n_boundary_loops)),
            ("winding consistent", str(res.stats.winding_consistent)),
            ("non-manifold edges", str(res.stats.n_nonmanifold_edges)),
            (
                "field evaluations",
                f"{res.n_evaluations} ({100 * res.evaluation_fraction:.1f}% of a dense {self.resolution}^3 grid)",
            ),
            ("bias removed", fmt(field.normalization.distance_to_input(res.bias))),
            ("seconds", f"{res.seconds:.2f}"),
        ]
        echo(table(rows, title=f"wrote {self.output}"))
        if self.points > 0:
            out = self._points_path()
            save_points(out, res.points)
            echo(f"wrote {out} ({len(res.points)} points)")
        return 0


def _retry_row(name: str, found: str, n: int, kept: bool, extra: str = "") -> list[tuple[str, str]]:
    """The summary row of a retry on the finer topology grid (pinches, walls): none when nothing was found."""
    if not n:
        return []
    return [(name, f"{found}; the finer grid's mesh {'kept' if kept else 'was no better'}{extra}")]
