"""Structure encoder: the grey image → a 128-channel map at 1/4 resolution (body pose and layout), or at
1/2 with one stride-2 stage fewer."""
from __future__ import annotations

import torch
from torch import nn

from .blocks import ResBlock, conv, init_kaiming
from ..recompute import run_stages


def to_grey(images: torch.Tensor) -> torch.Tensor:
    """(B, 3, H, W) → (B, 1, H, W): the mean of the channels, so colour is left to the appearance code."""
    return images.mean(dim=1, keepdim=True)


class ASPP(nn.Module):
    """Atrous spatial pyramid: a 1×1 branch and 3×3 branches at dilations 3, 6 and 9, fused by a 1×1
    conv to twice the input width."""

    def __init__(self, dim: int, dilations=(3, 6, 9)):
        super().__init__()
        half = dim // 2
        self.branches = nn.ModuleList([conv(dim, half, 1, norm="in", act=False)] + [
            # Zero padding: at the small synthetic sizes a dilation of 9 exceeds the map, where reflect fails.
            nn.Sequential(conv(dim, half, 1, norm="in"), conv(half, half, 3, dilation=d, norm="in", act=False,
                                                             pad="zeros"))
            for d in dilations])
        self.fuse = conv(half * len(self.branches), 2 * dim, 1, norm="in", act=False)

    def forward(self, x):
        return self.fuse(torch.cat([branch(x) for branch in self.branches], dim=1))


class StructureEncoder(nn.Module):
    """grey image → convs to 1/2**downsample (dim → 2·dim → 4·dim channels; the paper: 2 stride-2 stages,
    to 1/4) → `n_res` residual blocks with instance norm → ASPP → 8·dim channels (128 for the paper's dim 16).
    `downsample` 1 keeps the same layers with the second stage at stride 1: a map twice as fine each way.
    `recompute`: each stage's inner activations are computed again in backward instead of kept."""

    DOWNSAMPLES = (1, 2)

    def __init__(self, dim: int = 16, n_res: int = 4, downsample: int = 2, recompute: bool = False):
        super().__init__()
        if downsample not in self.DOWNSAMPLES:
            raise ValueError(f"gen.downsample must be 1 or 2 (stride-2 stages of the structure encoder), got {downsample!r}")
        self.downsample, self.recompute = downsample, recompute
        self.net = nn.Sequential(
            conv(1, dim, 3, stride=2, norm="in"),
            conv(dim, 2 * dim, 3, norm="in"),
            conv(2 * dim, 2 * dim, 3, norm="in"),
            conv(2 * dim, 4 * dim, 3, stride=downsample, norm="in"),
            *[ResBlock(4 * dim, "in") for _ in range(n_res)],
            ASPP(4 * dim))
        self.out_channels = 8 * dim
        init_kaiming(self)

    def forward(self, images):
        """Normalised RGB images (B, 3, H, W) → (B, 8·dim, H/f, W/f), f = 2**downsample."""
        return run_stages(self.net, to_grey(images), self.recompute)
