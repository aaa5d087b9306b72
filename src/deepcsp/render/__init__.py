"""Rendering: sphere tracing of closest-point fields (CSP, UDF or exact), exact ray casting of
meshes for reference, pinhole cameras, shading, normal and depth maps, turntables.

Layering: uses ``fields`` (through the :class:`deepcsp.fields.query.Field` interface) and
``geometry``; never ``fit``, ``extract`` or ``train``.
"""

from deepcsp.render.camera import VIEWS, Camera, Rays, framing_distance, orbit_camera, orbit_cameras, view_camera
from deepcsp.render.compare import RenderAgreement, compare_renders
from deepcsp.render.render import (
    ExactMesh,
    RayHits,
    RenderConfig,
    RenderResult,
    encode_animation,
    encode_png,
    exact_ray_cast,
    render_field,
    render_mesh_exact,
    render_turntable,
    render_view,
    save_rays,
)
from deepcsp.render.shading import ShadingConfig, depth_image, normal_image, shade
from deepcsp.render.tracer import TraceConfig, TraceResult, field_normals, ray_box_intersection, trace_rays

__all__ = [
    "VIEWS",
    "Camera",
    "ExactMesh",
    "RayHits",
    "RenderAgreement",
    "Rays",
    "RenderConfig",
    "RenderResult",
    "ShadingConfig",
    "TraceConfig",
    "TraceResult",
    "compare_renders",
    "depth_image",
    "encode_animation",
    "encode_png",
    "exact_ray_cast",
    "field_normals",
    "framing_distance",
    "normal_image",
    "orbit_camera",
    "orbit_cameras",
    "ray_box_intersection",
    "render_field",
    "render_mesh_exact",
    "render_turntable",
    "render_view",
    "save_rays",
    "shade",
    "trace_rays",
    "view_camera",
]
