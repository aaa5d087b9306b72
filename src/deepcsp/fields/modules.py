"""Field networks: CSP fields (closest point) and the NDF-style UDF baseline, built from a typed
:class:`FieldConfig` (no string imports; a fixed registry of encodings)."""

from __future__ import annotations

from dataclasses import asdict, dataclass, fields
from typing import Literal

import torch
from torch import nn
from torch.nn import functional as F

from deepcsp._validate import Fields, OptionError
from deepcsp.fields.encodings import BandGrid, FourierFeatures, MultiResGrid

#: Largest band-grid resolution (vertices per axis): its lookup table holds res^3 int32 (4 GiB at 1024).
MAX_BAND_RESOLUTION = 1024
#: Largest dense-grid resolution (coarse band-grid level, multires levels): res^3 vertices.
MAX_DENSE_RESOLUTION = 512
#: Most active band-grid vertices (values are n_active x 4 float32 at most: 2 GiB).
MAX_ACTIVE = 2**27
#: Largest number of values in the dense grids of a multires_grid encoding (1 GiB of float32).
MAX_GRID_VALUES = 2**28


@dataclass
class FieldConfig:
    """Architecture of a field. Saved next to its weights and loaded back."""

    kind: Literal["csp", "udf"] = "csp"
    """``csp`` predicts the closest point; ``udf`` predicts the unsigned distance (NDF baseline)."""
    encoding: Literal["band_grid", "multires_grid", "fourier", "paper"] = "band_grid"
    """``band_grid``: sparse fine grid in a band around the surface over a coarse dense grid,
    identity decoder; ``multires_grid``: dense multi-resolution grids + small MLP; ``fourier``:
    Fourier features + MLP; ``paper``: the official CSP single-shape ReLU MLP."""
    output: Literal["displacement", "point", "dist_dir"] = "displacement"
    """How a CSP network's output becomes the closest point: ``x + out``, ``out``, or ``x - d*dir``."""
    resolution: int = 192
    """band_grid: fine vertices per axis."""
    coarse_resolution: int = 48
    """band_grid: coarse vertices per axis."""
    interpolation: Literal["trilinear", "nearest_sheet"] = "nearest_sheet"
    """band_grid CSP: ``trilinear`` blends the 8 corners' displacements; ``nearest_sheet`` blends
    only the corners that see the same sheet as the corner whose tangent plane is nearest to the
    query, so the map stays sharp across the medial axis (between close sheets, in thin parts)."""
    sheet_jump: float = 3.0
    """nearest_sheet: corners whose closest points lie further apart than this many fine cells
    belong to different sheets."""
    n_active: int = 0
    """band_grid: number of active fine vertices (set by fitting)."""
    levels: int = 4
    """multires_grid: number of levels."""
    features: int = 4
    """multires_grid: features per level."""
    base_resolution: int = 16
    """multires_grid: coarsest level's vertices per axis."""
    max_resolution: int = 128
    """multires_grid: finest level's vertices per axis."""
    n_frequencies: int = 8
    """fourier: number of octaves."""
    hidden: tuple[int, ...] = (64, 64)
    """MLP hidden widths (multires_grid, fourier)."""
    half: float = 0.5
    """Half side of the normalised cube the field covers."""

    def __post_init__(self) -> None:
        f = Fields(self)
        for name in ("kind", "encoding", "output", "interpolation"):
            f.literal(name)
        res = f.integer("resolution", 2, MAX_BAND_RESOLUTION)
        f.integer("coarse_resolution", 2, MAX_DENSE_RESOLUTION)
        f.number("sheet_jump", 0.0, 1e6, min_open=True)
        f.integer("n_active", 0, min(res**3, MAX_ACTIVE))
        f.integer("levels", 1, 16)
        f.integer("features", 1, 64)
        base = f.integer("base_resolution", 2, MAX_DENSE_RESOLUTION)
        top = f.integer("max_resolution", base, MAX_DENSE_RESOLUTION)
        if self.encoding == "multires_grid" and self.levels * self.features * top**3 > MAX_GRID_VALUES:
            raise OptionError("FieldConfig.max_resolution", f"gives up to levels * features * max_resolution^3 = {self.levels * self.features * top**3} grid values, more than {MAX_GRID_VALUES}")
        f.integer("n_frequencies", 1, 32)
        f.integers("hidden", 1, 4096, min_len=0, max_len=16)
        f.number("half", 0.0, 1e6, min_open=True)

    def to_dict(self) -> dict:
        d = asdict(self)
        d["hidden"] = list(self.hidden)
        return d

    @classmethod
    def from_dict(cls, d: dict) -> "FieldConfig":
        names = {f.name for f in fields(cls)}
        unknown = set(d) - names
        if unknown:
            raise ValueError(f"unknown field config keys {sorted(unknown)}")
        d = dict(d)
        if "hidden" in d:
            d["hidden"] = tuple(int(h) for h in d["hidden"])
        return cls(**d)


