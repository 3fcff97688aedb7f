"""DG-Net (Zheng et al., "Joint Discriminative and Generative Learning for Person Re-identification",
CVPR 2019): appearance encoder, structure encoder, AdaIN decoder and multi-scale discriminator.

Contract (what the trainer, the visual tools and the generation metrics rely on):

- ``build_dgnet(cfg, num_classes) -> DGNet`` builds the networks from a resolved config
  (``configs.loader.Config``: ``model`` for the appearance encoder's backbone and heads, ``gen``,
  ``dis`` and ``dgnet.stripes`` / ``dgnet.fine_dropout``).
- ``build_dgnet_from_state(cfg, state_dict) -> DGNet`` does the same with the class count read from
  ``state_dict`` and loads it; a ``dgnet`` trainer checkpoint holds that state dict at
  ``state["modules"]["dgnet"]`` and its config at ``state["config"]``.
- ``DGNet`` is an ``nn.Module`` with submodules ``appearance``, ``structure``, ``decoder`` and
  ``discriminator``, and methods
    ``encode_appearance(x)``  → ``AppearanceOutput`` whose ``.code`` is (B, C, S): C = the backbone's
                               width (2048 for ResNet-50, 512 for ResNet-18/34), S = stripes;
    ``encode_structure(x)``   → (B, 128, H/4, W/4) for gen.dim 16 (8·gen.dim channels; H/2, W/2 with
                               gen.downsample 1); converts to grey;
    ``decode(structure, code, index=None)`` → images (B, 3, H, W); with ``index`` item i draws
                               ``structure[index[i]]`` (one map with several codes shares its first convolution);
    ``swap(structure_images, appearance_images)`` = decode(encode_structure(s), encode_appearance(a).code).
  Images in and out are in the normalised space of ``reid_data.normalize``; ``reid_data.denormalize``
  maps them to [0, 1]. Call ``.eval()`` first for inference (BN statistics, no dropout).
"""
from __future__ import annotations

from collections.abc import Mapping

import torch
from torch import nn

from .appearance import AppearanceEncoder, AppearanceOutput
from ..generative import Decoder, MultiScaleDiscriminator, StructureEncoder, build_generator, to_grey


class DGNet(nn.Module):
    def __init__(self, appearance: AppearanceEncoder, structure: StructureEncoder, decoder: Decoder,
                 discriminator: MultiScaleDiscriminator):
        super().__init__()
        self.appearance, self.structure = appearance, structure
        self.decoder, self.discriminator = decoder, discriminator

    def encode_appearance(self, images: torch.Tensor) -> AppearanceOutput:
        return self.appearance(images)

    def embed(self, images: torch.Tensor) -> torch.Tensor:
        """The re-ID embedding DG-Net is evaluated by: its appearance encoder's."""
        return self.appearance(images).embedding

    def encode_structure(self, images: torch.Tensor) -> torch.Tensor:
        return self.structure(images)

    def decode(self, structure: torch.Tensor, code: torch.Tensor, index: torch.Tensor | None = None) -> torch.Tensor:
        return self.decoder(structure, code, index)

    def swap(self, structure_images: torch.Tensor, appearance_images: torch.Tensor) -> torch.Tensor:
        """Each structure image re-drawn with the appearance of the appearance image at its index."""
        return self.decode(self.encode_structure(structure_images), self.encode_appearance(appearance_images).code)


def build_dgnet(cfg, num_classes: int, pretrained=None) -> DGNet:
    """`pretrained` overrides cfg.model.pretrained (the ImageNet weights of the appearance encoder)."""
    m, gen, dis = cfg.model, cfg.gen, cfg.dis
    pretrained = m.pretrained if pretrained is None else pretrained
    appearance = AppearanceEncoder(num_classes, m.backbone, m.last_stride, pretrained, cfg.dgnet.stripes,
                                   m.embed_dim, m.dropout, cfg.dgnet.fine_dropout, m.recompute)
    structure, decoder = build_generator(gen, appearance.code_dim, cfg.dgnet.stripes)
    return DGNet(appearance, structure, decoder, MultiScaleDiscriminator(dis.dim, dis.n_layer, dis.n_res,
                                                                         dis.num_scales))


def build_dgnet_from_state(cfg, state_dict: Mapping[str, torch.Tensor]) -> DGNet:
    num_classes = state_dict["appearance.head.classifier.weight"].shape[0]
    net = build_dgnet(cfg, num_classes, pretrained=False)  # the state replaces every weight: no ImageNet file
    net.load_state_dict(state_dict)
    return net


__all__ = ["DGNet", "AppearanceEncoder", "AppearanceOutput", "StructureEncoder", "Decoder",
           "MultiScaleDiscriminator", "build_dgnet", "build_dgnet_from_state", "to_grey"]
