"""Where a training step's memory goes: the bytes autograd keeps for backward, by the module whose
forward saved them, while they are alive and at their peak.

    with SavedActivations(model, depth=2) as saved:
        loss = model(x).sum(); loss.backward()
    saved.peak_bytes, saved.peak_by_module   # the most held at once, and who held it then

A tensor saved twice (a ReLU's output, then the next layer's input) is one storage and counts once, to
the module that saved it first. Parameters saved for backward are left out (they live anyway); the
copies autocast makes of them are counted, as they are activations' kin: made per step, freed after.
"""
from __future__ import annotations

import weakref
from collections import Counter

import torch
from torch import nn


class _Saved:
    """What autograd holds in place of the saved tensor: the tensor itself, with a finaliser that
    releases its bytes when the graph lets go of it."""
    __slots__ = ("tensor", "__weakref__")

    def __init__(self, tensor: torch.Tensor):
        self.tensor = tensor


class SavedActivations:
    def __init__(self, model: nn.Module, depth: int = 2):
        self.model, self.depth = model, depth
        self.live: dict[int, list] = {}  # storage pointer -> [references, bytes, module]
        self.live_bytes = self.peak_bytes = 0
        self.peak_by_module: dict[str, int] = {}
        self._stack: list[str] = []
        self._handles = []
        self._params: set[int] = set()

    def __enter__(self):
        self._params = {p.untyped_storage().data_ptr() for p in self.model.parameters()}
        for name, module in self.model.named_modules():
            short = ".".join(name.split(".")[:self.depth]) or "(top)"
            self._handles.append(module.register_forward_pre_hook(lambda m, a, n=short: self._enter(n)))
            self._handles.append(module.register_forward_hook(lambda m, a, o: self._leave()))
        self._hooks = torch.autograd.graph.saved_tensors_hooks(self._pack, lambda saved: saved.tensor)
        self._hooks.__enter__()
        return self

    def __exit__(self, *exc):
        self._hooks.__exit__(*exc)
        for h in self._handles:
            h.remove()
        self._handles.clear()

    def _enter(self, name: str) -> None:  # hooks return None: a value would replace the input / output
        self._stack.append(name)

    def _leave(self) -> None:
        self._stack.pop()

    def _pack(self, tensor: torch.Tensor):
        saved = _Saved(tensor)
        if tensor.layout != torch.strided or tensor.untyped_storage().data_ptr() in self._params:
            return saved
        key = tensor.untyped_storage().data_ptr()
        if key in self.live:
            self.live[key][0] += 1
        else:
            nbytes = tensor.untyped_storage().nbytes()
            self.live[key] = [1, nbytes, self._stack[-1] if self._stack else "(outside modules)"]
            self.live_bytes += nbytes
            if self.live_bytes > self.peak_bytes:
                self.peak_bytes = self.live_bytes
                by_module = Counter()
                for _, size, owner in self.live.values():
                    by_module[owner] += size
                self.peak_by_module = dict(by_module)
        weakref.finalize(saved, self._release, key)
        return saved

    def _release(self, key: int) -> None:
        entry = self.live[key]
        entry[0] -= 1
        if entry[0] == 0:
            self.live_bytes -= entry[1]
            del self.live[key]
