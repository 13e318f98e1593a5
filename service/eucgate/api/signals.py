"""Signals, acted on off the signal handler.

A Python signal handler runs on the main thread between two bytecodes, wherever that
thread was. If it was writing a log line it holds the log's lock (structlog's writer
takes a plain threading.Lock per file), and a handler that logs then waits for that
lock for ever: a server that hung in shutdown under load. So the handlers here do
nothing in Python. CPython's own C handler writes the signal's number to a pipe
(signal.set_wakeup_fd), and one thread reads the pipe, logs the signal and runs its
action like any other thread.
"""

from __future__ import annotations

import os
import signal
import threading
from collections.abc import Callable, Mapping
from types import FrameType

import structlog

log = structlog.get_logger("eucgate.server")


def handle(actions: Mapping[signal.Signals, Callable[[], object]]) -> None:
    """From now on, each time signal s arrives, log it and run `actions[s]` on this
    process's signal thread (one action at a time: an action that takes long starts a
    thread of its own). Call once per process, from its main thread."""
    read_end, write_end = os.pipe()
    os.set_blocking(write_end, False)
    signal.set_wakeup_fd(write_end, warn_on_full_buffer=False)
    threading.Thread(
        target=_run,
        args=(read_end, {int(s): action for s, action in actions.items()}),
        name="eucgate-signals",
        daemon=True,
    ).start()
    for signum in actions:  # last: from here on each is heard
        signal.signal(signum, _nothing)  # CPython's C handler writes to the wakeup fd


def forget() -> None:
    """In a forked child: stop writing signals to the parent's pipe, whose reader is
    the parent's signal thread (it did not come along into the child)."""
    signal.set_wakeup_fd(-1)


def _nothing(_signum: int, _frame: FrameType | None) -> None:
    """The Python handler: nothing to do on the main thread."""


def _run(read_end: int, actions: dict[int, Callable[[], object]]) -> None:
    while True:
        for number in os.read(read_end, 64):
            action = actions.get(number)
            if action is None:  # another signal with a Python handler (a test's alarm)
                continue
            name = signal.Signals(number).name
            log.info("signal", signal=name)
            try:
                action()
            except Exception:  # the thread must live on for the next signal
                log.exception("signal_action_failed", signal=name)
