"""GCL (Chen et al., "Joint Generative and Contrastive Learning for Unsupervised Person
Re-identification", CVPR 2021): an identity encoder and DG-Net's generator, driven by grey mesh
renders instead of grey photos.

Contract (what the trainer and the visual tools rely on):

- ``build_gcl(cfg) -> GCLNet`` from a resolved config: ``model`` for the identity encoder's
  re-ID network (as the Cluster Contrast run it starts from), ``gcl.stripes``, ``gen``, ``dis``.
- ``GCLNet`` has submodules ``identity``, ``structure``, ``decoder``, ``discriminator`` and
    ``encode_identity(images)``  → ``IdentityOutput``: ``.code`` (B, C, S) for the decoder,
                                   ``.embedding`` (B, D) for retrieval and the memory;
    ``encode_structure(renders)`` → (B, 8·gen.dim, H/4, W/4) from grey renders (B, 1, H, W) (H/2, W/2 with gen.downsample 1);
    ``decode(structure, code)``   → images (B, 3, H, W);
    ``view(images, renders)``     = decode(encode_structure(renders), encode_identity(images).code).
  Images are in ``reid_data.normalize``'s space; renders in [-1, 1] (``normalize_render``).
"""
from __future__ import annotations

import warnings
from typing import NamedTuple

import torch
import torch.nn.functional as F
from torch import nn

from .generative import Decoder, MultiScaleDiscriminator, StructureEncoder, build_generator
from .reid_net import ReIDNet, build_reid_net


def normalize_render(renders: torch.Tensor) -> torch.Tensor:
    """uint8 grey renders (B, 1, H, W) → [-1, 1], GCL's scaling of its structure input."""
    return renders.float() / 127.5 - 1.0


class IdentityOutput(NamedTuple):
    code: torch.Tensor       # (B, C, S) the feature map averaged over S horizontal stripes
    embedding: torch.Tensor  # (B, D) the re-ID network's retrieval embedding (not normalised)


class IdentityEncoder(nn.Module):
    """A re-ID network (a Cluster Contrast run's, neck included) whose backbone map also gives
    the appearance code: one average-pooled C-d vector per stripe (4 × 2048 for ResNet-50).

    The retrieval embedding is the network's own (2048-d BNNeck for Cluster Contrast's published
    setup, 512-d with ``model.neck: id``): keeping it is what lets stage 3 start exactly where
    the Cluster Contrast encoder ended."""

    def __init__(self, reid: ReIDNet, stripes: int = 4):
        super().__init__()
        self.reid, self.stripes = reid, stripes
        self.code_dim = reid.backbone.out_channels

    def forward(self, images: torch.Tensor) -> IdentityOutput:
        fmap = self.reid.backbone(images)
        code = F.adaptive_avg_pool2d(fmap, (self.stripes, 1)).squeeze(3)
        embedding = self.reid.head(self.reid.pool(fmap))[1]
        return IdentityOutput(code, embedding)


class GCLNet(nn.Module):
    def __init__(self, identity: IdentityEncoder, structure: StructureEncoder, decoder: Decoder,
                 discriminator: MultiScaleDiscriminator):
        super().__init__()
        self.identity, self.structure = identity, structure
        self.decoder, self.discriminator = decoder, discriminator

    def encode_identity(self, images: torch.Tensor) -> IdentityOutput:
        return self.identity(images)

    def embed(self, images: torch.Tensor) -> torch.Tensor:
        """The re-ID embedding GCL is evaluated by: its identity encoder's."""
        return self.identity(images).embedding

    def encode_structure(self, renders: torch.Tensor) -> torch.Tensor:
        return self.structure(renders)

    def decode(self, structure: torch.Tensor, code: torch.Tensor) -> torch.Tensor:
        return self.decoder(structure, code)

    def view(self, images: torch.Tensor, renders: torch.Tensor) -> torch.Tensor:
        """Each image's person drawn in the pose and view of the render at its index."""
        return self.decode(self.encode_structure(renders), self.encode_identity(images).code)


def build_gcl(cfg) -> GCLNet:
    gen, dis = cfg.gen, cfg.dis
    with warnings.catch_warnings():  # no classifier (0 classes): the memory classifies
        warnings.filterwarnings("ignore", "Initializing zero-element tensors")
        reid = build_reid_net(cfg.model, 0)
    identity = IdentityEncoder(reid, cfg.gcl.stripes)
    structure, decoder = build_generator(gen, identity.code_dim, cfg.gcl.stripes)
    return GCLNet(identity, structure, decoder,
                  MultiScaleDiscriminator(dis.dim, dis.n_layer, dis.n_res, dis.num_scales))
