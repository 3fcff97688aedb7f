"""What a clustering leaves for its epoch: pseudo labels and the memory built from them.

`ClusterRound` is checkpointed with the run (the shared loop's `stateful`), so a run resumed
in the middle of an epoch trains on the same labels and memory instead of clustering a model
that has moved on. Its memory changes shape every epoch, so loading rebuilds it from the
stored tensors rather than filling an existing one.
"""
from __future__ import annotations

from typing import Callable, NamedTuple

import torch

from configs.registry import Registry

from .memories import CentralFeatureMemory, ClusterMemory, HybridMemory, InstanceHybridMemory



class MemoryKind(NamedTuple):
    """A `memory.kind`: the memory its clusters fill, and the constructor arguments it adds to the
    shared ones (temperature, momentum, label smoothing) from the `memory` section and data.instances."""
    memory: type
    options: Callable[[object, int], dict]


MEMORIES: Registry[MemoryKind] = Registry("memory", "memory.kind")
MEMORIES.add("cm", MemoryKind(ClusterMemory, lambda memory_cfg, instances: {"mode": "mean"}))
MEMORIES.add("cm_hard", MemoryKind(ClusterMemory, lambda memory_cfg, instances: {"mode": "hard"}))
MEMORIES.add("cfl", MemoryKind(ClusterMemory, lambda memory_cfg, instances: {"mode": "mean"}))  # CFL's clusters
MEMORIES.add("hybrid", MemoryKind(HybridMemory, lambda memory_cfg, instances: {"hard_weight": memory_cfg.hard_weight}))
MEMORIES.add("hybrid_instance", MemoryKind(  # one slot per PK instance, as HHCL sizes it
    InstanceHybridMemory, lambda memory_cfg, instances: {"hard_weight": memory_cfg.hard_weight,
                                                          "num_instances": instances}))


def memory_options(memory_cfg, instances: int) -> dict:
    """Constructor arguments of the configured memory (`memory` config section)."""
    shared = {"temperature": memory_cfg.temperature, "momentum": memory_cfg.momentum,
              "label_smoothing": memory_cfg.label_smoothing}
    return {**shared, **MEMORIES.get(memory_cfg.kind).options(memory_cfg, instances)}


def build_memory(kind: str, features: torch.Tensor, labels: torch.Tensor, options: dict,
                 generator: torch.Generator):
    """A fresh memory of kind `kind` over the clusters `labels` (-1: not clustered) of `features`;
    `generator` draws what the kind draws at random (the instance slots)."""
    return MEMORIES.get(kind).memory.from_clusters(features, labels, generator=generator, **options)


def restore_memory(kind: str, state: dict, options: dict):
    """The memory whose `state_dict()` is `state`."""
    memory = MEMORIES.get(kind).memory.from_state(state, **options)
    memory.load_state_dict(state)
    return memory


class ClusterRound:
    """The current epoch's clustering, plus what outlives it (CFL's central features, the
    best held-out score)."""

    def __init__(self, kind: str, options: dict, pid_gains: dict, device: torch.device):
        self.kind, self.options, self.pid_gains, self.device = kind, options, pid_gains, device
        self.epoch = -1
        self.labels: torch.Tensor | None = None  # (N,) pseudo label of each training image, -1: none
        self.memory = None
        self.central: dict[str, CentralFeatureMemory] = {}  # cfl: "image" (N, D), "patch" (N, P, D)
        self.best = float("-inf")

    def start(self, epoch: int, labels: torch.Tensor, features: torch.Tensor,
              generator: torch.Generator) -> None:
        self.epoch = epoch
        self.labels = labels.to(self.device)
        self.memory = build_memory(self.kind, features, labels, self.options, generator).to(self.device)

    def init_central(self, name: str, features: torch.Tensor) -> None:
        self.central[name] = CentralFeatureMemory(features, **self.pid_gains).to(self.device)

    def state_dict(self) -> dict:
        return {"epoch": self.epoch, "best": self.best,
                "labels": None if self.labels is None else self.labels.cpu(),
                "memory": None if self.memory is None else self.memory.state_dict(),
                "central": {k: m.state_dict() for k, m in self.central.items()}}

    def load_state_dict(self, state: dict) -> None:
        self.epoch, self.best = state["epoch"], state["best"]
        self.labels = None if state["labels"] is None else state["labels"].to(self.device)
        self.memory = None if state["memory"] is None else \
            restore_memory(self.kind, state["memory"], self.options).to(self.device)
        self.central = {}
        for name, central in state["central"].items():
            self.init_central(name, central["central"])
            self.central[name].load_state_dict(central)
