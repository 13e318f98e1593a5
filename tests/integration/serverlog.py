"""Following a server process's log: its stderr is one JSON event per line."""

from __future__ import annotations

import json
import subprocess
import threading
from collections.abc import Callable
from typing import Any


def follow(
    proc: subprocess.Popen[str], lines: list[str], on_event: Callable[[dict[str, Any]], None]
) -> threading.Thread:
    """Start a daemon thread that keeps every stderr line of `proc` in `lines` (for the
    failure message) and hands each JSON event to `on_event`; returns the thread."""

    def read() -> None:
        assert proc.stderr is not None
        for line in proc.stderr:
            lines.append(line)
            try:
                event = json.loads(line)
            except ValueError:
                continue
            on_event(event)

    reader = threading.Thread(target=read, daemon=True)
    reader.start()
    return reader
