"""Input encodings for fields, in plain PyTorch (CPU and CUDA).

All take normalised points ``x : (N, 3)`` in ``[-half, half]^3`` and return ``(N, C)`` features.
Trilinear interpolation is written with gathers (not ``grid_sample``) so that derivatives
with respect to ``x`` (Jacobians, UDF gradients) come from autograd.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch
from torch import nn

from deepcsp._arrays import gather_rows
from deepcsp.constants import MAX_REFINED_VALUES

#: Corner offsets of a cell, in (x, y, z) order: (8, 3).
_CORNERS = torch.tensor([[i, j, k] for i in (0, 1) for j in (0, 1) for k in (0, 1)], dtype=torch.long)
_AROUND = torch.tensor([[i, j, k] for i in (-1, 0, 1) for j in (-1, 0, 1) for k in (-1, 0, 1)], dtype=torch.long)


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


def flat_ids(ijk: torch.Tensor, res: int) -> torch.Tensor:
    """Flat ids ``(i * res + j) * res + k`` of grid coordinates ``ijk : (..., 3)`` (inverse of
    :func:`cell_indices`)."""
    return (ijk[..., 0] * res + ijk[..., 1]) * res + ijk[..., 2]


def corner_ids(i0: torch.Tensor, res: int) -> torch.Tensor:
    """Flat vertex ids ``(N, 8)`` of the corners of cells ``i0 : (N, 3)``."""
    base = flat_ids(i0, res)  # the lowest corner; the others at fixed offsets
    return base[:, None] + flat_ids(_CORNERS.to(i0.device), res)[None]


def cell_indices(ids: torch.Tensor, res: int) -> torch.Tensor:
    """Grid coordinates ``(M, 3)`` of flat ids ``(M,)`` (``(i * res + j) * res + k``)."""
    return torch.stack([ids // (res * res), (ids // res) % res, ids % res], 1)


def cells_around(cells: torch.Tensor, res: int) -> torch.Tensor:
    """Sorted unique lowest-corner flat ids of ``cells`` and their 26 neighbours (within the grid's
    ``res - 1`` cells per axis)."""
    near = (cell_indices(cells, res)[:, None, :] + _AROUND.to(cells.device)[None]).reshape(-1, 3)
    near = near[((near >= 0) & (near < res - 1)).all(1)]
    return torch.unique(flat_ids(near, res))


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
        return torch.einsum("nk,nkc->nc", w, gather_rows(self.values, ids))


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
        self.resolutions = [int(round(base_res * growth**level)) for level in range(levels)]
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


@dataclass
class CellCorners:
    """Interpolation data of the cells that points ``x (N, 3)`` fall in, on the finest level that
    covers them (a refined cell's sub-cell, else a fine cell).

    Attributes
    ----------
    ok : (N,) bool, all 8 corners stored (False: the point is outside the fine band).
    weights : (N, 8) trilinear weights of the corners (``_CORNERS`` order).
    values : (N, 8, C) corner values.
    origin : (N, 3) position of each cell's lowest corner (normalised units).
    size : (N,) cell size (normalised units).
    """

    ok: torch.Tensor
    weights: torch.Tensor
    values: torch.Tensor
    origin: torch.Tensor
    size: torch.Tensor
    mixed: torch.Tensor | None = None
    """(N,) bool: the cell may straddle two sheets (:func:`may_straddle`); None when not asked for."""


def may_straddle(D: torch.Tensor, size: torch.Tensor, jump: float, offset: float) -> torch.Tensor:
    """``(M,)`` bool: which cells (corner displacements ``D (M, 8, 3)``, sizes ``size (M,)``) may
    straddle two sheets: their corners' closest points spread over more than ``jump / 2`` cells, or
    one lies off corner 0's tangent plane by more than ``offset / 2`` cells. Elsewhere nearest-sheet
    interpolation is plain trilinear interpolation."""
    q = corner_offsets(size) + D
    dq0 = q - q[:, :1]
    out = dq0.norm(dim=2).amax(dim=1) > 0.5 * jump * size
    if offset > 0:
        l0 = D[:, 0].norm(dim=1)
        n0 = D[:, 0] / l0.clamp(min=1e-12)[:, None]
        o0 = (dq0 * n0[:, None, :]).sum(2).abs().amax(dim=1)
        out |= (o0 > 0.5 * offset * size) & (l0 > 0.05 * size)
    return out


def corner_offsets(size: torch.Tensor) -> torch.Tensor:
    """``(N, 8, 3)`` corner positions relative to the lowest corner of cells of sizes ``size (N,)``."""
    return _CORNERS.to(size.device, size.dtype)[None] * size[:, None, None]


class BandGrid(nn.Module):
    """A fine grid stored only at ``active`` vertices (a band around the surface), backed by a
    dense coarse grid elsewhere, with an optional finer level in selected fine cells. Returns
    ``(N, channels)``; a point uses the fine grid when all 8 corners of its fine cell are active,
    and the refined level when its fine cell is refined.

    Parameters
    ----------
    res, coarse_res : vertices per axis of the fine and coarse grids.
    channels : values per vertex.
    n_active : number of active fine vertices (their flat ids live in the ``active`` buffer).
    refine : sub-cells per fine cell along each axis in refined cells (``refine + 1``^3 values per
        refined cell; 0 or 1: no refined level).
    n_refined : number of refined fine cells (their lowest corners' flat ids live in ``refined``).
    """

    def __init__(
        self,
        res: int,
        coarse_res: int,
        channels: int,
        n_active: int,
        half: float = 0.5,
        refine: int = 0,
        n_refined: int = 0,
    ):
        super().__init__()
        self.res, self.coarse_res, self.half, self.channels = res, coarse_res, half, channels
        self.refine = int(refine) if refine and refine > 1 else 0
        self.register_buffer("active", torch.zeros(n_active, dtype=torch.int64))
        self.values = nn.Parameter(torch.zeros(n_active, channels))
        self.coarse = DenseGrid(coarse_res, channels, half)
        self._table: torch.Tensor | None = None
        self._complete: torch.Tensor | None = None
        self._cellref: torch.Tensor | None = None
        self._straddle: dict = {}
        # The mesh the values were collocated on and each value's triangle (a
        # deepcsp.fields.meshcodec.MeshSource), when known: field files then store triangles, not values.
        self.source = None
        # Refined level: flat ids of the refined cells' lowest corners (sorted) and, per refined
        # cell, the values at its (refine + 1)^3 sub-vertices (corners included, duplicated
        # between neighbours in memory; saved once per sub-vertex).
        n_ref = n_refined if self.refine else 0
        self.register_buffer("refined", torch.zeros(n_ref, dtype=torch.int64), persistent=False)
        self.register_buffer(
            "fine", torch.zeros(n_ref, (self.refine + 1) ** 3 if self.refine else 0, channels), persistent=False
        )
        # Inside/outside bits (closed inputs only): True = outside, per active fine row and per
        # coarse vertex; empty when the field is unsigned. Saved as packed bit masks.
        self.register_buffer("outside", torch.zeros(0, dtype=torch.bool), persistent=False)
        self.register_buffer("coarse_outside", torch.zeros(0, dtype=torch.bool), persistent=False)

    @property
    def h(self) -> float:
        """Fine cell size (normalised units)."""
        return 2 * self.half / (self.res - 1)

    @property
    def n_refined(self) -> int:
        """Number of refined fine cells."""
        return int(self.refined.numel())

    @property
    def has_sides(self) -> bool:
        """True when inside/outside bits are stored (the field was fitted to a closed mesh)."""
        return self.coarse_outside.numel() == self.coarse_res**3 and self.outside.numel() == self.active.numel()

    def set_sides(self, outside: torch.Tensor, coarse_outside: torch.Tensor) -> None:
        """Store which active fine vertices ``(n_active,)`` and coarse vertices ``(coarse_res^3,)``
        lie outside the (closed) surface."""
        if outside.shape != self.active.shape or coarse_outside.shape != (self.coarse_res**3,):
            raise ValueError(
                f"sides must have shapes {tuple(self.active.shape)} and ({self.coarse_res**3},), "
                f"got {tuple(outside.shape)} and {tuple(coarse_outside.shape)}"
            )
        self.outside = outside.to(torch.bool).to(self.values.device)
        self.coarse_outside = coarse_outside.to(torch.bool).to(self.values.device)

    def corner_sides(self, x: torch.Tensor) -> torch.Tensor:
        """``(N, 8)`` +1 (outside) / -1 (inside) at the corners of each point's fine cell (rows of
        inactive corners read as outside; callers use them only where all 8 are active)."""
        i0, _ = cell_coordinates(x, self.res, self.half)
        rows = gather_rows(self.table(), corner_ids(i0, self.res)).long()
        out = gather_rows(self.outside, rows.clamp(min=0)) | (rows < 0)
        return out.to(x.dtype) * 2 - 1

    def coarse_signed(self, x: torch.Tensor) -> torch.Tensor:
        """``(N,)`` trilinear interpolation of the coarse vertices' signed distances (negative inside)."""
        g = self.coarse
        i0, f = cell_coordinates(x, g.res, g.half)
        ids = corner_ids(i0, g.res)
        sd = gather_rows(g.values, ids).norm(dim=2) * (gather_rows(self.coarse_outside, ids).to(x.dtype) * 2 - 1)
        return (trilinear_weights(f) * sd).sum(1)

    def set_active(self, ids: torch.Tensor, values: torch.Tensor) -> None:
        """Replace the active set (flat ids ``(M,)``) and their values ``(M, channels)``; drops the
        refined level and the inside/outside bits (they belong to the old rows)."""
        self.active = ids.to(torch.int64).to(self.values.device)
        self.values = nn.Parameter(values.to(self.values))
        self.source = None
        self._table = None
        self._complete = None
        self._straddle = {}
        self.outside = torch.zeros(0, dtype=torch.bool, device=self.values.device)  # stale once the rows change
        self.coarse_outside = torch.zeros(0, dtype=torch.bool, device=self.values.device)
        self.set_refined(torch.zeros(0, dtype=torch.int64), torch.zeros(0, 0, self.channels))

    def set_refined(self, cells: torch.Tensor, fine: torch.Tensor) -> None:
        """Replace the refined level: lowest-corner flat ids ``cells (M,)`` (sorted, each a cell
        whose 8 corners are active) and their sub-vertex values ``(M, (refine + 1)^3, channels)``
        in :meth:`sub_vertex_ids` order."""
        P = (self.refine + 1) ** 3 if self.refine else 0
        if len(cells) and (not self.refine or fine.shape != (len(cells), P, self.channels)):
            raise ValueError(
                f"refined values must have shape ({len(cells)}, {P}, {self.channels}), got {tuple(fine.shape)}"
            )
        self.refined = cells.to(torch.int64).to(self.values.device)
        self.fine = fine.to(self.values.device, self.values.dtype).reshape(len(cells), P, self.channels)
        self._cellref = None
        self._straddle = {}

    def sub_vertex_ids(self, cells: torch.Tensor) -> torch.Tensor:
        """``(M, (refine + 1)^3)`` flat ids, on the grid of ``(res - 1) refine + 1`` vertices per
        axis, of the sub-vertices of cells with lowest-corner flat ids ``cells (M,)``."""
        K, R = self.refine, self.res
        R2 = (R - 1) * K + 1
        i, j, k = cells // (R * R), (cells // R) % R, cells % R
        a = torch.arange(K + 1, device=cells.device)
        sa = (a[:, None, None] * R2 * R2 + a[None, :, None] * R2 + a[None, None, :]).reshape(-1)
        return ((i * K * R2 + j * K) * R2 + k * K)[:, None] + sa[None]

    def sub_vertex_positions(self, ids: torch.Tensor) -> torch.Tensor:
        """Positions ``(M, 3)`` (float64) of refined-level sub-vertices with flat ids ``ids``."""
        R2 = (self.res - 1) * self.refine + 1
        ijk = torch.stack([ids // (R2 * R2), (ids // R2) % R2, ids % R2], 1)
        return ijk.to(torch.float64) * (2 * self.half / (R2 - 1)) - self.half

    def _corner_locals(self) -> torch.Tensor:
        """Indices, among a refined cell's sub-vertices, of the cell's 8 corners (``_CORNERS`` order)."""
        K = self.refine
        return (_CORNERS[:, 0] * (K + 1) + _CORNERS[:, 1]) * (K + 1) * K + _CORNERS[:, 2] * K

    def table(self) -> torch.Tensor:
        """Dense ``(res^3,)`` int32 lookup from flat vertex id to row of ``values`` (-1 if inactive)."""
        if self._table is None or self._table.device != self.values.device:
            t = torch.full((self.res**3,), -1, dtype=torch.int32, device=self.values.device)
            t[self.active] = torch.arange(len(self.active), dtype=torch.int32, device=t.device)
            self._table = t
        return self._table

    def complete_cells(self) -> torch.Tensor:
        """Packed bits ``((res^3 + 7) // 8,)`` uint8, bit ``c`` (little-endian within each byte)
        set when the fine cell whose lowest corner has flat id ``c`` has all 8 corners active. One
        lookup in it (a megabyte at 192^3) tells a point in the band from one outside; the 8 lookups
        into :meth:`table` that it replaces are spread over ``res^2`` rows of 4 bytes per vertex."""
        if self._complete is None or self._complete.device != self.values.device:
            R = self.res
            bits = torch.zeros((R**3 + 7) // 8, dtype=torch.int32, device=self.values.device)
            for a in self.active.split(1 << 20):  # bounded temporaries on the largest grids
                low = a[(cell_indices(a, R) < R - 1).all(dim=1)]
                full = low[(gather_rows(self.table(), corner_ids(cell_indices(low, R), R)) >= 0).all(dim=1)]
                bits.index_add_(0, full >> 3, (1 << (full & 7)).to(torch.int32))  # distinct bits: the sum is the OR
            self._complete = bits.to(torch.uint8)
        return self._complete

    def cellref(self) -> torch.Tensor:
        """``(n_active,)`` int32: for the row of a cell's lowest corner, the cell's index among the
        refined cells (-1 if not refined)."""
        if self._cellref is None or self._cellref.device != self.values.device:
            c = torch.full((len(self.active),), -1, dtype=torch.int32, device=self.values.device)
            if self.n_refined:
                c[self.table()[self.refined].long()] = torch.arange(self.n_refined, dtype=torch.int32, device=c.device)
            self._cellref = c
        return self._cellref

    def _straddle_memo(self, jump: float, offset: float) -> tuple[torch.Tensor, torch.Tensor]:
        """Memo of :func:`may_straddle` per fine cell (by the row of its lowest corner,
        ``(n_active,)``) and per refined sub-cell (``(n_refined * refine^3,)``): int8, -1 where not
        computed yet. Reset when the thresholds or the values change."""
        key = (float(jump), float(offset), self.values._version, self.values.device)
        if self._straddle.get("key") != key:
            dev = self.values.device
            self._straddle = {
                "key": key,
                "fine": torch.full((len(self.active),), -1, dtype=torch.int8, device=dev),
                "sub": torch.full((self.n_refined * self.refine**3,), -1, dtype=torch.int8, device=dev),
            }
        return self._straddle["fine"], self._straddle["sub"]

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
            destination[prefix + "coarse_outside_mask"] = torch.from_numpy(
                np.packbits(self.coarse_outside.detach().cpu().numpy())
            )
        if self.n_refined:
            # refined cells as a bit mask over their lowest corners; each sub-vertex's value once
            # (cell corners are fine vertices, already in ``values``), in increasing id order
            cells = self.refined.detach().cpu()
            cmask = np.zeros(self.res**3, dtype=bool)
            cmask[cells.numpy()] = True
            destination[prefix + "refined_mask"] = torch.from_numpy(np.packbits(cmask))
            ids, inner = self._inner_sub_vertices(cells)
            first = np.unique(ids.numpy(), return_index=True)[1]
            destination[prefix + "fine_values"] = (
                self.fine.detach().cpu()[:, inner].reshape(-1, self.channels)[torch.from_numpy(first)].clone()
            )

    def _inner_sub_vertices(self, cells: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Flat ids ``(M * S,)`` of the refined cells' sub-vertices that are not cell corners, and
        their local indices ``(S,)``."""
        inner = torch.ones((self.refine + 1) ** 3, dtype=torch.bool)
        inner[self._corner_locals()] = False
        inner = torch.nonzero(inner).squeeze(1)
        return self.sub_vertex_ids(cells)[:, inner].reshape(-1), inner

    def n_sub_vertices(self, cells: torch.Tensor) -> int:
        """Number of distinct non-corner sub-vertices of refined cells ``cells`` (what a field file stores)."""
        if not self.refine or len(cells) == 0:
            return 0
        return int(torch.unique(self._inner_sub_vertices(cells.cpu())[0]).numel())

    def _load_from_state_dict(
        self, state_dict, prefix, local_metadata, strict, missing_keys, unexpected_keys, error_msgs
    ):
        self._table = None
        self._complete = None
        self._cellref = None
        self._straddle = {}
        sides = [state_dict.pop(prefix + k, None) for k in ("outside_mask", "coarse_outside_mask")]
        refined = [state_dict.pop(prefix + k, None) for k in ("refined_mask", "fine_values")]
        key = prefix + "active_mask"
        if key in state_dict:
            packed = state_dict.pop(key).cpu().numpy().astype(np.uint8)
            mask = np.unpackbits(packed, count=self.res**3).astype(bool)
            state_dict[prefix + "active"] = torch.from_numpy(np.flatnonzero(mask).astype(np.int64))
        super()._load_from_state_dict(
            state_dict, prefix, local_metadata, strict, missing_keys, unexpected_keys, error_msgs
        )
        if sides[0] is not None and sides[1] is not None:
            n_fine, n_coarse = int(self.active.numel()), self.coarse_res**3
            packed_fine, packed_coarse = (t.cpu().numpy().astype(np.uint8).reshape(-1) for t in sides)
            if len(packed_fine) != (n_fine + 7) // 8 or len(packed_coarse) != (n_coarse + 7) // 8:
                error_msgs.append(
                    f"{prefix}outside masks hold {len(packed_fine)}/{len(packed_coarse)} bytes, "
                    f"expected {(n_fine + 7) // 8}/{(n_coarse + 7) // 8}"
                )
            else:
                fine = np.unpackbits(packed_fine, count=n_fine).astype(bool)
                coarse = np.unpackbits(packed_coarse, count=n_coarse).astype(bool)
                self.set_sides(torch.from_numpy(fine), torch.from_numpy(coarse))
        else:
            self.outside = torch.zeros(0, dtype=torch.bool, device=self.values.device)
            self.coarse_outside = torch.zeros(0, dtype=torch.bool, device=self.values.device)
        self._load_refined(prefix, *refined, error_msgs)

    def _load_refined(self, prefix: str, packed, values, error_msgs: list) -> None:
        """Rebuild the refined level from a cell mask and the values of its non-corner sub-vertices."""
        if packed is None and values is None:
            self.set_refined(torch.zeros(0, dtype=torch.int64), torch.zeros(0, 0, self.channels))
            return
        if packed is None or values is None or not self.refine:
            error_msgs.append(f"{prefix}refined level needs refined_mask, fine_values and refine > 1")
            return
        packed = packed.cpu().numpy().astype(np.uint8).reshape(-1)
        if len(packed) != (self.res**3 + 7) // 8:
            error_msgs.append(f"{prefix}refined_mask holds {len(packed)} bytes, expected {(self.res**3 + 7) // 8}")
            return
        cells = torch.from_numpy(np.flatnonzero(np.unpackbits(packed, count=self.res**3)).astype(np.int64))
        P = (self.refine + 1) ** 3
        if len(cells) * P > MAX_REFINED_VALUES or (self.refined.numel() and len(cells) != self.refined.numel()):
            error_msgs.append(
                f"{prefix}refined_mask marks {len(cells)} cells "
                f"(expected {self.refined.numel()}, at most {MAX_REFINED_VALUES // P})"
            )
            return
        rows = self.table()[corner_ids(cell_indices(cells, self.res), self.res)].long()
        if (rows < 0).any():
            error_msgs.append(f"{prefix}refined cells must have 8 active corners")
            return
        ids, inner = self._inner_sub_vertices(cells)
        uniq, inv = torch.unique(ids, return_inverse=True)
        if tuple(values.shape) != (len(uniq), self.channels):
            error_msgs.append(
                f"{prefix}fine_values has shape {tuple(values.shape)}, "
                f"the refined cells need ({len(uniq)}, {self.channels})"
            )
            return
        fine = torch.zeros(len(cells), P, self.channels, dtype=self.values.dtype)
        fine[:, inner] = values.to(fine.dtype)[inv].reshape(len(cells), -1, self.channels)
        fine[:, self._corner_locals()] = self.values.detach().cpu()[rows]
        self.set_refined(cells, fine)

    def cells(self, x: torch.Tensor, refined: bool = True, sheets: tuple[float, float] | None = None) -> CellCorners:
        """Corner data of the cells points ``x (N, 3)`` fall in (see :class:`CellCorners`): the
        refined level's sub-cell where the fine cell is refined (unless ``refined`` is False),
        else the fine cell; with ``sheets = (jump, offset)`` also which cells may straddle two
        sheets (:func:`may_straddle`, remembered per cell)."""
        i0, f = cell_coordinates(x, self.res, self.half)
        rows = gather_rows(self.table(), corner_ids(i0, self.res)).long()  # (N, 8)
        ok = (rows >= 0).all(dim=1)
        w = trilinear_weights(f)
        vals = gather_rows(self.values, rows.clamp(min=0))
        h = self.h
        origin = i0.to(x.dtype) * h - self.half
        size = torch.full((len(x),), h, dtype=x.dtype, device=x.device)
        memo_key = rows[:, 0].clamp(min=0)  # a cell's lowest corner row (sub-cells: offset below)
        memo_sub = torch.zeros(len(x), dtype=torch.bool, device=x.device)
        if refined and self.n_refined:
            cr = torch.where(ok, gather_rows(self.cellref(), rows[:, 0].clamp(min=0)), -1)
            m = torch.nonzero(cr >= 0).squeeze(1)
            if len(m):
                K = self.refine
                sub = f[m] * K
                s0 = sub.detach().floor().clamp(0, K - 1)
                sf = sub - s0
                loc = s0.long()[:, None, :] + _CORNERS.to(x.device)[None]
                idx = (loc[..., 0] * (K + 1) + loc[..., 1]) * (K + 1) + loc[..., 2]
                flat = self.fine.reshape(-1, self.channels)
                sub_rows = cr[m].long()[:, None] * (K + 1) ** 3 + idx
                vals = vals.index_copy(0, m, gather_rows(flat, sub_rows).to(vals.dtype))
                w = w.index_copy(0, m, trilinear_weights(sf))
                origin = origin.index_copy(0, m, origin[m] + s0 * (h / K))
                size = size.index_copy(0, m, torch.full((len(m),), h / K, dtype=x.dtype, device=x.device))
                sc = (s0[:, 0] * K + s0[:, 1]) * K + s0[:, 2]
                memo_key = memo_key.index_copy(0, m, cr[m].long() * K**3 + sc.long())
                memo_sub[m] = True
        mixed = None
        if sheets is not None:
            # which cells may straddle two sheets, computed once per cell and remembered
            with torch.no_grad():
                fine_memo, sub_memo = self._straddle_memo(*sheets)
                known = torch.full((len(x),), -1, dtype=torch.int8, device=x.device)
                if len(fine_memo):
                    known = torch.where(memo_sub, known, gather_rows(fine_memo, memo_key.clamp(max=len(fine_memo) - 1)))
                if len(sub_memo):
                    known = torch.where(memo_sub, gather_rows(sub_memo, memo_key.clamp(max=len(sub_memo) - 1)), known)
                todo = torch.nonzero(ok & (known < 0)).squeeze(1)
                if len(todo):
                    flag = may_straddle(gather_rows(vals, todo).detach(), gather_rows(size, todo), *sheets)
                    flag = flag.to(torch.int8)
                    known = known.index_copy(0, todo, flag)
                    sub = memo_sub[todo]
                    fine_memo[memo_key[todo][~sub]] = flag[~sub]
                    sub_memo[memo_key[todo][sub]] = flag[sub]
                mixed = (known > 0) & ok
        return CellCorners(ok, w, vals, origin, size, mixed)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        c = self.cells(x)
        fine = torch.einsum("nk,nkc->nc", c.weights, c.values)
        if bool(c.ok.all()):
            return fine
        coarse = self.coarse(x)
        return torch.where(c.ok[:, None], fine, coarse)

    def corner_offsets(self, dtype=torch.float32) -> torch.Tensor:
        """(8, 3) corner offsets from a fine cell's lowest corner, in normalised units."""
        return _CORNERS.to(self.values.device, dtype) * self.h

    def fine_mask(self, x: torch.Tensor) -> torch.Tensor:
        """(N,) bool: which points are served by the fine grid (all 8 corners of their cell active)."""
        i0, _ = cell_coordinates(x, self.res, self.half)
        cell = flat_ids(i0, self.res)
        byte = self.complete_cells()[cell >> 3].to(torch.int32)
        return ((byte >> (cell & 7).to(torch.int32)) & 1).bool()


def close_sheet_cells(
    grid: BandGrid,
    near: float,
    gap: float,
    offset: float,
    chunk: int = 1 << 15,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Lowest-corner flat ids ``(M,)`` of the fine cells of ``grid`` (collocated, CSP
    displacements) that have all 8 corners active, a corner within ``near`` cells of the surface,
    and two corners that see different sheets within ``gap`` cells of each other: corner j's
    closest point lies off corner i's tangent plane by more than ``offset`` cells plus
    ``|t| sin(n_i, n_j)`` (``t`` the tangential part of ``q_j - q_i``: what a curved or faceted sheet
    explains). These are the cells where two sides of a thin part, two close layers or the two
    sides of a fold pass within a cell or two, which a fine cell's 8 corners cannot separate.
    Also returns, per cell, the distance (cells) between the closest points of its closest pair of
    corners on different sheets ``(M,)``."""
    R, h = grid.res, grid.h
    act, D = grid.active, grid.values.detach()
    dist = D.norm(dim=1)
    cand = act[dist <= (near + np.sqrt(3.0)) * h]
    i0 = cell_indices(cand, R)
    i0 = i0[(i0 < R - 1).all(1)]
    out = []
    off = grid.corner_offsets(D.dtype)
    for s in range(0, len(i0), chunk):
        c = i0[s : s + chunk]
        rows = grid.table()[corner_ids(c, R)].long()
        ok = (rows >= 0).all(1)
        c, rows = c[ok], rows[ok]
        Dc = D[rows]
        L = Dc.norm(dim=2)
        near_ok = L.amin(1) <= near * h
        c, Dc, L = c[near_ok], Dc[near_ok], L[near_ok]
        n = Dc / L.clamp(min=1e-12)[..., None]
        q = off[None] + Dc
        # cheap screen: every closest point on corner 0's tangent plane and every normal within
        # ~8 degrees of corner 0's (or its opposite): one sheet
        o0 = ((q - q[:, :1]) * n[:, :1]).sum(-1).abs().amax(1)
        c0 = (n * n[:, :1]).sum(-1).abs().amin(1)
        scr = (o0 > 0.5 * offset * h) | (c0 < 0.99)
        c, n, q, L = c[scr], n[scr], q[scr], L[scr]
        dq = q[:, None, :, :] - q[:, :, None, :]  # q_j - q_i
        along = (dq * n[:, :, None, :]).sum(-1)
        own = (dq * n[:, None, :, :]).sum(-1)
        tang = (dq - along[..., None] * n[:, :, None, :]).norm(dim=-1)
        sin = torch.linalg.cross(
            n[:, :, None, :].expand(-1, 8, 8, 3), n[:, None, :, :].expand(-1, 8, 8, 3), dim=3
        ).norm(dim=3)
        good = (L[:, :, None] > 0.05 * h) & (L[:, None, :] > 0.05 * h)
        other = good & (torch.maximum(along.abs(), own.abs()) > offset * h + tang * sin) & (dq.norm(dim=-1) < gap * h)
        sel = other.flatten(1).any(1)
        # closest pair of sheets in the cell, in cells: the priority under a budget
        sep = torch.where(other, dq.norm(dim=-1), torch.full_like(along, torch.inf)).flatten(1).amin(1) / h
        out.append((flat_ids(c[sel], R), sep[sel]))
    if not out:
        return torch.zeros(0, dtype=torch.int64), torch.zeros(0)
    return torch.cat([o[0] for o in out]), torch.cat([o[1] for o in out])
