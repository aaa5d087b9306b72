"""Sphere tracing of unsigned closest-point fields, with tangent-plane jumps near the surface.

A field gives, at any point ``p``, its closest surface point ``CSP(p)``. The ball of radius
``|p - CSP(p)|`` around ``p`` is empty, so a ray may always advance by that distance (sphere
tracing). Near the surface (``dist < plane_band``) the tracer instead jumps to the ray's
intersection with the tangent plane through ``CSP(p)`` with normal ``p - CSP(p)`` -- exact for a
plane, far fewer steps at oblique angles -- capped at ``max_jump`` times the safe distance.

Open surfaces have no inside, so a ray stops where ``|p - CSP(p)| < hit_eps`` (the depth is
refined by one last tangent-plane projection, no extra evaluation) and is never allowed to step
through a sheet silently: when the tangent plane switches from ahead of the ray to behind it and
the direction to the closest point turns sharply, or when a jump past the safe distance ends with
the plane behind (a thin part beside a closer surface, jumped through on that surface's plane), a
sheet was crossed (or a silhouette passed);
the crossing is bracketed and refined by Newton steps on the tangent planes (bisection when they
leave the bracket). A settled bracket is a hit if the field came within ``bracket_eps`` of zero
inside it, else marching resumes behind it. Iterations are bounded; everything runs on the
field's device on batches of the rays still active.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from deepcsp._validate import Fields
from deepcsp.constants import CLEAN_FLIP_COS, HALF_SIDE, MIN_NEWTON_STEP, NORMAL_OFFSET
from deepcsp.fields.batched import QUERY_CHUNK, map_rows


@dataclass
class TraceConfig:
    """How rays are traced (all lengths in normalised units; the cube has side 1)."""

    hit_eps: float = 5e-4
    """A ray hits where the field's distance drops below this."""
    max_iters: int = 96
    """Field evaluations allowed per ray; rays still going after that count as misses."""
    plane_band: float = 0.03
    """Below this distance the tracer jumps to the tangent plane instead of sphere stepping."""
    max_jump: float = 4.0
    """A tangent-plane jump is at most this many times the safe (sphere) step."""
    jump_cos: float = 0.05
    """Jump only where cos(ray, plane normal) exceeds this (larger: fewer thin parts skipped at grazing
    angles, but more false hits near silhouettes; see benchmarks/RESULTS.md, rendering)."""
    min_cos: float = 0.05
    """Tangent-plane refinements (of hits and brackets) only where |cos| exceeds this."""
    verify_cos: float = 0.4
    """A hit at a grazing angle (|cos| below this) is confirmed by one more evaluation on the
    tangent plane; rays passing within ``hit_eps`` of a silhouette fail it and march on."""
    refine_max: float = 4.0
    """The final tangent-plane refinement of a hit moves it by at most this many ``hit_eps``."""
    flip_cos: float = 0.7
    """A sheet may have been crossed between two evaluations (the tangent plane went from ahead of
    the ray to behind it) when their directions to the closest point have a cosine below this."""
    max_refine: int = 6
    """Evaluations spent refining a bracketed crossing before settling it."""
    bracket_tol: float = 1e-4
    """A bracket narrower than this (along the ray) is settled."""
    bracket_eps: float = 1e-3
    """A settled bracket is a hit if the field's distance came below this inside it (fields
    whose residual on the surface exceeds ``hit_eps``, e.g. near thin edges, still hit)."""
    half: float = HALF_SIDE
    """Half side of the box rays are clipped to; empty space outside it is skipped."""

    def __post_init__(self) -> None:
        self.validate()

    def validate(self) -> "TraceConfig":
        """Raise :class:`~deepcsp._validate.OptionError` (a ValueError) naming the first bad setting; return self."""
        f = Fields(self)
        for name in ("hit_eps", "plane_band", "half", "bracket_tol", "bracket_eps"):
            f.number(name, 0.0, 1e6, min_open=True)
        f.integer("max_iters", 1, 100_000)
        f.number("max_jump", 1.0, 1e6)
        for name in ("min_cos", "jump_cos", "verify_cos"):
            f.number(name, 0.0, 1.0, min_open=True, max_open=True)
        f.number("flip_cos", -1.0, 1.0)
        f.integer("max_refine", 1, 1000)
        f.number("refine_max", 0.0, 1e6)
        return self