PAPER_WIDTHS = (120, 512, 1024, 2048, 2048, 1024, 512, 256, 128)


def _mlp(n_in: int, hidden: tuple[int, ...], n_out: int, activation: type[nn.Module] = nn.Softplus) -> nn.Sequential:
    layers: list[nn.Module] = []
    for h in hidden:
        layers += [nn.Linear(n_in, h), activation(beta=100) if activation is nn.Softplus else activation()]
        n_in = h
    layers.append(nn.Linear(n_in, n_out))
    return nn.Sequential(*layers)


def _n_out(config: FieldConfig) -> int:
    if config.kind == "udf":
        return 1
    return 4 if config.output == "dist_dir" else 3


def build_encoder_head(config: FieldConfig) -> tuple[nn.Module, nn.Module]:
    n_out = _n_out(config)
    if config.encoding == "band_grid":
        return BandGrid(config.resolution, config.coarse_resolution, n_out, config.n_active, config.half), nn.Identity()
    if config.encoding == "multires_grid":
        enc = MultiResGrid(config.levels, config.features, config.base_resolution, config.max_resolution, config.half)
        return enc, _mlp(enc.out_dim, config.hidden, n_out)
    if config.encoding == "fourier":
        enc = FourierFeatures(config.n_frequencies)
        return enc, _mlp(enc.out_dim, config.hidden, n_out)
    if config.encoding == "paper":
        head = _mlp(3, PAPER_WIDTHS, n_out, activation=nn.ReLU)
        for m in head:
            if isinstance(m, nn.Linear):
                nn.init.xavier_uniform_(m.weight)
                nn.init.zeros_(m.bias)
        return nn.Identity(), head
    raise ValueError(f"unknown encoding {config.encoding!r}")


