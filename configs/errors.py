"""The errors a user can cause and how every command reports them: one `error:` line and exit
status 2, never a stack trace. It sits at the bottom of the house so that every package's errors
derive from `UserError` and every command, in any package, exits the same way (`command`)."""
from __future__ import annotations

import sys
from typing import Callable


class UserError(Exception):
    """A mistake a user can make or fix (a config key, a missing data set, an unreadable image, a weight
    file, a checkpoint, a run that cannot go on); the message says what and where, in one sentence."""


class Interrupted(Exception):
    """A signal stopped the command after it saved what it had; the message says how to go on."""

    def __init__(self, message: str, signum: int):
        super().__init__(message)
        self.signum = signum


def exit_on_user_error(main: Callable[[], object]):
    """Run `main()`, turning a `UserError` into `error: ...` and exit status 2, and an `Interrupted`
    into its message and the status of a process killed by that signal (128 + signal number)."""
    try:
        return main()
    except Interrupted as e:
        print(e, file=sys.stderr)
        sys.exit(128 + e.signum)
    except UserError as e:
        print(f"error: {one_line(e)}", file=sys.stderr)
        sys.exit(2)


def one_line(error: Exception) -> str:
    """The message; for an error re-raised from a DataLoader worker, the original one's message."""
    text = str(error)
    if text.startswith("Caught ") and "Original Traceback" in text:
        last = text.strip().splitlines()[-1]  # "package.module.ErrorType: message"
        return last.split(": ", 1)[-1]
    return text


def command(main: Callable):
    """Marks `main(argv=None)` (which returns what it made, for callers in Python) as a command:
    `main.cli()` runs it on the process's arguments as `python -m` and the console scripts
    (`[project.scripts]`: `module:main.cli`) do, with user errors reported by `exit_on_user_error`."""
    def cli() -> None:
        exit_on_user_error(main)
    main.cli = cli
    return main
