"""ResNet backbones for re-ID: torchvision's ResNet-18/34/50 and ResNet-50 IBN-a, all with a choosable
last stride. ResNet-50 is the published setting; the smaller ones make CPU runs (the synthetic configs)
fit in minutes."""
from __future__ import annotations

from typing import Callable, NamedTuple

import torch
from torch import nn
from torchvision.models import resnet18, resnet34, resnet50

from configs.registry import Registry

from .recompute import run_stages
from .weights import WeightsError, read_state_dict, resolve_weights


class BackboneSpec(NamedTuple):
    """A backbone by name: torchvision's constructor, IBN-a blocks or not, and where its ImageNet
    weights come from (file name and address: torchvision's and the IBN-Net authors')."""
    resnet: Callable[[], nn.Module]
    ibn: bool
    weights_file: str
    weights_url: str


BACKBONES: Registry[BackboneSpec] = Registry("backbone", "model.backbone")
BACKBONES.add("resnet18", BackboneSpec(resnet18, False, "resnet18-f37072fd.pth",
                                       "https://download.pytorch.org/models/resnet18-f37072fd.pth"))
BACKBONES.add("resnet34", BackboneSpec(resnet34, False, "resnet34-b627a593.pth",
                                       "https://download.pytorch.org/models/resnet34-b627a593.pth"))
BACKBONES.add("resnet50", BackboneSpec(resnet50, False, "resnet50-0676ba61.pth",
                                       "https://download.pytorch.org/models/resnet50-0676ba61.pth"))
BACKBONES.add("resnet50_ibn_a", BackboneSpec(
    resnet50, True, "resnet50_ibn_a-d9d0bb7b.pth",
    "https://github.com/XingangPan/IBN-Net/releases/download/v1.0/resnet50_ibn_a-d9d0bb7b.pth"))


class IBN(nn.Module):
    """Instance norm on the first half of the channels, batch norm on the rest (IBN-Net, 'a' block)."""

    def __init__(self, channels: int, ratio: float = 0.5):
        super().__init__()
        self.half = int(channels * ratio)
        self.IN = nn.InstanceNorm2d(self.half, affine=True)  # names match the public IBN-a weights
        self.BN = nn.BatchNorm2d(channels - self.half)

    def forward(self, x):
        a, b = torch.split(x, [self.half, x.shape[1] - self.half], dim=1)
        return torch.cat([self.IN(a.contiguous()), self.BN(b.contiguous())], dim=1)


class ResNetBackbone(nn.Module):
    """ResNet trunk without pooling and classifier: image → (B, C, H/16, W/16) at last stride 1, with
    C = 2048 for ResNet-50 and 512 for ResNet-18/34 (``out_channels``). `recompute`: the stem's and each
    residual block's inner activations are computed again in backward instead of kept."""

    def __init__(self, name: str = "resnet50", last_stride: int = 1, pretrained=False, recompute: bool = False):
        super().__init__()
        spec = BACKBONES.get(name)
        net = spec.resnet()
        if spec.ibn:
            for layer in (net.layer1, net.layer2, net.layer3):  # IBN-a leaves layer4 with plain BN
                for block in layer:
                    block.bn1 = IBN(block.bn1.num_features)
        block = net.layer4[0]
        strided = block.conv2 if hasattr(block, "conv3") else block.conv1  # bottleneck vs basic block
        strided.stride = (last_stride, last_stride)
        block.downsample[0].stride = (last_stride, last_stride)
        self.out_channels = net.fc.in_features
        self.stem = nn.Sequential(net.conv1, net.bn1, net.relu, net.maxpool)
        self.layer1, self.layer2, self.layer3, self.layer4 = net.layer1, net.layer2, net.layer3, net.layer4
        self.name, self.recompute = name, recompute
        self._load_imagenet(pretrained)

    def forward(self, x):
        return run_stages((self.stem, *self.layer1, *self.layer2, *self.layer3, *self.layer4), x, self.recompute)

    def _load_imagenet(self, pretrained) -> None:
        spec = BACKBONES.get(self.name)
        path = resolve_weights(pretrained, spec.weights_file, spec.weights_url, f"ImageNet {self.name}")
        if path is None:
            return
        # torchvision names the stem conv1/bn1; ours groups them as stem.0/stem.1.
        rename = {"conv1.": "stem.0.", "bn1.": "stem.1."}
        state = {}
        for key, value in read_state_dict(path, self.name).items():
            if key.startswith("fc."):
                continue
            for old, new in rename.items():
                if key.startswith(old):
                    key = new + key[len(old):]
            state[key] = value
        missing, unexpected = self.load_state_dict(state, strict=False)
        if missing or unexpected:
            raise WeightsError(f"{path} is not a {self.name} checkpoint: {len(missing)} missing keys "
                               f"(e.g. {missing[:2]}), {len(unexpected)} unexpected (e.g. {unexpected[:2]})")
