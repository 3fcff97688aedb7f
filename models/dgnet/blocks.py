"""Building blocks shared by DG-Net's generator and discriminator."""
from __future__ import annotations

import torch
from torch import nn
import torch.nn.functional as F


def conv(cin: int, cout: int, kernel: int, stride: int = 1, dilation: int = 1, norm: str = "none",
         act: bool = True, pad: str = "reflect") -> nn.Sequential:
    """Conv (same padding) → optional instance/layer norm → optional leaky ReLU (0.2), as the paper."""
    layers: list[nn.Module] = [nn.Conv2d(cin, cout, kernel, stride, padding=dilation * (kernel // 2),
                                         dilation=dilation, padding_mode=pad)]
    if norm == "in":
        layers.append(nn.InstanceNorm2d(cout))
    elif norm == "ln":
        layers.append(nn.GroupNorm(1, cout))  # one group = layer norm over (C, H, W) with a per-channel affine
    elif norm != "none":
        raise ValueError(f"unknown norm {norm!r}")
    if act:
        layers.append(nn.LeakyReLU(0.2, inplace=True))
    return nn.Sequential(*layers)


class ResBlock(nn.Module):
    """x + conv-norm-act-conv-norm (3×3 convs, reflect padding)."""

    def __init__(self, dim: int, norm: str):
        super().__init__()
        self.body = nn.Sequential(conv(dim, dim, 3, norm=norm), conv(dim, dim, 3, norm=norm, act=False))

    def forward(self, x):
        return x + self.body(x)


class AdaINResBlock(nn.Module):
    """Residual block whose two norms are adaptive instance norms: per-sample scales and biases
    (B, 2, C) come from the appearance code instead of learned parameters."""

    def __init__(self, dim: int):
        super().__init__()
        self.conv1 = nn.Conv2d(dim, dim, 3, padding=1, padding_mode="reflect")
        self.conv2 = nn.Conv2d(dim, dim, 3, padding=1, padding_mode="reflect")

    def forward(self, x, scale, bias):
        h = F.leaky_relu(adain(self.conv1(x), scale[:, 0], bias[:, 0]), 0.2)
        return x + adain(self.conv2(h), scale[:, 1], bias[:, 1])


def adain(x: torch.Tensor, scale: torch.Tensor, bias: torch.Tensor) -> torch.Tensor:
    return F.instance_norm(x) * scale[:, :, None, None] + bias[:, :, None, None]


class GroupedMLP(nn.Module):
    """`groups` independent MLPs (in → hidden → … → out, leaky ReLU between) run as one batched
    matrix product per layer: input (B, groups, in) → (B, groups, out)."""

    def __init__(self, groups: int, dims: list[int]):
        super().__init__()
        self.weights = nn.ParameterList()
        self.biases = nn.ParameterList()
        for cin, cout in zip(dims[:-1], dims[1:]):
            w = torch.empty(groups, cin, cout)
            for g in range(groups):  # Kaiming (fan in) per group, as a Linear(cin, cout) would be
                nn.init.kaiming_normal_(w[g].T)
            self.weights.append(nn.Parameter(w))
            self.biases.append(nn.Parameter(torch.zeros(groups, cout)))

    def forward(self, x):
        last = len(self.weights) - 1
        for i, (w, b) in enumerate(zip(self.weights, self.biases)):
            x = torch.einsum("bgi,gio->bgo", x, w) + b
            if i < last:
                x = F.leaky_relu(x, 0.2)
        return x


def init_kaiming(module: nn.Module) -> None:
    """Kaiming-normal (fan in) conv and linear weights and zero biases: the generator's init."""
    for m in module.modules():
        if isinstance(m, (nn.Conv2d, nn.Linear)):
            nn.init.kaiming_normal_(m.weight)
            if m.bias is not None:
                nn.init.zeros_(m.bias)
