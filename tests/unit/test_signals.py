"""Signals are acted on off the main thread (api.signals), so an action that logs cannot
wait for ever on a lock the interrupted main thread holds."""

from __future__ import annotations

import subprocess
import sys
import textwrap

# The child holds the log's lock on its main thread while the signal arrives, then lets
# it go. A handler that logged on the main thread would wait for that lock for ever.
_CHILD = textwrap.dedent(
    """
    import os, signal, sys, threading, time
    import structlog
    from structlog._output import _get_lock_for_file
    from eucgate.api import signals
    from eucgate.logconfig import configure_logging

    configure_logging("info")
    heard = threading.Event()
    where = []

    def action():
        where.append(threading.current_thread() is threading.main_thread())
        structlog.get_logger("test").info("acted")
        heard.set()

    signals.handle({signal.SIGTERM: action})
    with _get_lock_for_file(sys.stderr):
        os.kill(os.getpid(), signal.SIGTERM)
        time.sleep(0.3)  # the main thread runs bytecode, still holding the lock
    assert heard.wait(10), "the action never ran"
    assert where == [False], where
    heard.clear()
    os.kill(os.getpid(), signal.SIGTERM)  # and again: the signal thread lives on
    assert heard.wait(10), "the second signal was not acted on"
    print("ok")
    """
)


def test_a_signal_while_the_main_thread_holds_the_log_lock_is_acted_on() -> None:
    result = subprocess.run(
        [sys.executable, "-c", _CHILD], check=False, capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "ok"
    assert result.stderr.count('"signal": "SIGTERM"') == 2, result.stderr
