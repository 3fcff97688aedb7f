"""A re-ID network: backbone → global pooling → identity head."""
from __future__ import annotations

from typing import NamedTuple

import torch
from torch import nn

from .backbones import ResNetBackbone
from .heads import BNNeck, IdHead
from .pooling import build_pooling


class ReIDOutput(NamedTuple):
    logits: torch.Tensor     # (B, classes) identity scores
    feature: torch.Tensor    # (B, C) pooled backbone feature (used by the triplet loss)
    embedding: torch.Tensor  # (B, D) retrieval embedding


class ReIDNet(nn.Module):
    def __init__(self, num_classes: int, backbone: str = "resnet50", last_stride: int = 1,
                 pooling: str = "avg", gem_p: float = 3.0, neck: str = "id", embed_dim: int = 512,
                 dropout: float = 0.5, pretrained=False, recompute: bool = False):
        super().__init__()
        self.backbone = ResNetBackbone(backbone, last_stride, pretrained, recompute)
        self.pool = build_pooling(pooling, gem_p)
        dim = self.backbone.out_channels
        if neck == "id":
            self.head = IdHead(dim, num_classes, embed_dim, dropout)
        elif neck == "bnneck":
            self.head = BNNeck(dim, num_classes)
        else:
            raise ValueError(f"unknown neck {neck!r}; choose id or bnneck")

    def forward(self, x) -> ReIDOutput:
        feature = self.pool(self.backbone(x))
        logits, embedding = self.head(feature)
        return ReIDOutput(logits, feature, embedding)

    def embed(self, x) -> torch.Tensor:
        """The re-ID embedding the network is evaluated by."""
        return self(x).embedding

    def new_parameters(self):
        """Parameters that start from scratch (they get the full learning rate)."""
        return [p for n, p in self.named_parameters() if not n.startswith("backbone.")]


def build_reid_net(model_cfg, num_classes: int) -> ReIDNet:
    return ReIDNet(num_classes, backbone=model_cfg.backbone, last_stride=model_cfg.last_stride,
                   pooling=model_cfg.pooling, gem_p=model_cfg.gem_p, neck=model_cfg.neck,
                   embed_dim=model_cfg.embed_dim, dropout=model_cfg.dropout,
                   pretrained=model_cfg.pretrained, recompute=model_cfg.recompute)
