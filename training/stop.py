"""Graceful stops for long training runs: SIGINT / SIGTERM end the current step, then the run checkpoints.

A backgrounded job ignores Ctrl-C and a scheduler preempts with SIGTERM; both used to lose the work since the
last periodic checkpoint. Inside :func:`graceful_stop` the signals only set ``stop.signal``; the training loop
checks it after each iteration, writes its checkpoint and returns. The previous handlers come back on exit.
"""

from __future__ import annotations

import signal
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass


@dataclass
class StopRequest:
    """The signal number that asked the run to stop, or None."""

    signal: int | None = None


@contextmanager
def graceful_stop() -> Iterator[StopRequest]:
    """Catch SIGINT and SIGTERM (main thread only; elsewhere the request never fires) for the block's duration."""
    request = StopRequest()

    def on_signal(signum: int, _frame: object) -> None:
        request.signal = signum  # a second signal still waits for the step to finish

    previous = {}
    if threading.current_thread() is threading.main_thread():
        previous = {sig: signal.signal(sig, on_signal) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield request
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
