"""Identity heads on a pooled feature: returns (logits, retrieval embedding)."""
from __future__ import annotations

from torch import nn


def _init_linear(layer: nn.Linear, std: float | None = None) -> None:
    if std is None:
        nn.init.kaiming_normal_(layer.weight, a=0, mode="fan_out")
    else:
        nn.init.normal_(layer.weight, std=std)
    if layer.bias is not None:
        nn.init.zeros_(layer.bias)


class IdHead(nn.Module):
    """Linear → BN → dropout → Linear (the re-ID baseline DG-Net uses as teacher).

    The embedding for retrieval is the BN output, before dropout.
    """

    def __init__(self, in_dim: int, num_classes: int, embed_dim: int = 512, dropout: float = 0.5):
        super().__init__()
        self.embed = nn.Linear(in_dim, embed_dim)
        self.bn = nn.BatchNorm1d(embed_dim)
        self.dropout = nn.Dropout(dropout)
        self.classifier = nn.Linear(embed_dim, num_classes)
        self.embed_dim = embed_dim
        _init_linear(self.embed)
        nn.init.normal_(self.bn.weight, 1.0, 0.02)
        nn.init.zeros_(self.bn.bias)
        _init_linear(self.classifier, std=0.001)

    def forward(self, x):
        emb = self.bn(self.embed(x))
        return self.classifier(self.dropout(emb)), emb


class BNNeck(nn.Module):
    """BN (no bias) → bias-free Linear (Luo et al., 'Bag of Tricks'); retrieval on the BN output."""

    def __init__(self, in_dim: int, num_classes: int):
        super().__init__()
        self.bn = nn.BatchNorm1d(in_dim)
        self.bn.bias.requires_grad_(False)
        self.classifier = nn.Linear(in_dim, num_classes, bias=False)
        self.embed_dim = in_dim
        nn.init.ones_(self.bn.weight)
        nn.init.zeros_(self.bn.bias)
        _init_linear(self.classifier, std=0.001)

    def forward(self, x):
        emb = self.bn(x)
        return self.classifier(emb), emb
