"""Checkpoint files: written atomically, holding everything a resumed run needs."""
from __future__ import annotations

import os
import random
import shutil
import tempfile
from pathlib import Path

import numpy as np
import torch


class CheckpointError(RuntimeError):
    """A checkpoint file is missing or does not belong to this run's method."""


def save_atomic(state: dict, path: str | Path) -> None:
    """Write to a temporary file in the same folder, then rename: a crash never leaves half a file."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=path.name, suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            torch.save(state, f)
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


def link_atomic(target: Path, link: Path) -> None:
    """Make `link` name the same file as `target` (a hard link, so no second write of the file)."""
    tmp = link.with_name(link.name + ".tmp")
    if tmp.exists():
        tmp.unlink()
    try:
        os.link(target, tmp)
    except OSError:  # file systems without hard links
        shutil.copyfile(target, tmp)
    os.replace(tmp, link)


def load(path: str | Path) -> dict:
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"checkpoint {path} does not exist")
    # Checkpoints hold numpy RNG state and the config besides tensors: they are our own files.
    return torch.load(path, map_location="cpu", weights_only=False)


def rng_state() -> dict:
    state = {"torch": torch.get_rng_state(), "numpy": np.random.get_state(), "python": random.getstate()}
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def set_rng_state(state: dict) -> None:
    torch.set_rng_state(state["torch"])
    np.random.set_state(state["numpy"])
    random.setstate(state["python"])
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])
