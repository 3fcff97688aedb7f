"""Where a command runs: the device a config names, the process's place under torchrun, and the
half type mixed precision uses there."""
from __future__ import annotations

import os
import warnings

import torch

from configs.loader import ConfigError


def env_world() -> tuple[int, int, int]:
    """(rank, local rank, world size) as torchrun sets them; (0, 0, 1) in a plain process."""
    return int(os.environ.get("RANK", 0)), int(os.environ.get("LOCAL_RANK", 0)), int(os.environ.get("WORLD_SIZE", 1))


def resolve_device(name: str) -> torch.device:
    """`auto` and `cuda` mean this process's GPU: its local rank's under torchrun."""
    if name == "auto":
        name = "cuda" if torch.cuda.is_available() else "cpu"
    device = torch.device(name)
    if device.type == "cuda" and not torch.cuda.is_available():
        raise ConfigError(f"run.device is {name!r} but no CUDA device is available; use cpu or auto")
    if device.type == "cuda" and device.index is None:
        device = torch.device("cuda", env_world()[1])
    return device


def amp_dtype(device: torch.device) -> torch.dtype | None:
    """The half type mixed precision uses here, or None (with a warning) where it would be slow.

    float16 on CUDA (with loss scaling); bfloat16 on a CPU with native bfloat16 (AVX-512 BF16 or
    AMX). On other CPUs bfloat16 is emulated and measured ~25x slower than float32, so the run
    stays in float32.
    """
    if device.type == "cuda":
        return torch.float16
    if torch.ops.mkldnn._is_mkldnn_bf16_supported():
        return torch.bfloat16
    warnings.warn(f"run.amp is on, but this CPU ({torch.backends.cpu.get_cpu_capability()}) has no native "
                  f"bfloat16, where it runs ~25x slower than float32: training in float32", stacklevel=2)
    return None


def autocast(device: torch.device, dtype: torch.dtype | None):
    """Mixed precision in `dtype` on `device`; None: a block that changes nothing."""
    return torch.autocast(device.type, dtype=dtype, enabled=dtype is not None)
