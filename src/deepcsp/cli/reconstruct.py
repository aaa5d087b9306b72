"""``deepcsp reconstruct CLOUD -o OUT.ply``: a mesh (and a CSP field) of the surface a point cloud samples."""

from __future__ import annotations

from dataclasses import dataclass
from dataclasses import field as dc_field
from pathlib import Path
from typing import Annotated, Literal

import tyro

from deepcsp.geometry.pointset import PointSetConfig


@dataclass
class ReconstructCommand:
    """Reconstruct the surface sampled by an unoriented point cloud (any size; noise, outliers,
    open or closed): writes a single-layer mesh, and with --field a CSP field of the surface for
    query/render/mesh."""

    input: Annotated[Path, tyro.conf.Positional]
    """Point cloud (.ply .xyz .npy .npz .las .laz) or mesh (its vertices are used)."""
    output: Annotated[Path, tyro.conf.arg(aliases=["-o"])] = Path("reconstruction.ply")
    """Output mesh (.ply .obj .off .stl .glb)."""
    field: Path | None = None
    """Also write the CSP field here (.safetensors)."""
    method: Literal["auto", "learned", "geometric", "global"] = "auto"
    """``auto``: point-set surface, projected by the learned local CSP model where noisy;
    ``learned`` / ``geometric``: always / never projected by it (a noisy cloud is still projected onto its own
    point-set surface); ``global``: the tri-plane baseline."""
    resolution: int = 0
    """Mesh extraction grid: cells per side of the normalised cube; 0 = the field's, at least 256."""
    field_resolution: int = 0
    """Fine vertices per axis of the band-grid field; 0 = from the sample spacing (192-512)."""
    seam_spacings: float = 1.5
    """Cut out seams of inconsistent winding at most this many sample spacings across (twists where two
    layers were joined) before holes are filled; 0: never."""
    thin_spacings: float = 1.5
    """After a closed extraction, put back the unsigned mesh's faces where samples lie further than this
    many spacings from the closed mesh (thin plates and bars, structure inside a body), and keep the
    small pieces that alone cover samples within that reach (beads of a thin part); 0: never."""
    fill_holes: bool = True
    """Close boundary loops that the cloud covers (holes of the extraction, not of the surface)."""
    polish: float = 0.05
    """Move the mesh onto its samples when they lie closer than this many spacings to it (median);
    0: never."""
    smooth: float = 0.1
    """Taubin-smooth the mesh of a noisy cloud: when the samples lie at least this many spacings off
    it (median, after polishing); 0: never."""
    clean_smooth: int = 3
    """Rounds of Taubin smoothing for the mesh of a cloud that is not noisy (after polishing), up to
    30,000 points; 0: never."""
    clean_smooth_dense: int = 1
    """The same for clouds of more than 30,000 points (their meshes follow the samples closer); 0: never."""
    turned_degrees: float = 45.0
    """Smooth again around the faces turned more than this many degrees from the point-set surface
    after clean smoothing (2 rounds, two rings of neighbours); 0: never."""
    rim_spacings: float = 1.5
    """Finally drop the faces that run on from a boundary further than this many local spacings from
    every sample; 0: never."""
    model: Path | None = None
    """Model file: a local CSP model (auto, learned) or a global one (global); default: shipped."""
    surface: PointSetConfig = dc_field(default_factory=PointSetConfig)
    """Point-set surface settings (advanced)."""
    device: str = "cpu"
    """``cpu`` or ``cuda``."""
    quiet: bool = False
    """No progress output."""

    def check(self) -> None:
        """Refuse bad options before any work."""
        from deepcsp._validate import (
            auto_or_at_least,
            device,
            distinct_outputs,
            finite_float,
            input_file,
            nonnegative_int,
            output_path,
        )
        from deepcsp.constants import MAX_RESOLUTION
        from deepcsp.io.surface import CLOUD_SUFFIXES, MESH_OUTPUT_SUFFIXES, MESH_SUFFIXES

        input_file(self.input, "point cloud", tuple(sorted(set(CLOUD_SUFFIXES + MESH_SUFFIXES))))
        output_path("--output", self.output, MESH_OUTPUT_SUFFIXES, inputs=[self.input])
        if self.field is not None:
            output_path("--field", self.field, (".safetensors",), inputs=[self.input])
            distinct_outputs({"--output": self.output, "--field": self.field})
        if self.model is not None:
            input_file(self.model, "model", (".safetensors",))
        for flag, value, most in (
            ("--resolution", self.resolution, MAX_RESOLUTION),
            ("--field-resolution", self.field_resolution, 1024),
        ):
            auto_or_at_least(flag, value, 8, most)
        for flag, value in (
            ("--polish", self.polish),
            ("--smooth", self.smooth),
            ("--rim-spacings", self.rim_spacings),
            ("--seam-spacings", self.seam_spacings),
            ("--thin-spacings", self.thin_spacings),
        ):
            finite_float(flag, value, 0.0, 1e6)
        nonnegative_int("--clean-smooth", self.clean_smooth, 1000)
        nonnegative_int("--clean-smooth-dense", self.clean_smooth_dense, 1000)
        finite_float("--turned-degrees", self.turned_degrees, 0.0, 90.0)
        device("--device", self.device)

    def config(self):
        """The :class:`~deepcsp.pipelines.ReconstructionConfig` these options describe."""
        from deepcsp.fit.config import CloudConfig, FitConfig
        from deepcsp.pipelines import ReconstructionConfig

        projection = {"auto": "auto", "learned": "learned", "geometric": "off", "global": "off"}[self.method]
        local_model = str(self.model) if self.model is not None and self.method != "global" else None
        cloud = CloudConfig(
            surface=self.surface, projection=projection, model=local_model, resolution=self.field_resolution
        )
        fit = FitConfig(cloud=cloud, eval_points=0, device=self.device)
        return ReconstructionConfig(
            method="global" if self.method == "global" else "csp",
            fit=fit,
            mesh_resolution=self.resolution,
            global_model=str(self.model) if self.model is not None and self.method == "global" else None,
            fill_holes=self.fill_holes,
            polish=self.polish,
            smooth=self.smooth,
            clean_smooth=self.clean_smooth,
            clean_smooth_dense=self.clean_smooth_dense,
            turned_degrees=self.turned_degrees,
            rim_spacings=self.rim_spacings,
            seam_spacings=self.seam_spacings,
            thin_spacings=self.thin_spacings,
        )

    def run(self) -> int:
        from deepcsp.cli._common import echo, progress_printer, table
        from deepcsp.errors import DeepCSPError
        from deepcsp.io import load_surface, save_mesh
        from deepcsp.pipelines import reconstruct_cloud
        from deepcsp.pipelines.reconstruct import band_grid_field

        self.check()
        config = self.config()
        surface = load_surface(self.input)
        with progress_printer("deepcsp reconstruct", self.quiet) as progress:
            try:
                rec = reconstruct_cloud(surface, config, progress=progress)
            except ValueError as exc:  # a cloud that cannot define a surface (too few points, a line)
                raise DeepCSPError(str(exc), self.input) from None
        save_mesh(self.output, rec.vertices, rec.faces)
        rows = [("input points", str(len(surface.vertices)))]
        if rec.cloud is not None:
            c = rec.cloud
            rows += [("repeated samples merged", str(c.n_repeated))] if c.n_repeated else []
            rows += [
                ("outliers dropped", str(c.n_outliers)),
                ("noise / spacing", f"{c.input_noise / c.spacing:.3f}"),
                (
                    "projection",
                    c.projection
                    + (f" (its offset {c.projection_offset / c.spacing:.3f} spacings removed)" if c.projected else ""),
                ),
                (
                    "patch",
                    f"{c.patch_neighbors} points, degree {c.patch_degree}"
                    + (f" ({c.local_patches:.0%} sized per point)" if c.local_patches else ""),
                ),
            ]
        s = rec.stats
        rows += [
            ("mesh faces", str(s.n_faces)),
            ("boundary loops", str(s.n_boundary_loops)),
            ("components", str(s.n_components)),
            (
                "seconds",
                f"{rec.seconds['total']:.1f} (field {rec.seconds['field']:.1f}, mesh {rec.seconds['mesh']:.1f})",
            ),
            ("output", str(self.output)),
        ]
        if self.field is not None:
            band_grid_field(rec.field, resolution=self.field_resolution or 192).save(self.field)
            rows.append(("field", str(self.field)))
        echo(table(rows, f"reconstructed {self.input.name}"))
        return 0
