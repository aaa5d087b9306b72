"""A local learned CSP operator for point clouds (the paper's CSP network, made local).

Input: the ``k`` nearest cloud points of a query in its canonical frame
(:func:`deepcsp.geometry.neighborhoods.local_neighborhoods`: centred at the query, principal axes,
unit RMS radius); output: the query's closest surface point in that frame. So the operator is
invariant to translation, rotation and scale and works at any cloud size; trained on noisy,
sparse and outlier-ridden clouds it learns to tell noise from detail (:mod:`deepcsp.train.local`).

    model = load_local_model(shipped_local_model_path())
    surface_points = project_points(model, cloud, queries)      # (Q, 3)

Files are one ``.safetensors`` with the config in a JSON header (never unpickled).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, fields
from pathlib import Path

import numpy as np
import torch
from torch import nn

from deepcsp._validate import Fields
from deepcsp.errors import DeepCSPError
from deepcsp.fields.files import check_finite, read_weights, write_weights
from deepcsp.geometry.neighborhoods import local_neighborhoods

FORMAT = "deepcsp-local-csp"
FORMAT_VERSION = 1
#: Neighbourhoods per forward pass in :func:`project_points`: 256 x 64 points keep the activations
#: in cache (10k queries on 2 cores: 2.5 s, against 5.2-6.1 s at 8192 and 3.4 s at 512; scratch timing).
MODEL_BATCH = 256


@dataclass
class LocalCSPConfig:
    """Architecture of the local CSP network."""

    neighbors: int = 64
    """Cloud points around each query the network sees."""
    width: int = 128
    """Width of the per-point features."""
    hidden: int = 256
    """Width of the head."""

    def __post_init__(self) -> None:
        f = Fields(self)
        f.integer("neighbors", 8, 1024)
        f.integer("width", 8, 4096)
        f.integer("hidden", 8, 4096)

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict) -> "LocalCSPConfig":
        names = {f.name for f in fields(cls)}
        unknown = set(d) - names
        if unknown:
            raise ValueError(f"unknown local model config keys {sorted(unknown)}")
        return cls(**d)


class LocalCSPNet(nn.Module):
    """PointNet with a second, context-aware pass: per-point features, pooled (max and mean),
    appended to every point, pooled again; a head maps the pool to the closest point ``(B, 3)`` of
    the query (the origin of the frame)."""

    def __init__(self, config: LocalCSPConfig = LocalCSPConfig()):
        super().__init__()
        self.config = config
        w, h = config.width, config.hidden
        self.point = nn.Sequential(nn.Linear(4, w // 2), nn.ReLU(), nn.Linear(w // 2, w), nn.ReLU())
        self.context = nn.Sequential(nn.Linear(3 * w, w), nn.ReLU(), nn.Linear(w, w), nn.ReLU())
        self.head = nn.Sequential(nn.Linear(2 * w, h), nn.ReLU(), nn.Linear(h, h // 2), nn.ReLU(), nn.Linear(h // 2, 3))

    def forward(self, points: torch.Tensor) -> torch.Tensor:
        """``points : (B, k, 3)`` canonical neighbourhoods -> closest points ``(B, 3)`` in the frame."""
        r = points.norm(dim=-1, keepdim=True)
        f = self.point(torch.cat([points, r], -1))
        pooled = torch.cat([f.max(1).values, f.mean(1)], -1)
        # context[0] applied to [f, pooled] per point, as a per-point and a per-neighbourhood part
        # (the same sum, a third of the work: the pooled part is shared by the k points)
        first, w = self.context[0], f.shape[-1]
        shared = torch.nn.functional.linear(pooled, first.weight[:, w:], first.bias)
        g = self.context[1:](torch.nn.functional.linear(f, first.weight[:, :w]) + shared[:, None])
        return self.head(torch.cat([g.max(1).values, g.mean(1)], -1))

    def predict(self, points: torch.Tensor) -> torch.Tensor:
        """:meth:`forward` averaged with its mirror image across the tangent plane (the frame's
        normal has no preferred sign, so the prediction should not either)."""
        flip = torch.tensor([1.0, 1.0, -1.0], dtype=points.dtype, device=points.device)
        return 0.5 * (self(points) + self(points * flip) * flip)


def project_points(
    model: LocalCSPNet,
    cloud: np.ndarray,
    queries: np.ndarray,
    tree=None,
    batch: int = 8192,
    skip_self: bool = False,
    progress=None,
    model_batch: int = MODEL_BATCH,
) -> np.ndarray:
    """Closest surface points ``(Q, 3)`` of ``queries : (Q, 3)`` predicted from ``cloud : (N, 3)``:
    neighbourhoods gathered ``batch`` queries at a time, the network run on ``model_batch`` of them
    at a time (activations that stay in cache).

    ``progress(done, total)`` is called after each batch."""
    from scipy.spatial import cKDTree

    tree = tree or cKDTree(cloud)
    out = np.empty_like(np.asarray(queries, np.float64))
    model.eval()
    for s in range(0, len(queries), batch):
        q = np.asarray(queries[s : s + batch], np.float64)
        nb = local_neighborhoods(cloud, tree, q, model.config.neighbors, skip_self=skip_self)
        device = next(model.parameters()).device
        points = torch.from_numpy(nb.points).to(device)
        with torch.no_grad():
            local = torch.cat([model.predict(c) for c in points.split(model_batch)]).double().cpu().numpy()
        out[s : s + len(q)] = q + nb.to_world(local)
        if progress is not None:
            progress(min(s + batch, len(queries)), len(queries))
    return out


def save_local_model(path: str | Path, model: LocalCSPNet, meta: dict | None = None) -> Path:
    """Write the weights (safetensors) with the config and ``meta`` in the header, atomically."""
    header = {"format": FORMAT, "version": FORMAT_VERSION, "config": model.config.to_dict(), "meta": meta or {}}
    return write_weights(path, model.state_dict(), header)


def load_local_model(path: str | Path, device: str = "cpu") -> LocalCSPNet:
    """Load a model written by :func:`save_local_model`; never unpickles; DeepCSPError on a bad file."""
    path = Path(path)
    tensors, header = read_weights(path, "deepcsp local CSP model", FORMAT, FORMAT_VERSION)
    try:
        model = LocalCSPNet(LocalCSPConfig.from_dict(header["config"]))
        model.load_state_dict(tensors, strict=True)
    except Exception as exc:
        raise DeepCSPError(f"is not a deepcsp local CSP model ({' '.join(str(exc).split())[:200]})", path) from None
    check_finite(tensors, path)
    model.meta = header.get("meta", {})
    return model.to(device).eval()


def shipped_local_model_path() -> Path:
    """The local CSP model shipped in the package (``deepcsp/data/local_csp.safetensors``)."""
    return Path(__file__).resolve().parent.parent / "data" / "local_csp.safetensors"
