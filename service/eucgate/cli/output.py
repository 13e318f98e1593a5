"""One output convention for every command, so a script parses them all the same way.

Under `--json` a command prints exactly one JSON object on stdout: field names as the
proto spells them (snake_case), every field present, enum values by the short names the flags take
("APPROVED", "REJECT", "SIG"; never with the proto enum prefix OUTCOME_), 64-bit integers as JSON
numbers, bytes as base64 (the protobuf JSON mapping), lists under a plural key
(`{"decisions": [...]}`), never a bare list. A failure under `--json` is also one
object on stdout, `{"error": {"code", "reason", "message", "field_violations",
"exit_code"}}`, with the same exit code as without `--json`. Without `--json`, errors
go to stderr as one line per problem.
"""

from __future__ import annotations

import json
import re
import sys
from collections.abc import Mapping, Sequence
from enum import IntEnum
from typing import Any

import typer
from google.protobuf import json_format
from google.protobuf.descriptor import EnumDescriptor, FieldDescriptor
from google.protobuf.message import Message
from rich.console import Console
from rich.markup import escape

try:  # typer 0.2x carries its own copy of click; earlier releases use click itself
    from typer._click.globals import get_current_context
except ImportError:  # pragma: no cover - depends on the installed typer
    from click import get_current_context  # type: ignore[no-redef,import-not-found,unused-ignore]


class Exit(IntEnum):
    """Exit codes scripts can trust (README, "The command line")."""

    OK = 0
    ERROR = 1
    USAGE = 2
    REFUSED = 3
    UNAVAILABLE = 4
    RECEIPT_INVALID = 5
    REJECTED = 10
    REFERRED = 11


_err = Console(stderr=True)


def json_mode() -> bool:
    """Whether the running command was given `--json` (its `json_output` parameter)."""
    ctx: Any = get_current_context(silent=True)
    while ctx is not None:
        if ctx.params.get("json_output"):
            return True
        ctx = ctx.parent
    return False


def emit_json(value: Mapping[str, Any]) -> None:
    """Print one JSON object on stdout (plain, so a pipe gets exactly the document)."""
    sys.stdout.write(json.dumps(value, indent=2, ensure_ascii=False) + "\n")
    sys.stdout.flush()


def fail(
    message: str,
    exit_code: int,
    *,
    code: str = "",
    reason: str = "",
    field_violations: Mapping[str, str] | None = None,
) -> typer.Exit:
    """Report a failure the convention's way and return the Exit to raise.

    `code` is the gRPC status name when the service refused, else a CLI kind ("USAGE",
    "ERROR", ...) derived from the exit code; `reason` the stable reason code if any.
    """
    violations = dict(field_violations or {})
    if json_mode():
        emit_json(
            {
                "error": {
                    "code": code or _KINDS.get(exit_code, "ERROR"),
                    "reason": reason,
                    "message": message,
                    "field_violations": [
                        {"field": f, "description": d} for f, d in violations.items()
                    ],
                    "exit_code": exit_code,
                }
            }
        )
    else:
        head = f"{reason}: " if reason and reason not in message else ""
        detail = "".join(f"\n  {f}: {d}" for f, d in violations.items())
        _err.print(f"[red]error:[/] {escape(head + message + detail)}", highlight=False)
    return typer.Exit(exit_code)


_KINDS = {
    1: "ERROR",
    2: "USAGE",
    3: "REFUSED",
    4: "UNAVAILABLE",
    5: "RECEIPT_INVALID",
    6: "LOG_INVALID",
}


def proto_dict(message: Message) -> dict[str, Any]:
    """A message as the convention's JSON: proto field names, every field present (zero
    or empty when unset), short enum names, and 64-bit integers as numbers (the protobuf
    JSON mapping makes them strings)."""
    doc = json_format.MessageToDict(
        message, preserving_proto_field_name=True, always_print_fields_with_no_presence=True
    )
    _shorten(message.DESCRIPTOR, doc)
    return doc


def enum_prefix(enum: EnumDescriptor) -> str:
    """ "RuleOutcome" -> "RULE_OUTCOME_": what every value of the enum starts with."""
    return re.sub(r"(?<!^)(?=[A-Z])", "_", enum.name).upper() + "_"


_INT64 = {
    FieldDescriptor.TYPE_INT64,
    FieldDescriptor.TYPE_UINT64,
    FieldDescriptor.TYPE_SINT64,
    FieldDescriptor.TYPE_FIXED64,
    FieldDescriptor.TYPE_SFIXED64,
}


def _shorten(descriptor: Any, doc: dict[str, Any]) -> None:
    for f in descriptor.fields:
        if f.name not in doc:
            continue
        value = doc[f.name]
        values: Sequence[Any] = value if isinstance(value, list) else [value]
        if f.enum_type is not None:
            prefix = enum_prefix(f.enum_type)
            short = [v.removeprefix(prefix) if isinstance(v, str) else v for v in values]
            doc[f.name] = short if isinstance(value, list) else short[0]
        elif f.type in _INT64:
            ints = [int(v) for v in values]
            doc[f.name] = ints if isinstance(value, list) else ints[0]
        elif (
            f.message_type is not None
            and not f.message_type.GetOptions().map_entry
            and not f.message_type.full_name.startswith("google.protobuf.")
        ):
            for sub in values:
                if isinstance(sub, dict):
                    _shorten(f.message_type, sub)
