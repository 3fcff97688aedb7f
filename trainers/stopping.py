"""Stopping a training run without losing work: SIGINT and SIGTERM let the current step end, so the
loop can save a checkpoint and say how to resume, instead of killing the process mid-step."""
from __future__ import annotations

import signal
import threading

SIGNALS = (signal.SIGINT, signal.SIGTERM)


class StopSignals:
    """While entered, SIGINT and SIGTERM are only recorded in `signum`; a second one acts as it
    would without this (to quit at once). Loader workers forked meanwhile inherit the handler, so
    a ^C sent to the whole process group leaves them loading."""

    def __enter__(self) -> StopSignals:
        self.signum = None
        self._previous = {}
        if threading.current_thread() is threading.main_thread():  # the only thread that may set handlers
            self._previous = {s: signal.signal(s, self._record) for s in SIGNALS}
        return self

    def _record(self, signum, frame) -> None:
        self.signum = signum
        self._restore()

    def _restore(self) -> None:
        for s, handler in self._previous.items():
            signal.signal(s, signal.SIG_DFL if handler is None else handler)  # None: set outside Python

    def __exit__(self, *exc) -> None:
        self._restore()
