"""Data-parallel training over processes started by `torchrun` (gloo on CPU, NCCL on CUDA).

Every process holds the whole model and trains on its own shard of the batch stream (see
`reid_data.samplers.BatchStream`); `average_gradients` makes their steps identical. Gradients are
averaged explicitly before each optimizer step instead of through DistributedDataParallel's
backward hooks: a GAN iteration has two optimizer steps over overlapping graphs, a gradient
penalty (double backward) and frozen-parameter calls, which those hooks do not follow.
"""
from __future__ import annotations

import torch
import torch.distributed as dist

from runtime.device import env_world


def init(device: torch.device) -> bool:
    """Join the process group torchrun describes; True when this call created it."""
    if env_world()[2] == 1 or dist.is_initialized():
        return False
    dist.init_process_group("nccl" if device.type == "cuda" else "gloo")
    return True


def active() -> bool:
    return dist.is_available() and dist.is_initialized() and dist.get_world_size() > 1


def rank() -> int:
    return dist.get_rank() if active() else 0


def world_size() -> int:
    return dist.get_world_size() if active() else 1


def broadcast_modules(modules) -> None:
    """Every process starts from rank 0's parameters and buffers."""
    if not active():
        return
    with torch.no_grad():
        for module in modules:
            for tensor in [*module.parameters(), *module.buffers()]:
                dist.broadcast(tensor.data, src=0)


def average_gradients(params) -> None:
    """All-reduce the gradients of `params` (missing ones count as zero) in one flat buffer."""
    if not active():
        return
    params = [p for p in params if p.requires_grad]
    for p in params:
        if p.grad is None:  # keeps every process's buffer the same length
            p.grad = torch.zeros_like(p)
    flat = torch.cat([p.grad.reshape(-1) for p in params])
    dist.all_reduce(flat)
    flat /= dist.get_world_size()
    for p, g in zip(params, flat.split([p.numel() for p in params])):
        p.grad.copy_(g.view_as(p))


def all_finite(value: torch.Tensor) -> bool:
    """Whether `value` is finite in every process (so that all stop together, none waits forever)."""
    ok = torch.isfinite(value.detach()).all().float().reshape(1)
    if active():
        dist.all_reduce(ok, op=dist.ReduceOp.MIN)
    return bool(ok.item())


def any_process(flag: bool, device: torch.device) -> bool:
    """Whether `flag` is true in some process (so that all stop at the same iteration)."""
    if not active():
        return flag
    value = torch.tensor([float(flag)], device=device)
    dist.all_reduce(value, op=dist.ReduceOp.MAX)
    return bool(value.item())


def all_gather_rows(tensor: torch.Tensor) -> torch.Tensor:
    """Every process's rows, in rank order (rows may differ in number); the tensor itself alone."""
    if not active():
        return tensor
    counts = [torch.zeros(1, dtype=torch.long, device=tensor.device) for _ in range(world_size())]
    dist.all_gather(counts, torch.tensor([len(tensor)], device=tensor.device))
    most = int(max(c.item() for c in counts))
    padded = tensor.new_zeros((most,) + tensor.shape[1:])  # all_gather needs equal shapes
    padded[:len(tensor)] = tensor
    parts = [torch.empty_like(padded) for _ in counts]
    dist.all_gather(parts, padded)
    return torch.cat([p[:int(c.item())] for p, c in zip(parts, counts)])
