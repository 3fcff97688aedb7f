"""What the training loop does around its steps, one concern per hook (the pattern of fast-reid's
`HookBase`): `Trainer.fit` runs the steps and calls each hook of `Trainer.hooks()` in order at four
points — before the first step, before each epoch (trainers with `epoch_iters`), after every step,
after the last step. The run's own hooks are here: logging, images, checkpoints and evaluation;
a method adds its own (re-clustering and held-out model choice: `trainers.pseudo_labels`).
"""
from __future__ import annotations

import json
import math

from tqdm import tqdm


class Hook:
    """One concern of a run. `main_only` hooks run in the main process only: under torchrun the
    other processes train and write nothing."""

    main_only = True

    def before_train(self, trainer) -> None:
        pass

    def before_epoch(self, trainer, epoch: int) -> None:
        """Before the first step of `epoch`, or of the rest of it when a run resumes inside it."""

    def after_step(self, trainer, losses: dict[str, float]) -> None:
        """After the step that made `trainer.iteration` steps done."""

    def after_train(self, trainer) -> None:
        """After the last step, when the run reached run.max_iter (not when it stopped early)."""


class LogLosses(Hook):
    """Every run.log_every steps and at the end: the step's losses, learning rates and loss scale to
    tensorboard, the losses beside the progress bar."""

    def after_step(self, trainer, losses):
        run = trainer.cfg.run
        if trainer.iteration % run.log_every and trainer.iteration != run.max_iter:
            return
        writer, step = trainer.writer, trainer.iteration
        for key, value in losses.items():
            writer.add_scalar(f"train/{key}", value, step)
        for name, opt in trainer.optimizers.items():
            for i, group in enumerate(opt.param_groups):
                writer.add_scalar(f"lr/{name}_{i}", group["lr"], step)
        if trainer.scaler.is_enabled():
            writer.add_scalar("amp/skipped_steps", trainer.skipped_steps, step)
            writer.add_scalar("amp/scale", trainer.scaler.get_scale(), step)
        trainer.progress.set_postfix({k: f"{v:.3g}" for k, v in losses.items()})


class LogImages(Hook):
    """After the first step and every run.checkpoint_every: the method's `images()` to tensorboard."""

    def after_step(self, trainer, losses):
        if trainer.iteration % trainer.cfg.run.checkpoint_every == 0 or trainer.iteration == 1:
            for tag, images in trainer.images().items():
                trainer.writer.add_images(tag, images, trainer.iteration)


class PeriodicCheckpoint(Hook):
    """A checkpoint every run.checkpoint_every steps and one at the end (last.pt follows the newest)."""

    def after_step(self, trainer, losses):
        run = trainer.cfg.run
        if trainer.iteration % run.checkpoint_every == 0 and trainer.iteration < run.max_iter:
            trainer.save_checkpoint()

    def after_train(self, trainer):
        trainer.save_checkpoint()


class PeriodicEvaluation(Hook):
    """The method's `evaluate()` every run.eval_every steps (0: never) and at the end: to tensorboard
    (eval/*), to the console and as one line of results.jsonl."""

    def after_step(self, trainer, losses):
        run = trainer.cfg.run
        if run.eval_every and trainer.iteration % run.eval_every == 0 and trainer.iteration < run.max_iter:
            self.evaluate(trainer)

    def after_train(self, trainer):
        self.evaluate(trainer)

    @staticmethod
    def evaluate(trainer) -> dict[str, float]:
        results = trainer.evaluate()
        for key, value in results.items():
            if isinstance(value, (int, float)) and math.isfinite(value):
                trainer.writer.add_scalar(f"eval/{key}", value, trainer.iteration)
        if results:
            tqdm.write(f"[{trainer.name}] iteration {trainer.iteration}: " +
                       ", ".join(f"{k} {v:.4f}" for k, v in results.items()))
            record = {"iteration": trainer.iteration, **results}
            if trainer.data is not None:
                record["skipped_unreadable"] = len(trainer.data.unreadable)  # left out by data.skip_unreadable
            with open(trainer.run_dir / "results.jsonl", "a") as f:
                f.write(json.dumps(record) + "\n")
        return results


def run_hooks() -> list[Hook]:
    """The hooks every run has, in the order they are called after a step."""
    return [LogLosses(), LogImages(), PeriodicCheckpoint(), PeriodicEvaluation()]
