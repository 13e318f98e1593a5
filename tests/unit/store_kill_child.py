"""Child process of the store kill test (run as a script, not collected by pytest).

Usage: store_kill_child.py STORE_PATH WRITERS

Opens the store and appends from WRITERS threads, printing "acked <decision_id>" only
after `append` returned. The parent SIGKILLs it mid-stream and checks that every acked
record survived. If the parent dies instead, stdin closes and the child exits.
"""

from __future__ import annotations

import sys
import threading
from datetime import UTC, datetime
from pathlib import Path

from eucgate.store.base import DecisionRecord
from eucgate.store.sqlite import SqliteStore

_MAX_PER_WRITER = 10_000  # a bound, in case nobody kills us


def _record(writer: int, n: int) -> DecisionRecord:
    return DecisionRecord(
        decision_id=f"dec_kill_{writer:02d}_{n:06d}",
        caller="kill-test",
        request_id=f"req-{writer}-{n}",
        envelope_digest=f"{writer:02d}{n:062d}",
        envelope=b"envelope-%d-%d" % (writer, n),
        decision=b'{"outcome":"APPROVED"}',
        receipt=b"receipt",
        outcome="APPROVED",
        decided_at=datetime.now(UTC),
        bundle_digest="b" * 64,
        importer_registrations=("IEC-KILL",),
    )


def main(path: Path, writers: int) -> None:
    store = SqliteStore.open(path)
    out = threading.Lock()

    def run(writer: int) -> None:
        for n in range(_MAX_PER_WRITER):
            record = _record(writer, n)
            store.append(record)
            with out:
                sys.stdout.write(f"acked {record.decision_id}\n")
                sys.stdout.flush()

    for writer in range(writers):
        threading.Thread(target=run, args=(writer,), daemon=True).start()
    sys.stdin.read()  # returns when the parent goes away


if __name__ == "__main__":
    main(Path(sys.argv[1]), int(sys.argv[2]))
