"""Point-cloud-conditioned fields: a ConvONet-style encoder (PointNet with local pooling onto three
axis-aligned feature planes, refined by a small U-Net) and a ResNet-FC decoder that gives the
closest surface point (CSP) of a query, or its unsigned distance (the NDF-style UDF baseline).

* :class:`ConditionalConfig` is the typed architecture, saved next to the weights.
* :class:`ConditionalModel` maps ``cloud : (B, N, 3)`` and ``queries : (B, M, 3)`` (normalised
  coordinates) to closest points ``(B, M, 3)``; :meth:`ConditionalModel.encode` and
  :meth:`ConditionalModel.closest_points` split precompute from query.
* :class:`ConditionalField` holds the latent planes of one cloud and answers the
  :class:`~deepcsp.fields.query.Field` API, so query/render/extract code can use it.
* :func:`save_model` / :func:`load_model`: one ``.safetensors`` file, config in its header, no pickles.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, fields
from pathlib import Path
from typing import Literal

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F

from deepcsp._validate import Fields, OptionError
from deepcsp.errors import DeepCSPError
from deepcsp.fields.batched import QUERY_CHUNK, as_points
from deepcsp.fields.files import check_finite, read_weights, write_weights
from deepcsp.fields.query import Field
from deepcsp.geometry.normalize import Normalization

FORMAT = "deepcsp-conditional"
FORMAT_VERSION = 1
PLANES = ((0, 2), (0, 1), (1, 2))  # xz, xy, yz (ConvONet order)


@dataclass
class ConditionalConfig:
    """Architecture of a point-cloud-conditioned field (saved with its weights)."""

    kind: Literal["csp", "udf"] = "csp"
    """``csp`` predicts the closest point (as a displacement); ``udf`` the unsigned distance."""
    plane_resolution: int = 32
    """Cells per side of each of the three feature planes."""
    plane_channels: int = 32
    """Feature channels per plane."""
    encoder_hidden: int = 32
    """Width of the PointNet's ResNet blocks."""
    encoder_blocks: int = 3
    """PointNet ResNet blocks (local pooling between them)."""
    unet_depth: int = 2
    """Levels of the plane U-Net (0 disables it)."""
    decoder_hidden: int = 64
    """Width of the ResNet-FC decoder."""
    decoder_blocks: int = 3
    """ResNet-FC decoder blocks."""
    padding: float = 0.1
    """The planes cover ``[-(0.5 + padding/2), 0.5 + padding/2]`` (ConvONet convention)."""
    knn: int = 8
    """Decoder also sees the offsets to the query's ``knn`` nearest input points (a max-pooled
    per-neighbour MLP); 0 disables (plain ConvONet decoder)."""
    udf_clamp: float = 0.1
    """udf: distances are learned up to this clamp (NDF); beyond it the gradient still points away."""

    def __post_init__(self) -> None:
        f = Fields(self)
        f.literal("kind")
        res = f.integer("plane_resolution", 2, 1024)
        f.integer("plane_channels", 1, 512)
        f.integer("encoder_hidden", 1, 1024)
        f.integer("encoder_blocks", 1, 16)
        depth = f.integer("unet_depth", 0, 8)
        if res < 2**depth:
            raise OptionError(
                "ConditionalConfig.plane_resolution",
                f"must be at least 2^unet_depth = {2**depth} (the U-Net halves it {depth} times), got {res}",
            )
        f.integer("decoder_hidden", 1, 1024)
        f.integer("decoder_blocks", 1, 16)
        f.number("padding", 0.0, 10.0)
        f.integer("knn", 0, 256)
        f.number("udf_clamp", 0.0, 10.0, min_open=True)
        if 3 * res**2 * self.plane_channels > 2**28:
            raise OptionError(
                "ConditionalConfig.plane_resolution",
                f"gives 3 * plane_resolution^2 * plane_channels = {3 * res**2 * self.plane_channels} plane values, "
                f"more than {2**28}",
            )

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict) -> "ConditionalConfig":
        names = {f.name for f in fields(cls)}
        unknown = set(d) - names
        if unknown:
            raise ValueError(f"unknown conditional config keys {sorted(unknown)}")
        return cls(**d)


