"""The ways a training run ends early, as errors every command reports the same way
(`configs.errors`: one `error:` line, or the resume line and the signal's exit status)."""
from __future__ import annotations

from configs.errors import Interrupted, UserError


class TrainingStopped(UserError, RuntimeError):
    """The run cannot go on (e.g. a NaN loss); the last checkpoint on disk is intact."""


class TrainingInterrupted(Interrupted):
    """A signal stopped the run after its checkpoint was written; the message says how to resume."""
