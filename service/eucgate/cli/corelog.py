"""Keep gRPC core's own log lines inside the server's JSON log.

gRPC's C core (e.g. "Handshake failed" when a client offers no certificate) writes
plain text straight to file descriptor 2, past Python's logging. A log shipper reading
JSON lines would choke on it or drop it. `json_stderr` puts a pipe on descriptor 2:
lines that are already JSON pass through unchanged, anything else becomes one JSON
event `{"event": "grpc_core", "level": ..., "message": ..., "source": ...}`.
"""

from __future__ import annotations

import atexit
import json
import os
import re
import sys
import threading
from datetime import UTC, datetime
from typing import IO

# absl's prefix: severity letter, date, time, thread id, file:line]
_ABSL = re.compile(r"^([IWEF])\d{4} [\d:.]+\s+\d+ ([^\]]+)\] ?(.*)$")
_LEVELS = {"I": "info", "W": "warning", "E": "error", "F": "critical"}


def core_line_event(line: str) -> str:
    """One line of descriptor-2 output as a JSON log line (JSON lines unchanged)."""
    text = line.rstrip("\r\n")
    if text.startswith("{"):
        try:
            json.loads(text)
        except ValueError:
            pass
        else:
            return text
    match = _ABSL.match(text)
    event = {
        "event": "grpc_core",
        "level": _LEVELS[match.group(1)] if match else "error",
        "message": match.group(3) if match else text,
        "timestamp": datetime.now(UTC).isoformat().replace("+00:00", "Z"),
    }
    if match:
        event["source"] = match.group(2)
    return json.dumps(event)


def json_stderr() -> None:
    """Route everything written to descriptor 2 through `core_line_event`, for the
    life of the process. Call once, before the gRPC server starts."""
    sys.stderr.flush()
    original = os.dup(2)
    read_fd, write_fd = os.pipe()
    os.dup2(write_fd, 2)
    os.close(write_fd)
    sink = os.fdopen(os.dup(original), "w", buffering=1, encoding="utf-8")
    source = os.fdopen(read_fd, encoding="utf-8", errors="replace")
    pump = threading.Thread(target=_pump, args=(source, sink), name="stderr-json", daemon=True)
    pump.start()

    def restore() -> None:
        # Put the real stderr back on descriptor 2: the pipe's last writer closes, the
        # pump reads to the end, and no line written before exit is lost.
        sys.stderr.flush()
        os.dup2(original, 2)
        pump.join(timeout=2)

    atexit.register(restore)


def _pump(source: IO[str], sink: IO[str]) -> None:
    for line in source:
        if line.strip():
            sink.write(core_line_event(line) + "\n")