class CSPNet(nn.Module):
    """Maps normalised points ``x : (N, 3)`` to closest points ``(N, 3)``."""

    def __init__(self, config: FieldConfig):
        super().__init__()
        if config.kind != "csp":
            raise ValueError("CSPNet needs config.kind == 'csp'")
        self.config = config
        self.encoder, self.head = build_encoder_head(config)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        c = self.config
        if c.encoding == "band_grid" and c.output == "displacement" and c.interpolation == "nearest_sheet":
            return self._nearest_sheet(x)
        out = self.head(self.encoder(x))
        if self.config.output == "displacement":
            return x + out
        if self.config.output == "point":
            return out
        d = out[:, :1].abs()
        direction = F.normalize(out[:, 1:], dim=1, eps=1e-12)
        return x - d * direction


    def corner_weights(self, x: torch.Tensor):
        """Band-grid cell data with the interpolation weights actually used: ``ok (N,)`` (all 8
        corners active), weights ``(N, 8)`` (trilinear, or nearest-sheet where a cell straddles two
        sheets), corner displacements ``(N, 8, 3)`` and lowest corners ``i0 (N, 3)``.

        Nearest-sheet selection (see ``FieldConfig.interpolation``): corner i (position v_i, stored
        displacement D_i, closest point q_i = v_i + D_i) proposes x + D_i. The corner i* whose
        tangent plane (through q_i, normal D_i/|D_i|) is nearest to x names the sheet; corners whose
        closest point lies more than ``sheet_jump * h`` from q_{i*} belong to another sheet (the
        cell straddles the medial axis) and are dropped: weights
        ``w_i (0.01 + sigmoid((sheet_jump h - |q_i - q_i*|) / (h/4)))``, renormalised. Cells whose
        corners' closest points all lie within ``sheet_jump * h / 2`` of corner 0's keep trilinear
        weights.
        """
        enc = self.encoder
        ok, w, D, i0 = enc.corners(x)
        if self.config.interpolation != "nearest_sheet":
            return ok, w, D, i0
        h = 2 * enc.half / (enc.res - 1)
        off = enc.corner_offsets(x.dtype)
        # Only cells whose corners' closest points (q_k - q_0 = off_k + D_k - D_0) spread over more
        # than half the jump threshold can straddle two sheets (a few percent of band queries).
        spread = (off[None] + D - D[:, :1]).norm(dim=2).amax(dim=1)
        mixed = torch.nonzero(spread > 0.5 * self.config.sheet_jump * h).squeeze(1)
        if len(mixed):
            xm, wm, Dm = x[mixed], w[mixed], D[mixed]
            qm = i0[mixed].to(x.dtype)[:, None, :] * h - enc.half + off[None] + Dm
            length = Dm.norm(dim=2, keepdim=True)
            n = Dm / length.clamp(min=1e-12)
            rel = xm[:, None, :] - qm
            d_plane = (rel * n).sum(2).abs()
            d_plane = torch.where(length[..., 0] > 0.05 * h, d_plane, rel.norm(dim=2))
            best = d_plane.argmin(dim=1)
            q_best = qm[torch.arange(len(xm), device=x.device), best]
            jump = (qm - q_best[:, None, :]).norm(dim=2)
            # The 1e-2 floor keeps a corner's own value at its vertex (exact collocation).
            ww = wm * (1e-2 + torch.sigmoid((self.config.sheet_jump * h - jump) / (0.25 * h)))
            ww = ww / ww.sum(dim=1, keepdim=True).clamp(min=1e-12)
            w = w.index_copy(0, mixed, ww)
        return ok, w, D, i0

    def _nearest_sheet(self, x: torch.Tensor) -> torch.Tensor:
        """Band-grid interpolation with nearest-sheet selection (see :meth:`corner_weights`)."""
        ok, w, D, _ = self.corner_weights(x)
        fine = x + torch.bmm(w[:, None, :], D)[:, 0]
        if bool(ok.all()):
            return fine
        return torch.where(ok[:, None], fine, x + self.encoder.coarse(x))

    @property
    def has_sides(self) -> bool:
        """True for band grids fitted to a closed mesh (inside/outside bits stored)."""
        return self.config.encoding == "band_grid" and self.config.output == "displacement" and self.encoder.has_sides

    def signed_distance(self, x: torch.Tensor) -> torch.Tensor:
        """Signed distance ``(N,)`` (negative inside) of a band grid fitted to a closed mesh.

        The magnitude is ``|x - CSP(x)|``. The sign is a vote of the corners' tangent planes:
        corner k (position v_k, closest point q_k, stored side s_k = +1 outside) sees the outward
        normal at q_k as ``o_k = s_k (v_k - q_k) / |v_k - q_k|`` and puts x on side
        ``sign((x - q_k) . o_k)``; the votes are weighted by the interpolation weight over
        ``|x - q_k| + h/10`` (planes of nearby closest points count most). Unlike interpolating
        the corners' signed distances, this stays right inside parts thinner than a cell and across
        kinks of the distance. Measured (fitted at 192): sign agreement with winding numbers for
        points 0.25+ cells off the surface 99.95% on dragon_stanford_20k and 100% on spot (99.6% /
        100% with interpolated signed distances); inside plates 0.6 cells thick 98.9% (81%).
        Outside the fine band the coarse grid's interpolated signed distance decides.
        """
        if not self.has_sides:
            raise ValueError("this field stores no inside/outside bits")
        enc = self.encoder
        ok, w, D, i0 = self.corner_weights(x)
        d = -torch.bmm(w[:, None, :], D)[:, 0]  # x - CSP(x)
        h = 2 * enc.half / (enc.res - 1)
        q = i0.to(x.dtype)[:, None, :] * h - enc.half + enc.corner_offsets(x.dtype)[None] + D
        o = -D / D.norm(dim=2, keepdim=True).clamp(min=1e-12) * enc.corner_sides(x)[..., None]
        rel = x[:, None, :] - q
        vote = (w * torch.sign((rel * o).sum(2)) / (rel.norm(dim=2) + 0.1 * h)).sum(1)
        sign = torch.where(vote < 0, -1.0, 1.0).to(x.dtype)
        if not bool(ok.all()):
            far = ~ok
            d = torch.where(far[:, None], -enc.coarse(x), d)
            sign = torch.where(far, torch.where(enc.coarse_signed(x) < 0, -1.0, 1.0).to(x.dtype), sign)
        return sign * d.norm(dim=1)


class UDFNet(nn.Module):
    """NDF-style baseline: unsigned distance ``(N,)``; closest point ``x - u(x) grad u / |grad u|``."""

    def __init__(self, config: FieldConfig):
        super().__init__()
        if config.kind != "udf":
            raise ValueError("UDFNet needs config.kind == 'udf'")
        self.config = config
        self.encoder, self.head = build_encoder_head(config)

    def distance(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.encoder(x))[:, 0]

    def forward(self, x: torch.Tensor, create_graph: bool = False) -> torch.Tensor:
        with torch.enable_grad():
            xg = x if x.requires_grad else x.detach().requires_grad_(True)
            u = self.distance(xg)
            (g,) = torch.autograd.grad(u.sum(), xg, create_graph=create_graph)
        return xg - u[:, None] * F.normalize(g, dim=1, eps=1e-12)


def build_module(config: FieldConfig) -> nn.Module:
    """A fresh CSPNet or UDFNet for ``config``."""
    return CSPNet(config) if config.kind == "csp" else UDFNet(config)
