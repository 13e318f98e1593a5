"""CEL engines compared for custom rules: common-expression-language against cel-python.

    python -m bench.cel [--repeat 2000] [--record]

eucgate depends on `common-expression-language` (cel-rust through PyO3) only. To include
the pure-Python `cel-python` in the comparison, install it first:

    .venv/bin/pip install cel-python

Without it the comparison rows are skipped and said to be. For each engine: median
compile time and median evaluation time of five rules over a realistic certificate (the
activation converted once, as `core.celrules` does), what a syntax error and four run-time
errors look like, and whether a runaway evaluation can be bounded from Python: a worker
thread evaluates a deliberately slow expression while the main thread waits 50 ms for
it; an engine that holds the GIL keeps the main thread from running until it finishes.
`--record` appends the tables and the command to bench/RESULTS.md.
"""

from __future__ import annotations

import argparse
import importlib
import importlib.metadata
import platform
import re
import statistics
import sys
import threading
import time
from abc import ABC, abstractmethod
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from functools import partial
from pathlib import Path
from typing import Any

import cel
from eucgate.core.celrules import activation_for

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "bench" / "RESULTS.md"
NOW = datetime(2026, 6, 1, 12, 0, tzinfo=UTC)
WAIT_S = 0.05

RULES = {
    "field compare": 'euc.end_use.category == "EV_TRACTION_MOTORS"',
    "exists over items": 'euc.items.exists(i, i.form == "MAGNET" && i.quantity.value > 400.0)',
    "string + regex": "euc.end_user.legal_name.matches('(?i)jay') && "
    "euc.end_use.statement.contains('EV')",
    "timestamps": "now - euc.issued_at < duration('720h') && has(euc.undertakings)",
    "nested (2)": "euc.items.all(a, euc.items.exists(b, a.hs_code == b.hs_code))",
}
SYNTAX_ERROR = "euc.items.exists(i,\n  i.quantity.value >)"
RUN_TIME_ERRORS = {
    "absent field": "euc.consignee.legal_name == 'x'",
    "index out of range": "euc.items[3].hs_code == '2846'",
    "double + int": "euc.items[0].quantity.value + 1 > 0.0",
    "not a bool": "euc.items.size()",
}


class Engine(ABC):
    """One CEL implementation: compile, build an activation, evaluate."""

    name = ""
    version = ""

    @abstractmethod
    def compile(self, expression: str) -> Any: ...

    @abstractmethod
    def activation(self, plain: dict[str, Any]) -> Any: ...

    @abstractmethod
    def evaluate(self, program: Any, activation: Any) -> Any: ...


class RustEngine(Engine):
    name = "common-expression-language"

    def __init__(self) -> None:
        self.version = importlib.metadata.version(self.name)

    def compile(self, expression: str) -> Any:
        return cel.compile(expression)

    def activation(self, plain: dict[str, Any]) -> Any:
        return cel.Context(variables=plain)

    def evaluate(self, program: Any, activation: Any) -> Any:
        return program.execute(activation)


class PythonEngine(Engine):
    name = "cel-python"

    def __init__(self) -> None:
        # Optional, only for this comparison; imported by name so type checks pass without it.
        celpy: Any = importlib.import_module("celpy")
        self.version = importlib.metadata.version(self.name)
        self._celpy = celpy
        self._env = celpy.Environment()

    def compile(self, expression: str) -> Any:
        return self._env.program(self._env.compile(expression))

    def _to_cel(self, value: Any) -> Any:
        types = self._celpy.celtypes
        if isinstance(value, dict):
            return types.MapType({types.StringType(k): self._to_cel(v) for k, v in value.items()})
        if isinstance(value, list):
            return types.ListType([self._to_cel(v) for v in value])
        if isinstance(value, datetime):
            return types.TimestampType(value)
        return self._celpy.json_to_cel(value)

    def activation(self, plain: dict[str, Any]) -> Any:
        return {k: self._to_cel(v) for k, v in plain.items()}

    def evaluate(self, program: Any, activation: Any) -> Any:
        result = program.evaluate(activation)
        if isinstance(result, Exception):  # cel-python may return its error value
            raise result
        return result


def engines() -> tuple[list[Engine], str]:
    found: list[Engine] = [RustEngine()]
    try:
        found.append(PythonEngine())
    except ImportError:
        return found, "cel-python is not installed: `.venv/bin/pip install cel-python` to compare"
    return found, ""


def _median(fn: Callable[[], object], repeat: int) -> float:
    fn()
    samples = []
    for _ in range(repeat):
        start = time.perf_counter()
        fn()
        samples.append(time.perf_counter() - start)
    return statistics.median(samples)


