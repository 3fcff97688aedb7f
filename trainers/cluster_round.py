"""What a clustering leaves for its epoch: pseudo labels and the memory built from them.

`ClusterRound` is checkpointed with the run (the shared loop's `stateful`), so a run resumed
in the middle of an epoch trains on the same labels and memory instead of clustering a model
that has moved on. Its memory changes shape every epoch, so loading rebuilds it from the
stored tensors rather than filling an existing one.
"""
from __future__ import annotations

import torch

from .memories import CentralFeatureMemory, ClusterMemory, HybridMemory, InstanceHybridMemory

MEMORY_KINDS = ("cm", "cm_hard", "hybrid", "hybrid_instance", "cfl")


def memory_options(memory_cfg, instances: int) -> dict:
    """Constructor arguments of the configured memory (`memory` config section)."""
    kind = memory_cfg.kind
    if kind not in MEMORY_KINDS:
        raise ValueError(f"unknown memory.kind {kind!r}; choose one of {', '.join(MEMORY_KINDS)}")
    options = {"temperature": memory_cfg.temperature, "momentum": memory_cfg.momentum,
               "label_smoothing": memory_cfg.label_smoothing}
    if kind in ("cm", "cm_hard", "cfl"):  # CFL's clusters use Cluster Contrast's memory
        options["mode"] = "hard" if kind == "cm_hard" else "mean"
    else:
        options["hard_weight"] = memory_cfg.hard_weight
    if kind == "hybrid_instance":
        options["num_instances"] = instances  # one slot per PK instance, as HHCL sizes it
    return options


def build_memory(kind: str, features: torch.Tensor, labels: torch.Tensor, options: dict,
                 generator: torch.Generator):
    """A fresh memory of kind `kind` over the clusters `labels` (-1: not clustered) of `features`."""
    if kind == "hybrid_instance":
        return InstanceHybridMemory.from_clusters(features, labels, generator=generator, **options)
    return (HybridMemory if kind == "hybrid" else ClusterMemory).from_clusters(features, labels, **options)


def restore_memory(kind: str, state: dict, options: dict):
    """The memory whose `state_dict()` is `state`."""
    if kind == "hybrid_instance":
        options = {k: v for k, v in options.items() if k != "num_instances"}
        memory = InstanceHybridMemory(state["centroid.centroids"], state["instances"], **options)
    elif kind == "hybrid":
        memory = HybridMemory(state["mean.centroids"], **options)
    else:
        memory = ClusterMemory(state["centroids"], **options)
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
