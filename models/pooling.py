"""Global pooling of a feature map to a vector: average, max, or generalised mean (GeM)."""
from __future__ import annotations

import torch
from torch import nn
import torch.nn.functional as F


class GeM(nn.Module):
    """Generalised-mean pooling (Radenović et al.) with a learnable exponent p."""

    def __init__(self, p: float = 3.0, eps: float = 1e-6):
        super().__init__()
        self.p = nn.Parameter(torch.tensor(float(p)))
        self.eps = eps

    def forward(self, x):
        return x.clamp(min=self.eps).pow(self.p).mean(dim=(2, 3)).pow(1.0 / self.p)


class _Pool(nn.Module):
    def __init__(self, fn):
        super().__init__()
        self.fn = fn

    def forward(self, x):
        return self.fn(x, 1).flatten(1)


def build_pooling(name: str, gem_p: float = 3.0) -> nn.Module:
    if name == "avg":
        return _Pool(F.adaptive_avg_pool2d)
    if name == "max":
        return _Pool(F.adaptive_max_pool2d)
    if name == "gem":
        return GeM(gem_p)
    raise ValueError(f"unknown pooling {name!r}; choose avg, max or gem")
