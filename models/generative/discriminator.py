"""Multi-scale discriminator (LSGAN): one small conv net per scale, average pooling between scales."""
from __future__ import annotations

from torch import nn
import torch.nn.functional as F

from .blocks import ResBlock, conv


class MultiScaleDiscriminator(nn.Module):
    """`num_scales` nets, each: 1×1 conv, 3×3 conv, then `n_layer` stride-2 stages (widths dim, 2·dim, …,
    at most 512), `n_res` residual blocks, and a 1×1 conv to one score per location. No norm layers,
    so scoring a batch at once equals scoring its parts separately."""

    def __init__(self, dim: int = 32, n_layer: int = 2, n_res: int = 4, num_scales: int = 3):
        super().__init__()
        self.nets = nn.ModuleList([self._net(dim, n_layer, n_res) for _ in range(num_scales)])
        for m in self.modules():  # Gaussian init (std 0.02), as the paper's code
            if isinstance(m, nn.Conv2d):
                nn.init.normal_(m.weight, 0.0, 0.02)
                nn.init.zeros_(m.bias)

    @staticmethod
    def _net(dim: int, n_layer: int, n_res: int) -> nn.Sequential:
        layers = [conv(3, dim, 1), conv(dim, dim, 3), conv(dim, dim, 3, stride=2)]
        for _ in range(n_layer - 1):
            wider = min(2 * dim, 512)
            layers += [conv(dim, dim, 3), conv(dim, wider, 3, stride=2)]
            dim = wider
        layers += [ResBlock(dim, "none") for _ in range(n_res)]
        layers.append(nn.Conv2d(dim, 1, 1))
        return nn.Sequential(*layers)

    def forward(self, images):
        """Images (B, 3, H, W) → list of score maps, finest first."""
        scores = []
        for i, net in enumerate(self.nets):
            if i:
                images = F.avg_pool2d(images, 3, stride=2, padding=1, count_include_pad=False)
            scores.append(net(images))
        return scores
