"""Input encodings for fields, in plain PyTorch (CPU and CUDA).

All take normalised points ``x : (N, 3)`` in ``[-half, half]^3`` and return ``(N, C)`` features.
Trilinear interpolation is written with gathers (not ``grid_sample``) so that derivatives
with respect to ``x`` (Jacobians, UDF gradients) come from autograd.
"""

from __future__ import annotations

import math

import numpy as np

import torch
from torch import nn

#: Corner offsets of a cell, in (x, y, z) order: (8, 3).
_CORNERS = torch.tensor([[i, j, k] for i in (0, 1) for j in (0, 1) for k in (0, 1)], dtype=torch.long)


def cell_coordinates(x: torch.Tensor, res: int, half: float):
    """Cell index ``(N, 3)`` long and fractional position ``(N, 3)`` of ``x`` in a grid of
    ``res`` vertices per axis spanning ``[-half, half]``."""
    u = (x + half) * ((res - 1) / (2 * half))
    u = u.clamp(0.0, res - 1 - 1e-4)
    i0 = u.detach().floor().long()
    return i0, u - i0.to(u.dtype)


def trilinear_weights(frac: torch.Tensor) -> torch.Tensor:
    """Weights ``(N, 8)`` of the 8 corners (``_CORNERS`` order) for fractions ``(N, 3)``."""
    fx, fy, fz = frac[:, 0:1], frac[:, 1:2], frac[:, 2:3]
    wx = torch.cat([1 - fx, fx], 1)
    wy = torch.cat([1 - fy, fy], 1)
    wz = torch.cat([1 - fz, fz], 1)
    return (wx[:, :, None, None] * wy[:, None, :, None] * wz[:, None, None, :]).reshape(-1, 8)


def corner_ids(i0: torch.Tensor, res: int) -> torch.Tensor:
    """Flat vertex ids ``(N, 8)`` of the corners of cells ``i0 : (N, 3)``."""
    c = i0[:, None, :] + _CORNERS.to(i0.device)[None]
    return (c[..., 0] * res + c[..., 1]) * res + c[..., 2]


class DenseGrid(nn.Module):
    """A dense grid of ``channels`` values at ``res^3`` vertices, trilinearly interpolated."""

    def __init__(self, res: int, channels: int, half: float = 0.5, init_std: float = 0.0):
        super().__init__()
        self.res, self.half = res, half
        self.values = nn.Parameter(torch.randn(res**3, channels) * init_std)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        i0, f = cell_coordinates(x, self.res, self.half)
        ids = corner_ids(i0, self.res)
        w = trilinear_weights(f)
        return torch.einsum("nk,nkc->nc", w, self.values[ids])


