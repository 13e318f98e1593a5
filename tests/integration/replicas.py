"""Server replicas as operators run them: `python -m eucgate serve` processes on loopback,
each on its own port, sharing one store (a PostgreSQL URL) or owning one (a SQLite dir)."""

from __future__ import annotations

import os
import subprocess
import sys
import threading
from pathlib import Path
from typing import Any

from .conftest import Env
from .serverlog import follow

START_TIMEOUT = 30


class Replica:
    """One server process; `start` waits until it serves, `kill` is SIGKILL."""

    def __init__(self, env: Env, data_dir: Path, bundle: Path, store: str = "") -> None:
        self._args = [
            sys.executable,
            "-m",
            "eucgate",
            "serve",
            "--listen",
            "127.0.0.1:0",
            "--data-dir",
            str(data_dir),
            "--bundle",
            str(bundle),
            "--policy-admin-key",
            str(env.admin_public_key),
            "--service-key",
            str(env.pki.service_key),
            "--insecure",
            "--init-store",
        ]
        self._store = store
        self.proc: subprocess.Popen[str] | None = None
        self.port = 0
        self.lines: list[str] = []

    def start(self) -> int:
        """Start the process and return its port once it logs `serving`."""
        env = None
        if self._store:  # by environment, as a URL with a password would be passed
            env = {**os.environ, "EUCGATE_STORE": self._store}
        proc = subprocess.Popen(
            self._args,
            stderr=subprocess.PIPE,
            stdout=subprocess.DEVNULL,
            stdin=subprocess.DEVNULL,
            text=True,
            env=env,
        )
        found = threading.Event()
        ports: list[int] = []

        def on_event(event: dict[str, Any]) -> None:
            if event.get("event") == "serving":
                ports.append(int(event["port"]))
                found.set()

        follow(proc, self.lines, on_event)
        self.proc = proc
        if not found.wait(START_TIMEOUT):
            self.kill()
            raise AssertionError("replica did not start:\n" + "".join(self.lines[-30:]))
        self.port = ports[0]
        return self.port

    def kill(self) -> None:
        """SIGKILL: no shutdown, no flush; only what was committed survives."""
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
        if self.proc is not None:
            self.proc.wait(timeout=START_TIMEOUT)
        self.port = 0