@dataclass
class TraceResult:
    """Per ray (R rays): ``hit : (R,)`` bool, ``depth : (R,)`` distance along the unit ray (inf
    for misses), ``points : (R, 3)`` hit points (NaN for misses), ``evaluations : (R,)`` int32
    field evaluations, ``unconverged : (R,)`` bool (ran out of iterations inside the box). All
    tensors on the field's device, normalised coordinates."""

    hit: torch.Tensor
    depth: torch.Tensor
    points: torch.Tensor
    evaluations: torch.Tensor
    unconverged: torch.Tensor


def ray_box_intersection(
    origins: torch.Tensor, directions: torch.Tensor, half: float = HALF_SIDE
) -> tuple[torch.Tensor, torch.Tensor]:
    """Slab test against ``[-half, half]^3``: entry and exit distances ``t_near, t_far : (R,)``
    along ``origins + t * directions`` (both ``(R, 3)``). A ray misses when ``t_near > t_far``
    or ``t_far < 0``."""
    d = directions
    tiny = torch.finfo(d.dtype).tiny
    safe = torch.where(d.abs() < 1e-30, torch.where(d < 0, -tiny, tiny), d)  # keeps inf signs right
    inv = 1.0 / safe
    t0 = (-half - origins) * inv
    t1 = (half - origins) * inv
    t_near = torch.minimum(t0, t1).amax(dim=1)
    t_far = torch.maximum(t0, t1).amin(dim=1)
    return t_near, t_far


def _closest(field, x: torch.Tensor) -> torch.Tensor:
    return map_rows(field.closest_points_normalized, x, int(getattr(field, "chunk", QUERY_CHUNK)))


def _check_rays(origins, directions) -> None:
    for name, a in (("origins", origins), ("directions", directions)):
        if not isinstance(a, torch.Tensor):
            raise ValueError(f"{name} must be a torch tensor, got {type(a).__name__}")
        if a.ndim != 2 or a.shape[-1] != 3:
            raise ValueError(f"{name} must have shape (R, 3), got {tuple(a.shape)}")
        if not a.is_floating_point():
            raise ValueError(f"{name} must be floating point, got {a.dtype}")
        if not torch.isfinite(a).all():
            raise ValueError(f"{name} contains NaN or inf in {int((~torch.isfinite(a)).any(1).sum())} rows")
    if origins.shape != directions.shape:
        raise ValueError(f"origins {tuple(origins.shape)} and directions {tuple(directions.shape)} differ in shape")
    n = directions.norm(dim=1)
    if len(n) and float(n.min()) <= 0.0:
        raise ValueError(f"{int((n <= 0).sum())} directions are zero")


