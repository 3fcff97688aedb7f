"""The training loop every method shares: device, mixed precision, checkpoints, logging, progress,
and data-parallel processes under `torchrun` (only rank 0 writes logs and checkpoints).

A method subclasses `Trainer` and fills in `build`, `batches`, `train_step` and `evaluate`, and
adds hooks (`trainers.hooks`) for what happens between steps. It never parses the command line:
it gets a resolved config and a run folder.
"""
from __future__ import annotations

import random
import signal
import sys
import warnings
from pathlib import Path
from typing import Iterator

import numpy as np
import torch
from torch import nn
from torch.utils.tensorboard import SummaryWriter
from tqdm import tqdm

from runtime import checkpoint
from runtime.allocator import keep_freed_memory
from runtime.device import amp_dtype, autocast, resolve_device
from runtime.errors import TrainingInterrupted, TrainingStopped

from . import distributed, rng
from .hooks import Hook, run_hooks
from .stopping import StopSignals


def seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


class Trainer:
    """Owns `modules`, `optimizers`, `schedulers` and `stateful` (objects with state_dict), by name."""

    name = "base"
    data = None  # the run's ReIDDataset, when `build` loads one
    epoch_iters: int | None = None  # steps per epoch, for a method whose batches change between epochs
    writer: SummaryWriter | None = None  # tensorboard, while `fit` runs (main process)
    progress: tqdm | None = None  # the progress bar, while `fit` runs

    def __init__(self, cfg, run_dir: str | Path):
        self.cfg = cfg
        self.run_dir = Path(run_dir)
        self.device = resolve_device(cfg.run.device)
        if self.device.type == "cuda":
            torch.cuda.set_device(self.device)
        self._owns_process_group = distributed.init(self.device)
        self.is_main = distributed.rank() == 0
        if cfg.run.threads > 0:
            torch.set_num_threads(cfg.run.threads)
        if self.device.type == "cpu" and cfg.run.keep_freed_memory:
            keep_freed_memory()
        seed_everything(cfg.run.seed)
        self.amp_dtype = amp_dtype(self.device) if cfg.run.amp else None
        self.scaler = torch.amp.GradScaler(self.device.type, enabled=self.amp_dtype == torch.float16)
        self.iteration = 0
        self.skipped_steps = 0
        self.modules: dict[str, nn.Module] = {}
        self.optimizers: dict[str, torch.optim.Optimizer] = {}
        self.schedulers: dict[str, object] = {}
        self.stateful: dict[str, object] = {}
        self._accumulated: set[str] = set()  # optimizers holding a part of this step's gradients (accumulate)
        self.build()

    # --- what a method provides -------------------------------------------------------------
    def build(self) -> None:
        raise NotImplementedError

    def batches(self, start: int) -> Iterator:
        """Training batches from batch number `start` (the iteration) on: endless, or with `epoch_iters`
        set the rest of the epoch that holds `start`. It only yields batches (no other state changes)."""
        raise NotImplementedError

    def train_step(self, batch) -> dict[str, float]:
        raise NotImplementedError

    def images(self) -> dict[str, torch.Tensor]:
        """Image batches (N, 3, H, W) in [0, 1] worth seeing in tensorboard, by tag."""
        return {}

    def evaluate(self, rerank: bool | None = None) -> dict[str, float]:
        """Query/gallery figures of the current model; `rerank` None = the config's test.rerank."""
        return {}

    # --- helpers for methods ---------------------------------------------------------------
    def autocast(self):
        return autocast(self.device, self.amp_dtype)

    def accumulate(self, loss: torch.Tensor, *names: str) -> None:
        """Backward of one part of a step's loss into the named optimizers' gradients, to which the next
        `optimize` of those names adds its own and steps: a step taken in parts frees each part's graph
        before the next part's is built (the discriminator's real half, whose gradient penalty keeps a
        double-backward graph, before the generator's forward). The same gradients as one backward of
        the sum, up to the order of float additions."""
        self._check_finite(loss)
        for name in names:
            if name not in self._accumulated:
                self.optimizers[name].zero_grad(set_to_none=True)
                self._accumulated.add(name)
        self.scaler.scale(loss).backward()

    def optimize(self, loss: torch.Tensor, *names: str) -> None:
        """Backward and step for the named optimizers; a non-finite loss (in any process) stops the run first.

        A method may call it several times per iteration (a GAN: discriminator, then generator); each
        call updates the loss scale, and a step the scaler skips (float16 overflow) is counted.
        """
        self._check_finite(loss)
        for name in names:
            if name not in self._accumulated:
                self.optimizers[name].zero_grad(set_to_none=True)
        self._accumulated.difference_update(names)
        self.scaler.scale(loss).backward()
        distributed.average_gradients(p for name in names for group in self.optimizers[name].param_groups
                                      for p in group["params"])
        scale = self.scaler.get_scale()
        for name in names:
            self.scaler.step(self.optimizers[name])
        self.scaler.update()
        skipped = self.scaler.is_enabled() and self.scaler.get_scale() < scale
        self.skipped_steps += skipped  # float16 overflow: the scaler skipped this step
        with warnings.catch_warnings():
            if skipped:  # the schedule follows the iteration, stepped or not: torch's warning does not apply
                warnings.filterwarnings("ignore", "Detected call of `lr_scheduler.step")
            for name in names:
                if name in self.schedulers:
                    self.schedulers[name].step()

    def _check_finite(self, loss: torch.Tensor) -> None:
        if not distributed.all_finite(loss):
            raise TrainingStopped(
                f"the loss became {loss.item()} at iteration {self.iteration + 1}; the run stopped "
                f"without saving, so the last checkpoint in {self.checkpoint_dir} is intact "
                f"(lower the learning rate or resume from it)")

    # --- checkpoints -----------------------------------------------------------------------
    @property
    def checkpoint_dir(self) -> Path:
        return self.run_dir / "checkpoints"

    def state_dict(self) -> dict:
        return {
            "trainer": self.name,
            "iteration": self.iteration,
            "skipped_steps": self.skipped_steps,
            "config": self.cfg.to_dict(),
            "modules": {k: m.state_dict() for k, m in self.modules.items()},
            "optimizers": {k: o.state_dict() for k, o in self.optimizers.items()},
            "schedulers": {k: s.state_dict() for k, s in self.schedulers.items()},
            "stateful": {k: s.state_dict() for k, s in self.stateful.items()},
            "scaler": self.scaler.state_dict(),
            "rng": rng.rng_state(),
        }

    def save_checkpoint(self) -> Path:
        state = self.state_dict()
        path = self.checkpoint_dir / f"iter_{self.iteration:07d}.pt"
        checkpoint.save_atomic(state, path)
        checkpoint.link_atomic(path, self.checkpoint_dir / "last.pt")
        return path

    def load_checkpoint(self, path: str | Path, weights_only: bool = False) -> None:
        """Restore a run; `weights_only` restores just the networks (for evaluation)."""
        state = checkpoint.read_checkpoint(path)
        if state.get("trainer") != self.name:
            raise checkpoint.CheckpointError(
                f"checkpoint {path} was written by trainer {state.get('trainer')!r}, not {self.name!r}")
        for key, module in self.modules.items():
            try:
                module.load_state_dict(state["modules"][key])
            except (KeyError, RuntimeError):  # another config's networks (torch would list every tensor)
                raise checkpoint.CheckpointError(
                    f"checkpoint {path} does not fit this run's networks ({key}); use the config it was written "
                    f"with (--resume without --config does)") from None
        if weights_only:
            return
        for group, target in (("optimizers", self.optimizers), ("schedulers", self.schedulers),
                              ("stateful", self.stateful)):
            for key, obj in target.items():
                obj.load_state_dict(state[group][key])
        self.scaler.load_state_dict(state["scaler"])
        self.iteration = state["iteration"]
        self.skipped_steps = state["skipped_steps"]
        rng.set_rng_state(state["rng"])

    # --- the loop --------------------------------------------------------------------------
    def hooks(self) -> list[Hook]:
        """What runs around the steps, in calling order (a method adds its own before the run's)."""
        return run_hooks()

    def fit(self) -> list[dict[str, float]]:
        """Train to run.max_iter; returns the losses of every iteration run here.

        Only the steps are here; everything around them is a hook (`hooks()`). A trainer with
        `epoch_iters` gets a fresh batch stream for each epoch, after its hooks' `before_epoch`.
        SIGINT or SIGTERM (`TrainingInterrupted`) and an error loading a batch stop the run between
        steps with a checkpoint and a line saying how to resume; a non-finite loss stops it without."""
        run = self.cfg.run
        history = []
        distributed.broadcast_modules(self.modules.values())
        hooks = [h for h in self.hooks() if self.is_main or not h.main_only]
        self.writer = SummaryWriter(str(self.run_dir)) if self.is_main else None
        batches = None
        try:
            with StopSignals() as stop, tqdm(total=run.max_iter, initial=self.iteration, desc=self.name,
                                             dynamic_ncols=True, mininterval=2.0, disable=not self.is_main) as bar:
                self.progress = bar
                for hook in hooks:
                    hook.before_train(self)
                while self.iteration < run.max_iter:
                    if distributed.any_process(stop.signum is not None, self.device):  # all stop at one step
                        signum = stop.signum or signal.SIGTERM  # None: the signal came to another process
                        raise TrainingInterrupted(self._save_for_resume(signal.Signals(signum).name), signum)
                    if batches is None or (self.epoch_iters and self.iteration % self.epoch_iters == 0):
                        batches = None  # the last epoch's loader workers stop before new ones start
                        if self.epoch_iters:
                            for hook in hooks:
                                hook.before_epoch(self, self.iteration // self.epoch_iters)
                        batches = self.batches(self.iteration)  # after the handlers, which forked workers inherit
                    for module in self.modules.values():
                        module.train()
                    losses = self.train_step(self._next_batch(batches, len(history)))
                    self.iteration += 1
                    history.append(losses)
                    bar.update(1)
                    for hook in hooks:
                        hook.after_step(self, losses)
                for hook in hooks:
                    hook.after_train(self)
        finally:
            del batches  # stops the loader's worker processes
            if self.writer is not None:
                self.writer.close()
                self.writer = None
            if self._owns_process_group:
                torch.distributed.destroy_process_group()
                self._owns_process_group = False
        return history

    def _next_batch(self, batches: Iterator, steps_done: int):
        """The next batch; an error loading it first saves the steps done here (if any)."""
        try:
            return next(batches)
        except Exception:
            if steps_done:
                tqdm.write(self._save_for_resume("an error loading data"), file=sys.stderr)
            raise

    def _save_for_resume(self, cause: str) -> str:
        """Save the run as it stands; the line that says how to go on from there."""
        if self.is_main:
            self.save_checkpoint()
        return (f"[{self.name}] {cause} stopped the run at iteration {self.iteration} of {self.cfg.run.max_iter}, "
                f"saved; resume with: python train.py --resume {self.checkpoint_dir / 'last.pt'}")
