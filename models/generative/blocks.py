"""Building blocks shared by DG-Net's generator and discriminator."""
from __future__ import annotations

import torch
from torch import nn
import torch.nn.functional as F


def conv(cin: int, cout: int, kernel: int, stride: int = 1, dilation: int = 1, norm: str = "none",
         act: bool = True, pad: str = "reflect", upsample: bool = False) -> nn.Sequential:
    """Conv (same padding) → optional instance/layer norm → optional leaky ReLU (0.2), as the paper.
    `upsample`: nearest ×2 upsampling first, fused into the conv (`UpConv`, edge padding)."""
    first = UpConv(cin, cout, kernel) if upsample else nn.Conv2d(
        cin, cout, kernel, stride, padding=dilation * (kernel // 2), dilation=dilation, padding_mode=pad)
    layers: list[nn.Module] = [first]
    if norm == "in":
        layers.append(nn.InstanceNorm2d(cout))
    elif norm == "ln":
        layers.append(nn.GroupNorm(1, cout))  # one group = layer norm over (C, H, W) with a per-channel affine
    elif norm != "none":
        raise ValueError(f"unknown norm {norm!r}")
    if act:
        layers.append(nn.LeakyReLU(0.2, inplace=True))
    return nn.Sequential(*layers)


class UpConv(nn.Conv2d):
    """Nearest-neighbour ×2 upsampling, then a k×k convolution over edge-replicated padding — computed
    without the upsampled map. Each of the 4 output phases (row and column parity) of the upsampled grid
    reads only a few distinct input rows and columns (3 for k = 5), so its taps fold into a small kernel
    on the input; the 4 phase convolutions run as one and are pixel-shuffled into place. For k = 5 that is 9/25 of the
    direct form's arithmetic, with the same k×k weights and the same result."""

    def __init__(self, cin: int, cout: int, kernel: int):
        if kernel % 2 == 0:
            raise ValueError(f"UpConv needs an odd kernel, got {kernel}")
        super().__init__(cin, cout, kernel)
        half = kernel // 2
        self.low, high = (0 - half) // 2, (1 + half) // 2  # input offsets the two phases reach
        taps = high - self.low + 1
        # fold[p, t, d]: upsampled tap d of phase p reads input offset t (floor division by 2)
        fold = torch.zeros(2, taps, kernel)
        for p in range(2):
            for d in range(-half, half + 1):
                fold[p, (p + d) // 2 - self.low, d + half] = 1
        self.register_buffer("fold", fold, persistent=False)

    def forward(self, x):
        o, c = self.out_channels, self.in_channels
        phases = torch.einsum("ita,ocab,jsb->oijcts", self.fold, self.weight, self.fold)
        taps = phases.shape[-1]
        pad = -self.low
        y = F.conv2d(F.pad(x, (pad, taps - 1 - pad, pad, taps - 1 - pad), mode="replicate"),
                     phases.reshape(4 * o, c, taps, taps), self.bias.repeat_interleave(4))
        return F.pixel_shuffle(y, 2)


class PointwiseConv(nn.Conv2d):
    """A 1×1 convolution computed as one matrix product per image. For the decoder's last layer (few
    output channels over a full-resolution map) oneDNN's convolution backward runs 2-4× slower than the
    same arithmetic as matrix products (measured inside a 256×128 training iteration)."""

    def __init__(self, cin: int, cout: int):
        super().__init__(cin, cout, 1)

    def forward(self, x):
        b, _, h, w = x.shape
        y = torch.matmul(self.weight.flatten(1), x.flatten(2))
        return (y + self.bias.to(y.dtype)[:, None]).view(b, self.out_channels, h, w)  # autocast: y's precision


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

    def forward(self, x, scale, bias, index=None):
        """`index`: item i's input is x[index[i]] — items that share an input (one structure map drawn with
        several appearances) share its first convolution and that convolution's norm statistics."""
        h = F.instance_norm(self.conv1(x))
        if index is not None:
            h, x = h.index_select(0, index), x.index_select(0, index)  # backward deterministic on CPU, unlike h[index]
        h = F.leaky_relu(modulate(h, scale[:, 0], bias[:, 0]), 0.2)
        return x + modulate(F.instance_norm(self.conv2(h)), scale[:, 1], bias[:, 1])


def modulate(normalised: torch.Tensor, scale: torch.Tensor, bias: torch.Tensor) -> torch.Tensor:
    """AdaIN's second half: per-sample, per-channel scale and bias of an instance-normalised map."""
    return normalised * scale[:, :, None, None] + bias[:, :, None, None]


class GroupedMLP(nn.Module):
    """`groups` independent MLPs (in → hidden → … → out, [norm →] leaky ReLU between) run as one batched
    matrix product per layer: input (B, groups, in) → (B, groups, out).

    `norm` after each hidden layer: none; bn — batch norm over the batch per group and feature, which
    takes out what all codes share (ReLU codes are mostly that), so the AdaIN parameters follow what
    tells one appearance from another from the first iteration; ln — layer norm over each group's features.
    """

    NORMS = ("none", "bn", "ln")

    def __init__(self, groups: int, dims: list[int], norm: str = "none"):
        super().__init__()
        if norm not in self.NORMS:
            raise ValueError(f"unknown gen.mlp_norm {norm!r}; choose one of {', '.join(self.NORMS)}")
        self.weights = nn.ParameterList()
        self.biases = nn.ParameterList()
        self.norms = nn.ModuleList()
        for cin, cout in zip(dims[:-1], dims[1:]):
            w = torch.empty(groups, cin, cout)
            for g in range(groups):  # Kaiming (fan in) per group, as a Linear(cin, cout) would be
                nn.init.kaiming_normal_(w[g].T)
            self.weights.append(nn.Parameter(w))
            self.biases.append(nn.Parameter(torch.zeros(groups, cout)))
        for width in dims[1:-1]:
            if norm == "bn":
                self.norms.append(nn.BatchNorm1d(groups * width))
            elif norm == "ln":
                self.norms.append(nn.LayerNorm(width))
            else:
                self.norms.append(nn.Identity())

    def forward(self, x):
        last = len(self.weights) - 1
        for i, (w, b) in enumerate(zip(self.weights, self.biases)):
            x = torch.einsum("bgi,gio->bgo", x, w) + b
            if i < last:
                norm = self.norms[i]
                x = norm(x.flatten(1)).view_as(x) if isinstance(norm, nn.BatchNorm1d) else norm(x)
                x = F.leaky_relu(x, 0.2)
        return x


def init_kaiming(module: nn.Module) -> None:
    """Kaiming-normal (fan in) conv and linear weights and zero biases: the generator's init."""
    for m in module.modules():
        if isinstance(m, (nn.Conv2d, nn.Linear)):
            nn.init.kaiming_normal_(m.weight)
            if m.bias is not None:
                nn.init.zeros_(m.bias)