@torch.no_grad()
def trace_rays(
    field, origins: torch.Tensor, directions: torch.Tensor, config: TraceConfig | None = None
) -> TraceResult:
    """Sphere-trace rays through ``field`` (any :class:`deepcsp.fields.query.Field`).

    Parameters
    ----------
    field
        Provides ``closest_points_normalized(x : (N, 3)) -> (N, 3)`` and ``device``.
    origins, directions : (R, 3) tensors
        Rays in normalised coordinates; directions are normalised here (depth is measured along
        the unit direction).
    config
        Thresholds and budgets; see :class:`TraceConfig`.
    """
    cfg = (config or TraceConfig()).validate()
    _check_rays(origins, directions)
    device = torch.device(getattr(field, "device", origins.device))
    o = origins.to(device=device, dtype=torch.float32)
    d = torch.nn.functional.normalize(directions.to(device=device, dtype=torch.float32), dim=1)
    out = _Outcome(
        hit=torch.zeros(len(o), dtype=torch.bool, device=device),
        depth=torch.full((len(o),), float("inf"), device=device),
        evaluations=torch.zeros(len(o), dtype=torch.int32, device=device),
    )
    idx, st = _start(o, d, cfg)
    for _ in range(int(cfg.max_iters)):
        if len(idx) == 0:
            break
        idx, st = _step(field, o, d, idx, st, cfg, out)
    unconverged = torch.zeros(len(o), dtype=torch.bool, device=device)
    unconverged[idx] = True
    points = o + out.depth.clamp(max=torch.finfo(torch.float32).max)[:, None] * d
    points[~out.hit] = float("nan")
    return TraceResult(
        hit=out.hit, depth=out.depth, points=points, evaluations=out.evaluations, unconverged=unconverged
    )


@dataclass
class _Outcome:
    """What tracing has found so far, per ray (all R rays)."""

    hit: torch.Tensor
    depth: torch.Tensor
    evaluations: torch.Tensor


@dataclass
class _Probe:
    """One field evaluation at the active rays' current points ``p = o + t d``: the distance to the
    closest point, the unit direction ``n`` from it, ``cos`` (> 0: the tangent plane is ahead of
    ``p`` along the ray), the signed step ``plane`` to the tangent plane and ``newton = t + plane``
    (``t`` where the plane is too oblique)."""

    t: torch.Tensor
    dist: torch.Tensor
    n: torch.Tensor
    cos: torch.Tensor
    plane: torch.Tensor
    newton: torch.Tensor


def _start(o: torch.Tensor, d: torch.Tensor, cfg: TraceConfig) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
    """The rays that enter the box (their indices) and their state at the entry point: the previous
    evaluation, and the bracket ``[lo, hi]`` of a crossed sheet (``hi = inf`` while marching)."""
    t_near, t_far = ray_box_intersection(o, d, cfg.half)
    idx = torch.nonzero((t_near <= t_far) & (t_far >= 0)).squeeze(1)
    t = t_near[idx].clamp(min=0.0)
    inf = float("inf")
    st = {
        "t": t,
        "t_end": t_far[idx],
        "dist_prev": torch.full_like(t, inf),
        "cos_prev": torch.zeros_like(t),
        "n_prev": torch.zeros_like(o[idx]),
        "lo": t.clone(),
        "hi": torch.full_like(t, inf),
        "n_ref": torch.zeros_like(o[idx]),
        "n_hi": torch.zeros_like(o[idx]),
        "best_t": t.clone(),
        "best_dist": torch.full_like(t, inf),
        "newton_prev": t.clone(),
        "verified": torch.zeros_like(t, dtype=torch.bool),
        "t_prev": t.clone(),
        "refines": torch.zeros_like(t),
    }
    return idx, st


def _step(
    field, o, d, idx: torch.Tensor, st: dict, cfg: TraceConfig, out: _Outcome
) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
    """One evaluation of every active ray: record hits, move the others on; returns the rays still
    active and their state."""
    ev = _probe(field, o[idx], d[idx], st["t"], cfg.min_cos)
    out.evaluations[idx] += 1
    close, verify, t_close = _close_hits(ev, st, cfg)
    br = _bracket(ev, st, cfg, close, verify)
    done = close | br["hit"]
    if bool(done.any()):
        j = idx[done]
        out.hit[j] = True
        out.depth[j] = torch.where(close, t_close, br["best_t"])[done]
    t_next = _advance(ev, br, cfg, verify)
    st = {
        "t": t_next,
        "t_end": st["t_end"],
        "t_prev": ev.t,
        "newton_prev": ev.newton,
        "dist_prev": ev.dist,
        "cos_prev": ev.cos,
        "n_prev": ev.n,
        "verified": verify,
        **{k: br[k] for k in ("lo", "hi", "n_ref", "n_hi", "best_t", "best_dist", "refines")},
    }
    keep = ~done & (t_next <= st["t_end"])
    return idx[keep], {k: v[keep] for k, v in st.items()}