class ResnetBlockFC(nn.Module):
    """``x + fc1(relu(fc0(relu(x))))`` with a linear shortcut when widths differ (ConvONet)."""

    def __init__(self, n_in: int, n_out: int | None = None):
        super().__init__()
        n_out = n_out or n_in
        n_h = min(n_in, n_out)
        self.fc_0 = nn.Linear(n_in, n_h)
        self.fc_1 = nn.Linear(n_h, n_out)
        self.shortcut = nn.Linear(n_in, n_out, bias=False) if n_in != n_out else None
        nn.init.zeros_(self.fc_1.weight)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        dx = self.fc_1(F.relu(self.fc_0(F.relu(x))))
        return (self.shortcut(x) if self.shortcut is not None else x) + dx


def plane_coordinates(points: torch.Tensor, padding: float) -> torch.Tensor:
    """``points : (B, N, 3)`` normalised -> ``(B, N, 3, 2)`` plane coordinates in ``[0, 1)``."""
    span = 1.0 + padding
    uv = torch.stack([points[..., list(p)] for p in PLANES], dim=2)
    return (uv / span + 0.5).clamp(0.0, 1.0 - 1e-5)


def plane_cells(uv: torch.Tensor, resolution: int) -> torch.Tensor:
    """``uv : (B, N, 3, 2)`` in ``[0, 1)`` -> flat cell index ``(B, N, 3)`` in ``[0, R*R)``."""
    ij = (uv * resolution).long()
    return ij[..., 0] + resolution * ij[..., 1]


class _UNet(nn.Module):
    """A small 2D U-Net applied to each plane (shared weights), channels constant, ``depth`` levels."""

    def __init__(self, channels: int, depth: int):
        super().__init__()
        self.depth = depth
        self.down = nn.ModuleList([nn.Conv2d(channels, channels, 3, padding=1) for _ in range(depth)])
        self.pool_conv = nn.ModuleList([nn.Conv2d(channels, channels, 3, padding=1) for _ in range(depth)])
        self.up = nn.ModuleList([nn.Conv2d(2 * channels, channels, 3, padding=1) for _ in range(depth)])

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        skips = []
        for i in range(self.depth):
            x = F.relu(self.down[i](x))
            skips.append(x)
            x = F.relu(self.pool_conv[i](F.max_pool2d(x, 2)))
        for i in reversed(range(self.depth)):
            x = F.interpolate(x, size=skips[i].shape[-2:], mode="bilinear", align_corners=False)
            x = F.relu(self.up[i](torch.cat([x, skips[i]], dim=1)))
        return x


class LocalPoolPointNet(nn.Module):
    """PointNet with local max-pooling over plane cells, scatter-mean onto three feature planes."""

    def __init__(self, config: ConditionalConfig):
        super().__init__()
        h, c = config.encoder_hidden, config.plane_channels
        self.config = config
        self.fc_pos = nn.Linear(3, 2 * h)
        self.blocks = nn.ModuleList([ResnetBlockFC(2 * h, h) for _ in range(config.encoder_blocks)])
        self.fc_c = nn.Linear(h, c)
        self.unet = _UNet(c, config.unet_depth) if config.unet_depth > 0 else None

    def _local_max(self, net: torch.Tensor, cells: torch.Tensor) -> torch.Tensor:
        """Max of ``net : (B, N, H)`` over points sharing a cell, summed over the planes."""
        b, n, hdim = net.shape
        r2 = self.config.plane_resolution**2
        out = torch.zeros_like(net)
        for k in range(3):
            idx = cells[..., k].unsqueeze(-1).expand(b, n, hdim)
            pooled = torch.full((b, r2, hdim), -1e9, dtype=net.dtype, device=net.device)
            pooled = pooled.scatter_reduce(1, idx, net, reduce="amax", include_self=True)
            out = out + pooled.gather(1, idx)
        return out

    def forward(self, cloud: torch.Tensor) -> torch.Tensor:
        """``cloud : (B, N, 3)`` -> planes ``(B, 3, C, R, R)``."""
        cfg = self.config
        r = cfg.plane_resolution
        cells = plane_cells(plane_coordinates(cloud, cfg.padding), r)
        net = self.blocks[0](self.fc_pos(cloud))
        for block in self.blocks[1:]:
            net = block(torch.cat([net, self._local_max(net, cells)], dim=-1))
        feat = self.fc_c(net)  # (B, N, C)
        b, n, c = feat.shape
        planes = []
        for k in range(3):
            idx = cells[..., k]
            summed = torch.zeros(b, r * r, c, dtype=feat.dtype, device=feat.device).scatter_add(
                1, idx.unsqueeze(-1).expand(b, n, c), feat
            )
            count = torch.zeros(b, r * r, 1, dtype=feat.dtype, device=feat.device).scatter_add(
                1, idx.unsqueeze(-1), torch.ones(b, n, 1, dtype=feat.dtype, device=feat.device)
            )
            plane = (summed / count.clamp(min=1.0)).transpose(1, 2).reshape(b, c, r, r)  # index = i + R*j -> [j, i]
            if self.unet is not None:
                plane = self.unet(plane)
            planes.append(plane)
        return torch.stack(planes, dim=1)


