"""Fuzz one target with atheris (coverage-guided, libFuzzer underneath).

    python -m tests.fuzz.run TARGET [libFuzzer flags] [CORPUS_DIR ...]

TARGET is one of tests/fuzz/targets.py's TARGETS. eucgate and eucgate_client are
instrumented for coverage. A documented error is a normal outcome; any other exception
or a failed assertion stops the run with the input written as `crash-<sha1>` (see
`-artifact_prefix`). tests/fuzz/README.md has the commands.
"""

from __future__ import annotations

import sys

import atheris

with atheris.instrument_imports(include=["eucgate", "eucgate_client"]):
    from tests.fuzz.targets import TARGETS


def main() -> None:
    if len(sys.argv) < 2 or sys.argv[1] not in TARGETS:
        sys.exit(f"usage: python -m tests.fuzz.run {{{','.join(TARGETS)}}} [libFuzzer args]")
    target = TARGETS[sys.argv[1]]
    atheris.Setup([sys.argv[0], *sys.argv[2:]], target.one_input)
    atheris.Fuzz()


if __name__ == "__main__":
    main()
