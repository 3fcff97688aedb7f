"""Appearance encoder: a re-ID ResNet whose stripe-pooled feature map is the appearance code."""
from __future__ import annotations

from typing import NamedTuple

import torch
from torch import nn
import torch.nn.functional as F

from ..backbones import ResNetBackbone
from ..heads import IdHead


class AppearanceOutput(NamedTuple):
    code: torch.Tensor         # (B, C, S) max over each of S horizontal stripes
    logits: torch.Tensor       # (B, classes) primary identity head
    fine_logits: torch.Tensor  # (B, classes) fine-grained head
    embedding: torch.Tensor    # (B, 2·embed_dim) both heads' embeddings, each L2-normalised: for retrieval


class AppearanceEncoder(nn.Module):
    """ResNet (last stride 1) → (B, C, H/16, W/16) map; code = max-pool to S stripes; the global
    max-pooled feature feeds two identity heads: primary (dropout 0.5) and fine-grained (dropout 0.75),
    each Linear C→embed_dim + BN + dropout + Linear→classes.
    """

    def __init__(self, num_classes: int, backbone: str = "resnet50", last_stride: int = 1, pretrained=False,
                 stripes: int = 4, embed_dim: int = 512, dropout: float = 0.5, fine_dropout: float = 0.75,
                 recompute: bool = False):
        super().__init__()
        self.backbone = ResNetBackbone(backbone, last_stride, pretrained, recompute)
        self.stripes = stripes
        self.code_dim = self.backbone.out_channels
        self.head = IdHead(self.code_dim, num_classes, embed_dim, dropout)
        self.fine_head = IdHead(self.code_dim, num_classes, embed_dim, fine_dropout)

    def forward(self, images: torch.Tensor, dropout: bool = True, backbone_map: bool = False) -> AppearanceOutput:
        """`dropout=False` leaves the heads' dropout out while BN keeps its mode (the frozen-encoder
        terms run this way); `backbone_map=True`: `images` is the backbone's map of the images already."""
        fmap = images if backbone_map else self.backbone(images)
        code = self.stripe_code(fmap)
        feature = F.adaptive_max_pool2d(fmap, 1).flatten(1)
        if dropout:
            (logits, emb), (fine, fine_emb) = self.head(feature), self.fine_head(feature)
        else:
            (logits, emb), (fine, fine_emb) = _no_dropout(self.head, feature), _no_dropout(self.fine_head, feature)
        embedding = torch.cat([F.normalize(emb.float(), dim=1), F.normalize(fine_emb.float(), dim=1)], dim=1)
        return AppearanceOutput(code, logits, fine, embedding)

    def stripe_code(self, fmap: torch.Tensor) -> torch.Tensor:
        """The appearance code (B, C, S) of a backbone map."""
        return F.adaptive_max_pool2d(fmap, (self.stripes, 1)).squeeze(3)

    def new_parameters(self):
        """The heads (trained at 10× the backbone's learning rate)."""
        return [*self.head.parameters(), *self.fine_head.parameters()]


def _no_dropout(head: IdHead, feature: torch.Tensor):
    emb = head.bn(head.embed(feature))
    return head.classifier(emb), emb
