"""What the command-line entry points share: one-sentence user errors, and how a stopped run exits."""
from __future__ import annotations

import sys

from configs.loader import ConfigError
from models.weights import WeightsError
from reid_data import DatasetError, ImageReadError

from .base import TrainingStopped
from .checkpoint import CheckpointError
from .stopping import TrainingInterrupted

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