def grid_vertices(res: int, half: float, device=None, ids: torch.Tensor | None = None) -> torch.Tensor:
    """Positions ``(M, 3)`` of vertices with flat ids ``ids`` (all vertices when None)."""
    if ids is None:
        ids = torch.arange(res**3, device=device)
    k = ids % res
    j = (ids // res) % res
    i = ids // (res * res)
    return torch.stack([i, j, k], 1).to(torch.float32) * (2 * half / (res - 1)) - half


class MultiResGrid(nn.Module):
    """Multi-resolution dense grids (``levels`` resolutions from ``base_res`` to ``max_res``,
    geometric), ``features`` channels each; output is their concatenation ``(N, levels*features)``."""

    def __init__(self, levels: int = 4, features: int = 4, base_res: int = 16, max_res: int = 128, half: float = 0.5):
        super().__init__()
        growth = (max_res / base_res) ** (1 / max(levels - 1, 1))
        self.resolutions = [int(round(base_res * growth**l)) for l in range(levels)]
        self.grids = nn.ModuleList(DenseGrid(r, features, half, init_std=1e-4) for r in self.resolutions)
        self.out_dim = levels * features

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.cat([g(x) for g in self.grids], dim=1)


class FourierFeatures(nn.Module):
    """``[x, sin(2^k pi x), cos(2^k pi x)]`` for ``k < n_frequencies`` (NeRF-style positional encoding)."""

    def __init__(self, n_frequencies: int = 8):
        super().__init__()
        self.register_buffer("freqs", (2.0 ** torch.arange(n_frequencies)) * math.pi, persistent=False)
        self.out_dim = 3 + 6 * n_frequencies

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        xf = (x[:, :, None] * self.freqs).reshape(len(x), -1)
        return torch.cat([x, torch.sin(xf), torch.cos(xf)], dim=1)


class BandGrid(nn.Module):
    """A fine grid stored only at ``active`` vertices (a band around the surface), backed by a
    dense coarse grid elsewhere. Returns ``(N, channels)``; a point uses the fine grid when all
    8 corners of its fine cell are active.

    Parameters
    ----------
    res, coarse_res : vertices per axis of the fine and coarse grids.
    channels : values per vertex.
    n_active : number of active fine vertices (their flat ids live in the ``active`` buffer).
    """

    def __init__(self, res: int, coarse_res: int, channels: int, n_active: int, half: float = 0.5):
        super().__init__()
        self.res, self.coarse_res, self.half, self.channels = res, coarse_res, half, channels
        self.register_buffer("active", torch.zeros(n_active, dtype=torch.int64))
        self.values = nn.Parameter(torch.zeros(n_active, channels))
        self.coarse = DenseGrid(coarse_res, channels, half)
        self._table: torch.Tensor | None = None
        # Inside/outside bits (closed inputs only): True = outside, per active fine row and per
        # coarse vertex; empty when the field is unsigned. Saved as packed bit masks.
        self.register_buffer("outside", torch.zeros(0, dtype=torch.bool), persistent=False)
        self.register_buffer("coarse_outside", torch.zeros(0, dtype=torch.bool), persistent=False)

    @property
    def has_sides(self) -> bool:
        """True when inside/outside bits are stored (the field was fitted to a closed mesh)."""
        return self.coarse_outside.numel() == self.coarse_res**3 and self.outside.numel() == self.active.numel()

    def set_sides(self, outside: torch.Tensor, coarse_outside: torch.Tensor) -> None:
        """Store which active fine vertices ``(n_active,)`` and coarse vertices ``(coarse_res^3,)``
        lie outside the (closed) surface."""
        if outside.shape != self.active.shape or coarse_outside.shape != (self.coarse_res**3,):
            raise ValueError(f"sides must have shapes {tuple(self.active.shape)} and ({self.coarse_res**3},), got {tuple(outside.shape)} and {tuple(coarse_outside.shape)}")
        self.outside = outside.to(torch.bool).to(self.values.device)
        self.coarse_outside = coarse_outside.to(torch.bool).to(self.values.device)

    def corner_sides(self, x: torch.Tensor) -> torch.Tensor:
        """``(N, 8)`` +1 (outside) / -1 (inside) at the corners of each point's fine cell (rows of
        inactive corners read as outside; callers use them only where all 8 are active)."""
        i0, _ = cell_coordinates(x, self.res, self.half)
        rows = self.table()[corner_ids(i0, self.res)].long()
        out = self.outside[rows.clamp(min=0)] | (rows < 0)
        return out.to(x.dtype) * 2 - 1

    def coarse_signed(self, x: torch.Tensor) -> torch.Tensor:
        """``(N,)`` trilinear interpolation of the coarse vertices' signed distances (negative inside)."""
        g = self.coarse
        i0, f = cell_coordinates(x, g.res, g.half)
        ids = corner_ids(i0, g.res)
        sd = g.values[ids].norm(dim=2) * (self.coarse_outside[ids].to(x.dtype) * 2 - 1)
        return (trilinear_weights(f) * sd).sum(1)

    def set_active(self, ids: torch.Tensor, values: torch.Tensor) -> None:
        """Replace the active set (flat ids ``(M,)``) and their values ``(M, channels)``."""
        self.active = ids.to(torch.int64).to(self.values.device)
        self.values = nn.Parameter(values.to(self.values))
        self._table = None
        self.outside = torch.zeros(0, dtype=torch.bool, device=self.values.device)  # stale once the rows change
        self.coarse_outside = torch.zeros(0, dtype=torch.bool, device=self.values.device)

    def table(self) -> torch.Tensor:
        """Dense ``(res^3,)`` int32 lookup from flat vertex id to row of ``values`` (-1 if inactive)."""
        if self._table is None or self._table.device != self.values.device:
            t = torch.full((self.res**3,), -1, dtype=torch.int32, device=self.values.device)
            t[self.active] = torch.arange(len(self.active), dtype=torch.int32, device=t.device)
            self._table = t
        return self._table

    def _save_to_state_dict(self, destination, prefix, keep_vars):
        # Active ids are stored losslessly as a packed bit mask over the res^3 vertices
        # (res^3 / 8 bytes instead of 8 bytes per active vertex).
        super()._save_to_state_dict(destination, prefix, keep_vars)
        ids = destination.pop(prefix + "active").detach().cpu().numpy()
        mask = np.zeros(self.res**3, dtype=bool)
        mask[ids] = True
        destination[prefix + "active_mask"] = torch.from_numpy(np.packbits(mask))
        if self.has_sides:
            destination[prefix + "outside_mask"] = torch.from_numpy(np.packbits(self.outside.detach().cpu().numpy()))
            destination[prefix + "coarse_outside_mask"] = torch.from_numpy(np.packbits(self.coarse_outside.detach().cpu().numpy()))

    def _load_from_state_dict(self, state_dict, prefix, local_metadata, strict, missing_keys, unexpected_keys, error_msgs):
        self._table = None
        sides = [state_dict.pop(prefix + k, None) for k in ("outside_mask", "coarse_outside_mask")]
        key = prefix + "active_mask"
        if key in state_dict:
            packed = state_dict.pop(key).cpu().numpy().astype(np.uint8)
            mask = np.unpackbits(packed, count=self.res**3).astype(bool)
            state_dict[prefix + "active"] = torch.from_numpy(np.flatnonzero(mask).astype(np.int64))
        super()._load_from_state_dict(state_dict, prefix, local_metadata, strict, missing_keys, unexpected_keys, error_msgs)
        if sides[0] is not None and sides[1] is not None:
            n_fine, n_coarse = int(self.active.numel()), self.coarse_res**3
            packed_fine, packed_coarse = (t.cpu().numpy().astype(np.uint8).reshape(-1) for t in sides)
            if len(packed_fine) != (n_fine + 7) // 8 or len(packed_coarse) != (n_coarse + 7) // 8:
                error_msgs.append(f"{prefix}outside masks hold {len(packed_fine)}/{len(packed_coarse)} bytes, "
                                  f"expected {(n_fine + 7) // 8}/{(n_coarse + 7) // 8}")
            else:
                fine = np.unpackbits(packed_fine, count=n_fine).astype(bool)
                coarse = np.unpackbits(packed_coarse, count=n_coarse).astype(bool)
                self.set_sides(torch.from_numpy(fine), torch.from_numpy(coarse))
        else:
            self.outside = torch.zeros(0, dtype=torch.bool, device=self.values.device)
            self.coarse_outside = torch.zeros(0, dtype=torch.bool, device=self.values.device)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        i0, f = cell_coordinates(x, self.res, self.half)
        rows = self.table()[corner_ids(i0, self.res)].long()  # (N, 8)
        fine_ok = (rows >= 0).all(dim=1)
        w = trilinear_weights(f)
        fine = torch.einsum("nk,nkc->nc", w, self.values[rows.clamp(min=0)])
        if bool(fine_ok.all()):
            return fine
        coarse = self.coarse(x)
        return torch.where(fine_ok[:, None], fine, coarse)

    def corners(self, x: torch.Tensor):
        """Per-point fine-cell data for custom interpolation: ``ok (N,)`` (all 8 corners active),
        trilinear weights ``(N, 8)``, corner values ``(N, 8, C)`` and the cells' lowest corners
        ``i0 (N, 3)`` (corner k sits at ``(i0 + CORNERS[k]) * h - half``)."""
        i0, f = cell_coordinates(x, self.res, self.half)
        rows = self.table()[corner_ids(i0, self.res)].long()
        ok = (rows >= 0).all(dim=1)
        return ok, trilinear_weights(f), self.values[rows.clamp(min=0)], i0

    def corner_offsets(self, dtype=torch.float32) -> torch.Tensor:
        """(8, 3) corner offsets from a cell's lowest corner, in normalised units."""
        return _CORNERS.to(self.values.device, dtype) * (2 * self.half / (self.res - 1))

    def fine_mask(self, x: torch.Tensor) -> torch.Tensor:
        """(N,) bool: which points are served by the fine grid."""
        i0, _ = cell_coordinates(x, self.res, self.half)
        return (self.table()[corner_ids(i0, self.res)] >= 0).all(dim=1)
