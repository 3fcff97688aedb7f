"""Checkpoint files — written atomically, read with one clear sentence when they are not ours — and
the one way to rebuild a run's network from its checkpoint (`load_network`): evaluation, the visual
tools, export and the DG-Net teacher all load through it, and none of them builds a trainer, an
optimizer or a teacher to do so. HMR's weights, a run's or SPIN's own file, come through
`hmr_weights` (render precomputation and the hmr trainer's start)."""
from __future__ import annotations

import os
import shutil
import tempfile
import warnings
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import Callable, Sequence

import torch
from torch import nn

from configs.errors import UserError
from configs.loader import load_config
from models.weights import WeightsError
from reid_data import dataset_from_config

from .device import resolve_device


# What every GenReID checkpoint holds (a resumable one holds more: see Trainer.state_dict).
REQUIRED_KEYS = ("trainer", "config", "modules")


class CheckpointError(UserError, RuntimeError):
    """A checkpoint file is missing, damaged, not ours or cannot be written; the message says which and why."""


def save_atomic(state: dict, path: str | Path) -> None:
    """Write to a temporary file in the same folder, then rename: a crash or a full disk never leaves
    half a file, and the files already there stay as they were."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=path.name, suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            torch.save(state, f)
        os.replace(tmp, path)
    except BaseException as err:
        Path(tmp).unlink(missing_ok=True)
        if isinstance(err, Exception) and (cause := os_error(err)) is not None:
            raise CheckpointError(f"could not write checkpoint {path} ({cause.strerror}); nothing already in "
                                  f"{path.parent} was changed, so its last.pt still holds the run as last saved") from err
        raise


def os_error(err: BaseException) -> OSError | None:
    """The OSError behind `err`: torch.save reports a failed write (a full disk) as a RuntimeError."""
    while err is not None and not isinstance(err, OSError):
        err = err.__context__
    return err


def link_atomic(target: Path, link: Path) -> None:
    """Make `link` name the same file as `target` (a hard link, so no second write of the file)."""
    tmp = link.with_name(link.name + ".tmp")
    if tmp.exists():
        tmp.unlink()
    try:
        try:
            os.link(target, tmp)
        except OSError:  # file systems without hard links
            shutil.copyfile(target, tmp)
        os.replace(tmp, link)
    except OSError as err:
        tmp.unlink(missing_ok=True)
        raise CheckpointError(f"could not write checkpoint {link} ({err.strerror}); {target} holds the same "
                              f"state: resume from it") from err


def read_checkpoint(path: str | Path) -> dict:
    """The dict a GenReID checkpoint holds; one sentence when the file is missing, damaged or not ours."""
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"checkpoint {path} does not exist")
    try:
        # Checkpoints hold numpy RNG state and the config besides tensors: they are our own files.
        state = torch.load(path, map_location="cpu", weights_only=False)
    except Exception as err:  # torch reports a cut-short or foreign file as any of many errors
        reason = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
        raise CheckpointError(f"checkpoint {path} is truncated or not a checkpoint ({reason}); use another one "
                              f"(the run's checkpoints folder keeps every iter_*.pt)") from None
    if not isinstance(state, dict) or not all(k in state for k in REQUIRED_KEYS):
        raise CheckpointError(f"{path} is not a GenReID checkpoint (one holds {', '.join(REQUIRED_KEYS)}); "
                              f"pass a run's checkpoints/last.pt or iter_*.pt")
    return state


def hmr_weights(path: str | Path) -> dict[str, torch.Tensor]:
    """The HMR regressor's weights in `path`: a `trainer: hmr` run's checkpoint or SPIN's
    model_checkpoint.pt, read once; one sentence when it is neither."""
    from models.hmr import SPIN_SOURCE, spin_state
    path = Path(path)
    if not path.is_file():
        raise WeightsError(f"HMR checkpoint {path} does not exist; {SPIN_SOURCE}, or fix the path")
    try:  # a run's checkpoint holds RNG states and the config besides tensors
        state = torch.load(path, map_location="cpu", weights_only=False)
    except Exception as err:
        raise WeightsError(f"HMR checkpoint {path} could not be read: {err}") from None
    if not isinstance(state, dict):
        raise WeightsError(f"{path} holds no HMR weights (neither a `trainer: hmr` checkpoint nor SPIN's)")
    if all(k in state for k in REQUIRED_KEYS):  # one of ours
        if state["trainer"] != "hmr":
            raise CheckpointError(f"{path} was written by trainer {state['trainer']!r}, not 'hmr'")
        return state["modules"]["model"]
    return spin_state(state)


def _reid_net(cfg, weights: dict) -> nn.Module:
    from models import build_reid_net
    classifier = weights.get("head.classifier.weight")
    with warnings.catch_warnings():  # an unsupervised run's net has no classifier (0 classes)
        warnings.filterwarnings("ignore", "Initializing zero-element tensors")
        net = build_reid_net(cfg.model, 0 if classifier is None else classifier.shape[0])
    net.load_state_dict(weights)
    return net


def _dgnet(cfg, weights: dict) -> nn.Module:
    from models.dgnet import build_dgnet_from_state
    return build_dgnet_from_state(cfg, weights)


def _gcl(cfg, weights: dict) -> nn.Module:
    from models.gcl import build_gcl
    net = build_gcl(cfg)
    net.load_state_dict(weights)
    return net


def _hmr(cfg, weights: dict) -> nn.Module:
    from models.hmr import HMR
    net = HMR(cfg.model.backbone, False, None, cfg.hmr.iterations)  # the state holds the mean start
    net.load_state_dict(weights)
    return net


# trainer kind -> (the name its network is saved under, how to build it from config and weights)
BUILDERS: dict[str, tuple[str, Callable[[object, dict], nn.Module]]] = {
    "teacher": ("model", _reid_net), "cluster_contrast": ("model", _reid_net),
    "dgnet": ("dgnet", _dgnet), "gcl": ("gcl", _gcl), "hmr": ("model", _hmr)}

@dataclass
class LoadedNetwork:
    """A run's network in eval mode on `device`, the kind of run that wrote it, its resolved config
    and (read on first use) its data set."""
    kind: str
    model: nn.Module
    cfg: object
    device: torch.device

    @cached_property
    def dataset(self):
        return dataset_from_config(self.cfg.data)

    def embed(self, images: torch.Tensor) -> torch.Tensor:
        """The re-ID embedding of normalised images, as the run evaluated it."""
        if not hasattr(self.model, "embed"):
            raise CheckpointError(f"a {self.kind} run's network gives no re-ID embedding")
        return self.model.embed(images)


def load_network(path: str | Path, kinds: Sequence[str] | None = None, device: str | torch.device = "cpu",
                 opts: Sequence[str] = (), user: str = "this needs", config=None) -> LoadedNetwork:
    """The network of the run that wrote checkpoint `path`, rebuilt from the config stored with it
    (or from `config`, a file or dict) with `opts` over it, in eval mode; `kinds`: the trainer kinds
    accepted (default: any); `user` begins the sentence that refuses another kind ("the visual
    tools need")."""
    state = read_checkpoint(path)
    kind = state["trainer"]
    if kind not in BUILDERS or (kinds is not None and kind not in kinds):
        wanted = " or ".join(kinds if kinds is not None else sorted(BUILDERS))
        raise CheckpointError(f"checkpoint {path} was written by trainer {kind!r}; {user} one of a {wanted} run")
    name, build = BUILDERS[kind]
    cfg = load_config(config or state["config"], ["model.pretrained=false", *opts])  # the weights come from the file
    device = resolve_device(device) if isinstance(device, str) else device
    return LoadedNetwork(kind, build(cfg, state["modules"][name]).eval().to(device), cfg, device)
