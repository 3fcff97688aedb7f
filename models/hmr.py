"""HMR: a ResNet and an iterative error feedback regressor from a person crop to SMPL pose
(24 joint rotations, 6D), 10 shape coefficients and a weak-perspective camera (s, tx, ty).

    model = HMR("resnet50")
    out = model(hmr_input(images, 224))   # images: normalised (B, 3, H, W) crops
    out.rotmat (B, 24, 3, 3), out.betas (B, 10), out.cam (B, 3)

Layer and buffer names and shapes are those of SPIN's regressor (conv1, bn1, layer1-4, fc1,
drop1, fc2, drop2, decpose, decshape, deccam, init_pose/init_shape/init_cam), so SPIN's public
checkpoint loads as it is (`load_hmr_weights`, below). Conventions (`mesh.cameras`): the regressed global
orientation maps the y-up body into SPIN's camera frame (y down, z forward), and the camera
gives x_ndc = s·(x + tx), y_ndc = s·(y + ty) on the body model's output (no translation), where
NDC [-1, 1]² is the square the crop was padded to (`hmr_input`).
"""
from __future__ import annotations

from pathlib import Path
from typing import NamedTuple

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from .backbones import ResNetBackbone
from .weights import WeightsError

NUM_JOINTS = 24
NPOSE = NUM_JOINTS * 6
NUM_BETAS = 10
NCAM = 3
#: A neutral start when SPIN's mean parameters are not at hand: upright and facing the camera
#: (the half turn about x of `mesh.cameras.Y_UP_TO_CAMERA`), rest pose, mean shape, a body
#: about the height of the crop.
NEUTRAL_CAM = (0.9, 0.0, 0.0)


def rot6d_to_matrix(x: torch.Tensor) -> torch.Tensor:
    """(..., 6) → (..., 3, 3) by Gram-Schmidt. The 6 numbers are the first two columns of the
    matrix read row by row (SPIN's layout: rows of a (3, 2) block)."""
    a = x.reshape(x.shape[:-1] + (3, 2))
    b1 = F.normalize(a[..., 0], dim=-1)
    b2 = F.normalize(a[..., 1] - (b1 * a[..., 1]).sum(-1, keepdim=True) * b1, dim=-1)
    return torch.stack([b1, b2, torch.cross(b1, b2, dim=-1)], dim=-1)


def matrix_to_rot6d(m: torch.Tensor) -> torch.Tensor:
    """(..., 3, 3) → (..., 6), the inverse of `rot6d_to_matrix` on rotations."""
    return m[..., :2].reshape(m.shape[:-2] + (6,))


def neutral_mean_params() -> dict[str, torch.Tensor]:
    pose = torch.eye(3).expand(NUM_JOINTS, 3, 3).clone()
    pose[0] = torch.diag(torch.tensor([1.0, -1.0, -1.0]))
    return {"pose": matrix_to_rot6d(pose).reshape(NPOSE), "shape": torch.zeros(NUM_BETAS),
            "cam": torch.tensor(NEUTRAL_CAM)}


def hmr_input(images: torch.Tensor, size: int) -> torch.Tensor:
    """Normalised (B, 3, H, W) crops → (B, 3, size, size): padded with zeros (the mean colour)
    to a centred square, then resized — the square NDC [-1, 1]² spans (`ndc_to_pixel`)."""
    h, w = images.shape[-2:]
    side = max(h, w)
    left, top = (side - w) // 2, (side - h) // 2
    x = F.pad(images, (left, side - w - left, top, side - h - top))
    if side == size:
        return x
    return F.interpolate(x, size=(size, size), mode="bilinear", align_corners=False,
                         antialias=side > size)


class HMROutput(NamedTuple):
    rotmat: torch.Tensor   # (B, 24, 3, 3): global orientation (camera frame), then 23 joints
    betas: torch.Tensor    # (B, 10)
    cam: torch.Tensor      # (B, 3): s, tx, ty


class HMR(nn.Module):
    """ResNet features (2048 for ResNet-50, 512 for ResNet-18/34) → `iterations` rounds of
    [features, pose, shape, cam] → fc1 1024 → dropout → fc2 1024 → dropout → parameter deltas."""

    def __init__(self, backbone: str = "resnet50", pretrained=False, mean_params=None,
                 iterations: int = 3):
        super().__init__()
        # HMR's trunk is the plain ImageNet ResNet (last stride 2); its parts become this
        # module's own conv1 ... layer4 so that the names are SPIN's.
        trunk = ResNetBackbone(backbone, last_stride=2, pretrained=pretrained)
        self.conv1, self.bn1, self.relu, self.maxpool = trunk.stem
        self.layer1, self.layer2, self.layer3, self.layer4 = (
            trunk.layer1, trunk.layer2, trunk.layer3, trunk.layer4)
        self.iterations = iterations
        self.fc1 = nn.Linear(trunk.out_channels + NPOSE + NUM_BETAS + NCAM, 1024)
        self.drop1 = nn.Dropout()
        self.fc2 = nn.Linear(1024, 1024)
        self.drop2 = nn.Dropout()
        self.decpose = nn.Linear(1024, NPOSE)
        self.decshape = nn.Linear(1024, NUM_BETAS)
        self.deccam = nn.Linear(1024, NCAM)
        for layer in (self.decpose, self.decshape, self.deccam):   # small first corrections
            nn.init.xavier_uniform_(layer.weight, gain=0.01)
        mean = neutral_mean_params() if mean_params is None else mean_params
        self.register_buffer("init_pose", torch.as_tensor(mean["pose"]).float().reshape(1, NPOSE))
        self.register_buffer("init_shape",
                             torch.as_tensor(mean["shape"]).float().reshape(1, NUM_BETAS))
        self.register_buffer("init_cam", torch.as_tensor(mean["cam"]).float().reshape(1, NCAM))

    def features(self, x: torch.Tensor) -> torch.Tensor:
        x = self.maxpool(self.relu(self.bn1(self.conv1(x))))
        x = self.layer4(self.layer3(self.layer2(self.layer1(x))))
        return x.mean(dim=(2, 3))

    def forward(self, x: torch.Tensor) -> HMROutput:
        feat = self.features(x)
        B = feat.shape[0]
        pose, shape, cam = (p.expand(B, -1) for p in (self.init_pose, self.init_shape,
                                                       self.init_cam))
        for _ in range(self.iterations):
            h = self.drop1(self.fc1(torch.cat([feat, pose, shape, cam], dim=1)))
            h = self.drop2(self.fc2(h))
            pose = pose + self.decpose(h)
            shape = shape + self.decshape(h)
            cam = cam + self.deccam(h)
        return HMROutput(rot6d_to_matrix(pose.reshape(B, NUM_JOINTS, 6)), shape, cam)