@dataclass
class Latent:
    """What the encoder gives for a batch of clouds: ``planes : (B, 3, C, R, R)`` and the
    ``cloud : (B, N, 3)`` itself (used by the decoder's nearest-neighbour branch)."""

    planes: torch.Tensor
    cloud: torch.Tensor


def knn_offsets(queries: torch.Tensor, cloud: torch.Tensor, k: int, chunk: int = 4096) -> torch.Tensor:
    """Offsets ``(B, M, k, 3)`` from each query ``(B, M, 3)`` to its ``k`` nearest points of
    ``cloud : (B, N, 3)``, nearest first (exact, chunked over queries to bound memory)."""
    outs = []
    for i in range(0, queries.shape[1], chunk):
        q = queries[:, i : i + chunk]
        idx = torch.cdist(q, cloud).topk(k, dim=-1, largest=False).indices  # (B, m, k)
        nb = torch.gather(cloud.unsqueeze(1).expand(-1, q.shape[1], -1, -1), 2, idx.unsqueeze(-1).expand(-1, -1, -1, 3))
        outs.append(nb - q.unsqueeze(2))
    return torch.cat(outs, dim=1)


class ResnetFCDecoder(nn.Module):
    """ResNet-FC decoder: plane features (bilinear) are added before every block; optionally a
    feature of the offsets to the nearest input points is added to the input layer."""

    def __init__(self, config: ConditionalConfig, n_out: int):
        super().__init__()
        h, c = config.decoder_hidden, config.plane_channels
        self.config = config
        self.fc_p = nn.Linear(3, h)
        self.fc_c = nn.ModuleList([nn.Linear(c, h) for _ in range(config.decoder_blocks)])
        self.blocks = nn.ModuleList([ResnetBlockFC(h) for _ in range(config.decoder_blocks)])
        self.fc_out = nn.Linear(h, n_out)
        if config.knn > 0:
            self.knn_mlp = nn.Sequential(nn.Linear(4, h), nn.ReLU(), nn.Linear(h, h))

    def sample(self, planes: torch.Tensor, queries: torch.Tensor) -> torch.Tensor:
        """Bilinear features ``(B, M, C)`` of ``queries : (B, M, 3)`` from ``planes : (B, 3, C, R, R)``."""
        uv = plane_coordinates(queries, self.config.padding) * 2.0 - 1.0  # grid_sample wants [-1, 1]
        feat = 0.0
        for k in range(3):
            g = uv[:, :, k].unsqueeze(1)  # (B, 1, M, 2): x -> width (i), y -> height (j)
            feat = feat + F.grid_sample(
                planes[:, k], g, mode="bilinear", padding_mode="border", align_corners=False
            ).squeeze(2)
        return feat.transpose(1, 2)

    def forward(self, latent: Latent, queries: torch.Tensor) -> torch.Tensor:
        c = self.sample(latent.planes, queries)
        net = self.fc_p(queries)
        if self.config.knn > 0:
            off = knn_offsets(queries, latent.cloud, self.config.knn) * 10.0  # offsets ~0.01-0.1 -> O(1)
            feat = torch.cat([off, off.norm(dim=-1, keepdim=True)], dim=-1)
            net = net + self.knn_mlp(feat).max(dim=2).values
        for fc_c, block in zip(self.fc_c, self.blocks):
            net = block(net + fc_c(c))
        return self.fc_out(F.relu(net))


