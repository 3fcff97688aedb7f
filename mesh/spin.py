"""SPIN's files for the HMR regressor: its public checkpoint and its mean SMPL parameters, or
the checkpoint of a `trainer: hmr` run.

SPIN ships both through its `fetch_data.sh` as ``data/model_checkpoint.pt`` (a dict whose
``model`` entry is the regressor's state dict) and ``data/smpl_mean_params.npz`` (``pose``
(144,) 6D, ``shape`` (10,), ``cam`` (3,)). Its meshes need a real SMPL model file as well
(`mesh.body_model.load_body_model`).
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from models.weights import WeightsError

from .hmr import HMR, NCAM, NPOSE, NUM_BETAS

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


def read_hmr_state(path) -> dict[str, torch.Tensor]:
    """The regressor's state dict from SPIN's checkpoint or a `trainer: hmr` checkpoint."""
    path = _existing(path, "HMR checkpoint")
    try:    # a run's checkpoint holds RNG states and the config besides tensors
        state = torch.load(path, map_location="cpu", weights_only=False)
    except Exception as e:
        raise WeightsError(f"HMR checkpoint {path} could not be read: {e}") from None
    if isinstance(state, dict) and state.get("trainer") == "hmr":
        state = state["modules"]["model"]
    elif isinstance(state, dict) and isinstance(state.get("model"), dict):
        state = state["model"]
    return {k.removeprefix("module."): v for k, v in state.items() if torch.is_tensor(v)}


def load_hmr_weights(model: HMR, path) -> HMR:
    """Load SPIN's checkpoint (or an hmr run's) into ``model``; names and shapes must match."""
    state = read_hmr_state(path)
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
