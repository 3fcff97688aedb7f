"""Checkpoint files: written atomically, holding everything a resumed run needs."""
from __future__ import annotations

import os
import random
import shutil
import tempfile
from pathlib import Path

import numpy as np
import torch


# What every GenReID checkpoint holds (a resumable one holds more: see Trainer.state_dict).
REQUIRED_KEYS = ("trainer", "config", "modules")


class CheckpointError(RuntimeError):
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


def load(path: str | Path) -> dict:
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