class ConditionalModel(nn.Module):
    """Encoder + decoder. ``forward(cloud (B, N, 3), queries (B, M, 3))`` gives the raw output:
    closest points ``(B, M, 3)`` (csp) or distances ``(B, M)`` (udf)."""

    def __init__(self, config: ConditionalConfig):
        super().__init__()
        self.config = config
        self.encoder = LocalPoolPointNet(config)
        self.decoder = ResnetFCDecoder(config, 3 if config.kind == "csp" else 1)

    def encode(self, cloud: torch.Tensor) -> Latent:
        """``cloud : (B, N, 3)`` -> :class:`Latent` (planes ``(B, 3, C, R, R)`` and the cloud)."""
        return Latent(self.encoder(cloud), cloud)

    def decode(self, latent: Latent, queries: torch.Tensor) -> torch.Tensor:
        """Closest points ``(B, M, 3)`` (csp: ``x + displacement``) or distances ``(B, M)`` (udf: softplus, beta 20)."""
        out = self.decoder(latent, queries)
        if self.config.kind == "csp":
            return queries + out
        return F.softplus(out[..., 0], beta=20.0)

    def closest_points(self, latent: Latent, queries: torch.Tensor) -> torch.Tensor:
        """Closest points ``(B, M, 3)`` for either kind (udf: ``x - d * grad d / |grad d|``)."""
        if self.config.kind == "csp":
            return self.decode(latent, queries)
        with torch.enable_grad():
            q = queries.detach().requires_grad_(True)
            d = self.decode(Latent(latent.planes.detach(), latent.cloud.detach()), q)
            (g,) = torch.autograd.grad(d.sum(), q)
        g = g / g.norm(dim=-1, keepdim=True).clamp(min=1e-12)
        return (q - d.unsqueeze(-1) * g).detach()

    def forward(self, cloud: torch.Tensor, queries: torch.Tensor) -> torch.Tensor:
        return self.decode(self.encode(cloud), queries)


class ConditionalField(Field):
    """The field of one input cloud: latent planes computed once, then queried like any field.

    ``cloud : (N, 3)`` in input coordinates; its normalisation maps it into the cube."""

    def __init__(
        self,
        model: ConditionalModel,
        cloud,
        device: str | torch.device = "cpu",
        normalization: Normalization | None = None,
    ):
        arr = as_points(cloud, "cloud").astype(np.float64)
        if len(arr) < 16:
            raise ValueError(f"cloud needs at least 16 points, got {len(arr)}")
        self.model = model.to(device).eval()
        self.kind = model.config.kind
        self.device = torch.device(device)
        self.normalization = normalization or Normalization.from_points(arr)
        x = torch.as_tensor(self.normalization.to_normalized(arr), dtype=torch.float32, device=self.device)
        self.chunk = QUERY_CHUNK
        with torch.no_grad():
            self.latent = self.model.encode(x.unsqueeze(0))

    def closest_points_normalized(self, x: torch.Tensor) -> torch.Tensor:
        if self.kind == "csp":
            with torch.no_grad():
                return self.model.decode(self.latent, x.unsqueeze(0))[0]
        return self.model.closest_points(self.latent, x.unsqueeze(0))[0]

    def distances_normalized(self, x: torch.Tensor) -> torch.Tensor:
        if self.kind == "udf":
            with torch.no_grad():
                return self.model.decode(self.latent, x.unsqueeze(0))[0]
        return super().distances_normalized(x)


def save_model(path: str | Path, model: ConditionalModel, meta: dict | None = None) -> Path:
    """Write weights (safetensors) with the config and ``meta`` in the header, atomically."""
    header = {"format": FORMAT, "version": FORMAT_VERSION, "config": model.config.to_dict(), "meta": meta or {}}
    return write_weights(path, model.state_dict(), header)


@dataclass
class LoadedModel:
    """A model read by :func:`load_model` with the ``meta`` saved beside it."""

    model: ConditionalModel
    meta: dict


def load_model(path: str | Path, device: str = "cpu") -> LoadedModel:
    """Load a model saved by :func:`save_model`; never unpickles; DeepCSPError on a bad file."""
    path = Path(path)
    tensors, header = read_weights(path, "deepcsp reconstruction model", FORMAT, FORMAT_VERSION)
    try:
        model = ConditionalModel(ConditionalConfig.from_dict(header["config"]))
        model.load_state_dict(tensors, strict=True)
    except Exception as exc:
        raise DeepCSPError(f"is not a deepcsp reconstruction model ({str(exc).splitlines()[0][:200]})", path) from None
    check_finite(tensors, path)
    return LoadedModel(model=model.to(device).eval(), meta=header.get("meta", {}))


def shipped_model_path() -> Path:
    """Path of the small model shipped in the package (``deepcsp/data/recon_model.safetensors``)."""
    return Path(__file__).resolve().parent.parent / "data" / "recon_model.safetensors"