# --- SPIN's files ---
# SPIN's files for the HMR regressor: its public checkpoint and its mean SMPL parameters, or
# the checkpoint of a `trainer: hmr` run.
#
# SPIN ships both through its `fetch_data.sh` as ``data/model_checkpoint.pt`` (a dict whose
# ``model`` entry is the regressor's state dict) and ``data/smpl_mean_params.npz`` (``pose``
# (144,) 6D, ``shape`` (10,), ``cam`` (3,)). Its meshes need a real SMPL model file as well
# (`mesh.body_model.load_body_model`).
SPIN_SOURCE = "SPIN's fetch_data.sh (github.com/nkolot/SPIN) downloads it into SPIN's data/ folder"
MEAN_SHAPES = {"pose": (NPOSE,), "shape": (NUM_BETAS,), "cam": (NCAM,)}


def _existing(path, what: str) -> Path:
    path = Path(path).expanduser()
    if not path.is_file():
        raise WeightsError(f"{what} {path} does not exist; {SPIN_SOURCE}, or fix the path")
    return path


def read_mean_params(path) -> dict[str, torch.Tensor]:
    """SPIN's ``smpl_mean_params.npz`` as float tensors pose (144,), shape (10,), cam (3,)."""
    path = _existing(path, "SMPL mean parameter file")
    with np.load(path) as data:
        bad = [k for k, s in MEAN_SHAPES.items() if k not in data or data[k].shape != s]
        if bad:
            raise WeightsError(f"{path} is not SPIN's smpl_mean_params.npz: it lacks {bad} of "
                               f"shapes {[MEAN_SHAPES[k] for k in bad]}")
        return {k: torch.from_numpy(data[k].astype(np.float32)) for k in MEAN_SHAPES}


def spin_state(checkpoint: dict) -> dict[str, torch.Tensor]:
    """The regressor's state dict in what SPIN's ``model_checkpoint.pt`` holds (its weights under
    "model", or the bare state dict; "module." prefixes of DataParallel dropped)."""
    if isinstance(checkpoint.get("model"), dict):
        checkpoint = checkpoint["model"]
    return {k.removeprefix("module."): v for k, v in checkpoint.items() if torch.is_tensor(v)}


def load_hmr_weights(model: HMR, state: dict[str, torch.Tensor], source) -> HMR:
    """Load a regressor state dict (`source`: the file it came from, for messages) into ``model``;
    names and shapes must match."""
    path = source
    own = model.state_dict()
    missing = [k for k in own if k not in state]
    unexpected = [k for k in state if k not in own]
    wrong = [f"{k} {tuple(state[k].shape)} vs {tuple(v.shape)}" for k, v in own.items()
             if k in state and state[k].shape != v.shape]
    # Checkpoints from torch < 0.4.1 have no BatchNorm counters; nothing else may be absent.
    missing = [k for k in missing if not k.endswith("num_batches_tracked")]
    if missing or unexpected or wrong:
        raise WeightsError(
            f"{path} does not fit an HMR regressor with "
            f"{model.fc1.in_features - NPOSE - NUM_BETAS - NCAM} backbone features: "
            f"{len(missing)} missing keys (e.g. {missing[:2]}), {len(unexpected)} "
            f"unexpected (e.g. {unexpected[:2]}), {len(wrong)} of another shape "
            f"(e.g. {wrong[:2]}); SPIN's checkpoint needs model.backbone resnet50")
    model.load_state_dict(state, strict=False)
    return model


def build_hmr(backbone: str, pretrained, mean_params: str | None, iterations: int,
              weights: dict[str, torch.Tensor] | None = None, source=None) -> HMR:
    """The regressor: started from SPIN's mean parameters when given, with `weights` (a state dict
    read from the file `source`: `runtime.checkpoint.hmr_weights`) when given."""
    mean = read_mean_params(mean_params) if mean_params else None
    model = HMR(backbone, pretrained, mean, iterations)
    return load_hmr_weights(model, weights, source) if weights is not None else model
