"""`eucgate validate`: check an EUC offline, before signing, as the service will.

It runs the decoder the server runs on a JSON payload (`certificate_from_payload`), so
an EUC that passes here is not refused with INVALID_ARGUMENT for its content, and one
that fails shows every problem at once (uncapped; the service lists at most 50). It
does not decide: signatures, the policy and the clock are the service's. Exit codes are
the CLI's: 0 valid, 1 the file cannot be read, 3 invalid (as `submit` exits when the
service refuses the input). `--print-schema` prints the JSON Schema of an EUC
(`docs/euc.schema.json` is its output).
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from eucgate.cli.output import Exit, fail
from eucgate.cli.render import print_json
from eucgate.core.certschema import certificate_json_schema_text
from eucgate.core.model import PAYLOAD_TYPE_JSON, Certificate, certificate_from_payload
from eucgate.errors import InvalidSubmission

out = Console()
err = Console(stderr=True)


def validate(
    certificate: Annotated[
        Path | None,
        typer.Argument(
            help="EUC in the protobuf JSON mapping (the file `sign` takes); - for stdin"
        ),
    ] = None,
    print_schema: Annotated[
        bool,
        typer.Option("--print-schema", help="print the JSON Schema of an EUC and exit"),
    ] = False,
    json_output: Annotated[bool, typer.Option("--json", help="machine-readable output")] = False,
) -> None:
    """Check an EUC before signing it: every missing or invalid field at once.

    Exit 0 valid, 1 unreadable, 3 invalid.
    """
    if print_schema:
        if certificate is not None:
            raise fail("give an EUC file or --print-schema, not both", 2)
        sys.stdout.write(certificate_json_schema_text())
        return
    if certificate is None:
        raise fail("give the EUC file to check (or - for stdin)", 2)
    name = "stdin" if str(certificate) == "-" else str(certificate)
    try:
        data = sys.stdin.buffer.read() if name == "stdin" else certificate.read_bytes()
    except OSError as exc:
        raise fail(str(exc), 1) from None
    try:
        parsed = certificate_from_payload(PAYLOAD_TYPE_JSON, data)
    except InvalidSubmission as exc:
        _report_invalid(name, exc, json_output)
        raise typer.Exit(int(Exit.REFUSED)) from None
    _report_valid(name, parsed, json_output)


def _report_valid(name: str, certificate: Certificate, json_output: bool) -> None:
    if json_output:
        print_json(out, {"file": name, "valid": True, "problems": []})
        return
    items = len(certificate.items)
    out.print(
        f"[green]{escape(name)}: valid[/] certificate {escape(certificate.certificate_number)}, "
        f"{items} item{'s' if items != 1 else ''}, end user "
        f"{escape(certificate.end_user.legal_name)}, destination "
        f"{certificate.final_destination_country}",
        highlight=False,
        soft_wrap=True,
    )


def _report_invalid(name: str, exc: InvalidSubmission, json_output: bool) -> None:
    problems: list[dict[str, Any]] = [
        {"field": v.field, "description": v.description, "reason": v.reason}
        for v in exc.all_violations
    ]
    if json_output:
        print_json(
            out,
            {
                "file": name,
                "valid": False,
                "reason": exc.reason,
                "message": str(exc),
                "problems": problems,
            },
        )
        return
    if all(p["field"].startswith("envelope.") for p in problems):
        # not decodable at all (nothing inside the EUC to point at): one message says why
        out.print(
            f"[red]{escape(name)}: invalid ({exc.reason})[/]: {escape(str(exc))}",
            highlight=False,
            soft_wrap=True,
        )
        return
    count = len(problems)
    out.print(
        f"[red]{escape(name)}: {count} problem{'s' if count != 1 else ''} ({exc.reason})[/]",
        highlight=False,
        soft_wrap=True,
    )
    table = Table("field", "problem", "reason", box=None, pad_edge=False)
    for p in problems:
        table.add_row(escape(p["field"]), escape(p["description"]), p["reason"])
    out.print(table)
