"""The errors a user can cause, each reported as one `error:` line, and how a command exits on them."""
from __future__ import annotations

import sys

from configs.loader import ConfigError
from models.weights import WeightsError
from reid_data import DatasetError, ImageReadError

from .checkpoint import CheckpointError


class TrainingStopped(RuntimeError):
    """The run cannot go on (e.g. a NaN loss); the last checkpoint on disk is intact."""


class TrainingInterrupted(Exception):
    """A signal stopped the run after its checkpoint was written; the message says how to resume."""

    def __init__(self, message: str, signum: int):
        super().__init__(message)
        self.signum = signum


# Mistakes a user can make; reported as one line, never as a stack trace.
USER_ERRORS = (ConfigError, DatasetError, ImageReadError, WeightsError, CheckpointError, TrainingStopped)


def exit_on_user_error(main):
    """Run `main()`, turning the errors a user can cause into `error: ...` and exit status 2, and a
    run stopped by a signal into its resume line and the status of a process killed by that signal."""
    try:
        return main()
    except TrainingInterrupted as e:
        print(e, file=sys.stderr)
        sys.exit(128 + e.signum)
    except USER_ERRORS as e:
        print(f"error: {one_line(e)}", file=sys.stderr)
        sys.exit(2)


def one_line(error: Exception) -> str:
    """The message; for an error re-raised from a DataLoader worker, the original one's message."""
    text = str(error)
    if text.startswith("Caught ") and "Original Traceback" in text:
        last = text.strip().splitlines()[-1]  # "package.module.ErrorType: message"
        return last.split(": ", 1)[-1]
    return text