def _probe(field, o: torch.Tensor, d: torch.Tensor, t: torch.Tensor, min_cos: float) -> _Probe:
    p = o + t[:, None] * d
    r = p - _closest(field, p)
    dist = r.norm(dim=1)
    n = r / dist.clamp(min=1e-20)[:, None]
    cos = -(n * d).sum(1)
    ok_cos = cos.abs() > min_cos
    plane = dist / torch.where(ok_cos, cos, torch.ones_like(cos))
    newton = t + torch.where(ok_cos, plane, torch.zeros_like(plane))
    return _Probe(t=t, dist=dist, n=n, cos=cos, plane=plane, newton=newton)


def _close_hits(ev: _Probe, st: dict, cfg: TraceConfig) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Rays close enough to stop, refined by one tangent-plane projection (no new evaluation):
    ``(close, verify, t_close)``. A grazing stop (|cos| < verify_cos) may be a ray passing a
    silhouette: it is first moved onto the tangent plane (``verify``) and must be close there too."""
    eps = cfg.hit_eps
    close = ev.dist < eps
    verify = close & (ev.cos.abs() < cfg.verify_cos) & ~st["verified"] & ~torch.isfinite(st["hi"])
    close = close & ~verify
    t_close = ev.t + (ev.newton - ev.t).clamp(-cfg.refine_max * eps, cfg.refine_max * eps)
    return close, verify, t_close


def _bracket(
    ev: _Probe, st: dict, cfg: TraceConfig, close: torch.Tensor, verify: torch.Tensor
) -> dict[str, torch.Tensor]:
    """Open a bracket where a sheet was crossed since the last evaluation (the plane went from ahead
    to behind and the direction to the closest point turned by more than acos(flip_cos)), narrow
    the open ones, and settle those narrow or refined enough: ``hit`` (the field came within
    ``bracket_eps`` in it, or a clean flip across a narrow bracket) or ``false_alarm`` (a ray
    passing a silhouette: marching resumes behind it)."""
    band, cmin = cfg.plane_band, cfg.min_cos
    t, dist, n = ev.t, ev.dist, ev.n
    lo, hi = st["lo"], st["hi"]
    refining = torch.isfinite(hi)
    # a jump past the last safe distance may have gone through a sheet that was not the closest
    # one (a thin tail beside a fuselage): with the plane now behind, that counts as a turn too
    unsafe = t - st["t_prev"] > st["dist_prev"]
    crossed = (
        ~refining
        & ~close
        & ~verify
        & ((dist < band) | unsafe)
        & (st["dist_prev"] < band)
        & (ev.cos < -cmin)
        & (st["cos_prev"] > cmin)
        & (((n * st["n_prev"]).sum(1) < cfg.flip_cos) | unsafe)
    )
    n_ref = torch.where(crossed[:, None], st["n_prev"], st["n_ref"])
    lo = torch.where(crossed, st["t_prev"], lo)
    hi = torch.where(crossed, t, hi)
    refining = refining | crossed
    # Inside a bracket: which side of the sheet is p on (relative to the front normal)?
    front = (n * n_ref).sum(1) > 0
    lo = torch.where(refining & front & ~crossed, torch.maximum(lo, t), lo)
    hi = torch.where(refining & ~front & ~crossed, torch.minimum(hi, t), hi)
    n_hi = torch.where((crossed | (refining & ~front))[:, None], n, st["n_hi"])
    # the evaluation before the crossing counts towards the bracket's best estimate too
    best_t = torch.where(crossed, st["newton_prev"], st["best_t"])
    best_dist = torch.where(crossed, st["dist_prev"], st["best_dist"])
    better = refining & (dist < best_dist)
    best_t = torch.where(better, ev.newton.clamp(min=0.0), best_t)
    best_dist = torch.where(better, dist, best_dist)
    best_t = torch.minimum(torch.maximum(best_t, lo), hi)
    refines = st["refines"] + refining.to(t.dtype)
    settled = refining & ~close & ((hi - lo < cfg.bracket_tol) | (refines > cfg.max_refine))
    # A clean flip (the two sides' directions antiparallel, as on the two faces of a sheet) across
    # a narrow bracket is a crossing even where the field never comes close to zero.
    clean = ((n_ref * n_hi).sum(1) < CLEAN_FLIP_COS) & (hi - lo < 2.0 * cfg.bracket_eps)
    hit = settled & ((best_dist < cfg.bracket_eps) | clean)
    return {
        "lo": lo,
        "hi": hi,
        "n_ref": n_ref,
        "n_hi": n_hi,
        "best_t": best_t,
        "best_dist": best_dist,
        "refines": refines,
        "refining": refining,
        "hit": hit,
        "false_alarm": settled & ~hit,
    }


def _advance(ev: _Probe, br: dict, cfg: TraceConfig, verify: torch.Tensor) -> torch.Tensor:
    """The next ``t`` of each ray: marching = sphere step, or a capped tangent-plane jump near the
    surface; refining = Newton step kept inside the bracket (else bisection); a false alarm resumes
    just behind its bracket, which is reopened (``br`` is updated); a stop to verify moves onto the
    tangent plane."""
    t, dist, cos, newton = ev.t, ev.dist, ev.cos, ev.newton
    lo, hi, false_alarm = br["lo"], br["hi"], br["false_alarm"]
    jump = (dist < cfg.plane_band) & (cos > cfg.jump_cos)
    t_march = t + torch.where(jump, torch.minimum(ev.plane, cfg.max_jump * dist), dist)
    inside_b = (newton > lo) & (newton < hi) & ((newton - t).abs() > MIN_NEWTON_STEP)
    t_refine = torch.where(inside_b, newton, 0.5 * (lo + hi))
    t_next = torch.where(br["refining"] & ~false_alarm, t_refine, torch.where(false_alarm, hi + cfg.hit_eps, t_march))
    t_verify = t + torch.where(cos > cfg.min_cos, ev.plane, dist).clamp(max=cfg.plane_band)
    t_next = torch.where(verify, t_verify, t_next)
    br["hi"] = torch.where(false_alarm, torch.full_like(hi, float("inf")), hi)
    br["lo"] = torch.where(false_alarm, t_next, lo)
    br["refines"] = torch.where(false_alarm, torch.zeros_like(br["refines"]), br["refines"])
    br["best_dist"] = torch.where(false_alarm, torch.full_like(br["best_dist"], float("inf")), br["best_dist"])
    return t_next


@torch.no_grad()
def field_normals(field, points: torch.Tensor, directions: torch.Tensor, offset: float = NORMAL_OFFSET) -> torch.Tensor:
    """Unit normals ``(N, 3)`` at surface ``points : (N, 3)`` seen along ``directions : (N, 3)``:
    the field's direction ``q - CSP(q)`` at ``q = p - offset * direction`` (backed off towards
    the viewer), so they face the viewer on both sides of open sheets; ``-direction`` where that
    is degenerate. One field evaluation per point."""
    if len(points) == 0:
        return points.clone()
    d = torch.nn.functional.normalize(directions, dim=1)
    q = points - offset * d
    n = q - _closest(field, q)
    length = n.norm(dim=1, keepdim=True)
    n = torch.where(length > 1e-6 * offset, n / length.clamp(min=1e-30), -d)
    flip = (n * d).sum(1, keepdim=True) > 0  # still facing away: crossed another sheet when backing off
    return torch.where(flip, -n, n)
