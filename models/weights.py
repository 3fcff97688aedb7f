"""Finding pretrained weight files: the user's own path, the torch cache, or a download.

Offline machines are normal for us, so a weight that cannot be had is one clear sentence
that names the file and the place to put it.
"""
from __future__ import annotations

import os
from pathlib import Path

import torch

from configs.errors import UserError


class WeightsError(UserError, RuntimeError):
    """A weight file is missing, unreachable or does not fit the model."""


def cache_dir() -> Path:
    return Path(torch.hub.get_dir()) / "checkpoints"


def resolve_weights(spec, filename: str, url: str, what: str) -> Path | None:
    """Path of the weights asked for by `spec`: False → None, True → cache/download, str → that file."""
    if spec is False or spec is None:
        return None
    if spec is not True:
        path = Path(os.path.expanduser(str(spec)))
        if not path.is_file():
            raise WeightsError(f"{what} weight file {path} does not exist; fix the path or set it to false")
        return path
    path = cache_dir() / filename
    if path.is_file():
        return path
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        torch.hub.download_url_to_file(url, str(path), progress=False)
    except Exception as e:  # any network failure means the same thing to the user
        raise WeightsError(
            f"{what} weights {filename} are not cached and could not be downloaded ({type(e).__name__}); "
            f"put {filename} (from {url}) in {path.parent}, or set the option to the file's path"
        ) from None
    return path


def read_state_dict(path: Path, what: str) -> dict:
    """Load a checkpoint file and unwrap the usual containers (`state_dict`, `model`, `module.`)."""
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as e:
        raise WeightsError(f"{what} weight file {path} could not be read: {e}") from None
    for key in ("state_dict", "model"):
        if isinstance(state, dict) and isinstance(state.get(key), dict):
            state = state[key]
    return {k.removeprefix("module."): v for k, v in state.items() if isinstance(v, torch.Tensor)}