def _plain_activation() -> dict[str, Any]:
    from tests.factories import valid_certificate  # noqa: PLC0415

    activation = activation_for(valid_certificate(), NOW)
    return {"euc": dict(activation.euc), "now": NOW}


def _outcome(fn: Callable[[], object]) -> str:
    try:
        value = fn()
    except Exception as exc:
        text = str(exc).strip().splitlines()
        first = text[0] if text else ""
        return f"{type(exc).__name__}: {first[:70]}"
    return f"returns {value!r}"[:80]


def _syntax_error(engine: Engine) -> str:
    """Where the engine says the syntax error is."""
    try:
        engine.compile(SYNTAX_ERROR)
    except Exception as exc:
        found = re.search(r"<input>:(\d+):(\d+)", str(exc))
        line, column = (
            found.groups() if found else (getattr(exc, "line", "?"), getattr(exc, "column", "?"))
        )
        return f"{type(exc).__name__}, position {line}:{column}"
    return "compiled (no error)"


def runaway(engine: Engine) -> tuple[float, float]:
    """(seconds until the main thread ran again, seconds the evaluation took) for a
    slow triple comprehension evaluated in a worker thread."""
    size = 130 if isinstance(engine, RustEngine) else 16
    program = engine.compile("l.all(a, l.all(b, l.all(c, a + b + c >= 0)))")
    activation = engine.activation({"l": list(range(size))})
    finished: list[float] = []
    start = time.perf_counter()

    def work() -> None:
        engine.evaluate(program, activation)
        finished.append(time.perf_counter() - start)

    worker = threading.Thread(target=work)
    worker.start()
    time.sleep(WAIT_S)  # the main thread asks to run again after 50 ms
    regained = time.perf_counter() - start
    worker.join()
    return regained, finished[0]


def report(repeat: int) -> list[str]:
    found, missing = engines()
    plain = _plain_activation()
    lines = [
        "Median per call; activation converted once per certificate and reused.",
        "",
        "| rule | " + " | ".join(f"{e.name} {e.version} compile / eval" for e in found) + " |",
        "| --- |" + " ---: |" * len(found),
    ]
    contexts = [e.activation(plain) for e in found]
    for label, expression in RULES.items():
        cells = []
        for engine, context in zip(found, contexts, strict=True):
            compile_s = _median(partial(engine.compile, expression), max(10, repeat // 20))
            program = engine.compile(expression)
            eval_s = _median(partial(engine.evaluate, program, context), repeat)
            cells.append(f"{compile_s * 1e6:.0f} µs / {eval_s * 1e6:.1f} µs")
        lines.append(f"| {label} | " + " | ".join(cells) + " |")
    lines += ["", "| error | " + " | ".join(e.name for e in found) + " |"]
    lines.append("| --- |" + " --- |" * len(found))
    syntax = [_syntax_error(e) for e in found]
    lines.append("| syntax error (line 2, column 21) | " + " | ".join(syntax) + " |")
    for label, expression in RUN_TIME_ERRORS.items():
        cells = []
        for engine, context in zip(found, contexts, strict=True):
            program = engine.compile(expression)
            cells.append(_outcome(partial(engine.evaluate, program, context)))
        lines.append(f"| {label} | " + " | ".join(c.replace("|", "/") for c in cells) + " |")
    lines += ["", "| runaway evaluation in a worker thread | main thread ran again after "]
    lines[-1] += "| evaluation took |"
    lines.append("| --- | ---: | ---: |")
    for engine in found:
        regained, took = runaway(engine)
        lines.append(f"| {engine.name} | {regained * 1e3:.0f} ms | {took * 1e3:.0f} ms |")
    if missing:
        lines += ["", missing]
    return lines


def main(argv: Sequence[str] | None = None) -> int:
    args_list = list(sys.argv[1:] if argv is None else argv)
    parser = argparse.ArgumentParser(description="CEL engines compared")
    parser.add_argument("--repeat", type=int, default=2000)
    parser.add_argument("--record", action="store_true", help="append to bench/RESULTS.md")
    args = parser.parse_args(args_list)
    lines = report(args.repeat)
    print("\n".join(lines))
    if args.record:
        when = datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC")
        command = " ".join(["python -m bench.cel", *[a for a in args_list if a != "--record"]])
        head = [
            f"## CEL engines, {when}",
            "",
            f"Command: `{command}`  ",
            f"Machine: {platform.machine()}, Python {platform.python_version()}",
            "",
        ]
        with RESULTS.open("a", encoding="utf-8") as out:
            out.write("\n" + "\n".join([*head, *lines]) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
