"""Fields with controlled errors, to measure how extraction copes with learned-field defects."""

from __future__ import annotations

import torch

from deepcsp.fields.query import Field


class PerturbedField(Field):
    """Wraps a field and perturbs its distances, keeping its directions:
    ``CSP'(x) = x - |u(x) + bias + noise| n(x)`` with ``u = |x - CSP(x)|``, ``n = (x - CSP(x)) / u``
    and ``noise ~ N(0, noise_std^2)`` drawn afresh for every query (seeded generator).
    ``bias`` and ``noise_std`` are in normalised units. A closed base field stays closed: signed
    distances keep the base's sign with the perturbed magnitude.
    """

    def __init__(self, base: Field, bias: float = 0.0, noise_std: float = 0.0, seed: int = 0):
        self.base = base
        self.kind = base.kind
        self.normalization = base.normalization
        self.device = base.device
        self.bias = float(bias)
        self.noise_std = float(noise_std)
        self._gen = torch.Generator(device="cpu").manual_seed(seed)
        self.closed = bool(getattr(base, "closed", False))

    def signed_distances_normalized(self, x: torch.Tensor) -> torch.Tensor:
        if not self.closed:
            return super().signed_distances_normalized(x)
        side = torch.where(self.base.signed_distances_normalized(x) < 0, -1.0, 1.0).to(x.dtype)
        return side * (x - self.closest_points_normalized(x)).norm(dim=1)

    def closest_points_normalized(self, x: torch.Tensor) -> torch.Tensor:
        q = self.base.closest_points_normalized(x)
        d = x - q
        u = d.norm(dim=1, keepdim=True)
        n = d / u.clamp_min(1e-12)
        u2 = u + self.bias
        if self.noise_std > 0:
            u2 = u2 + self.noise_std * torch.randn(u.shape, generator=self._gen, dtype=u.dtype).to(u.device)
        return x - u2.abs() * n
