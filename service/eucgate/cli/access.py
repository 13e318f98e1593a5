"""`eucgate access`: the role table, checking an access file, adding local clients.

Exit codes: 0 done, 1 the file or material is unusable, 2 usage.
"""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated

import typer
from pydantic import ValidationError
from rich.console import Console
from rich.table import Table

from eucgate.api.access import PUBLIC, RPC_ROLES, AccessMap, CallerEntry, markdown_table
from eucgate.cli.output import fail
from eucgate.cli.render import print_json
from eucgate.errors import ConfigError
from eucgate.tlsfiles import LocalAccess, add_client

access_app = typer.Typer(
    help="Who may call the API: the role table, access files, local client certificates.",
    no_args_is_help=True,
)

out = Console()
err = Console(stderr=True)

EXIT_ERROR = 1
EXIT_USAGE = 2


@access_app.command("table")
def table(
    json_output: Annotated[bool, typer.Option("--json", help="machine-readable output")] = False,
) -> None:
    """Print the table of which role may call which RPC (Markdown, as in docs/access.md)."""
    if json_output:
        print_json(
            out,
            {
                "methods": [
                    {
                        "method": method.lstrip("/"),
                        "roles": sorted(r.value for r in rule.roles),
                        "scope": rule.scope,
                    }
                    for method, rule in RPC_ROLES.items()
                ]
                + [
                    {"method": m.lstrip("/"), "roles": ["any"], "scope": "any TLS peer"}
                    for m in sorted(PUBLIC)
                ]
            },
        )
        return
    typer.echo(markdown_table(), nl=False)


@access_app.command("check")
def check(
    access_file: Annotated[Path, typer.Argument(help="the access file (access_path)")],
    json_output: Annotated[bool, typer.Option("--json", help="machine-readable output")] = False,
) -> None:
    """Load an access file as the server would and list its callers."""
    try:
        loaded = AccessMap.load(access_file)
    except ConfigError as exc:
        raise fail(str(exc), EXIT_ERROR) from None
    rows = [
        {
            "name": m.caller.name,
            "identity": m.subject.rfc4514_string()
            if m.subject is not None
            else ":".join(m.san)
            if m.san is not None
            else "",
            "client_ca": m.ca.subject.rfc4514_string(),
            "roles": sorted(r.value for r in m.caller.roles),
            "importers": sorted(m.caller.importers or ()),
        }
        for m in loaded.entries
    ]
    if json_output:
        print_json(out, {"callers": rows})
        return
    shown = Table("caller", "identity", "client CA", "roles", "importers")
    for row in rows:
        shown.add_row(
            str(row["name"]),
            str(row["identity"]),
            str(row["client_ca"]),
            ", ".join(row["roles"]),
            ", ".join(row["importers"]),
        )
    out.print(shown)


@access_app.command("add")
def add(
    directory: Annotated[Path, typer.Argument(help="a `keygen` tls/ directory")],
    name: Annotated[str, typer.Argument(help="the caller's name (its certificate's CN)")],
    role: Annotated[list[str], typer.Option(help="a role, repeatable")],
    importer: Annotated[
        list[str] | None,
        typer.Option(help="SCHEME:VALUE registration an importer acts for, repeatable"),
    ] = None,
    json_output: Annotated[bool, typer.Option("--json", help="machine-readable output")] = False,
) -> None:
    """Issue a client certificate under the local client CA and map it in access.yaml
    (restart the server to take it up)."""
    try:  # the entry the file will hold, checked before anything is written
        CallerEntry.model_validate(
            {
                "name": name,
                "client_ca": "local",
                "subject": f"CN={name}",
                "roles": role,
                "importers": importer or [],
            }
        )
    except ValidationError as exc:
        problems = "; ".join(e["msg"].removeprefix("Value error, ") for e in exc.errors())
        raise fail(problems, EXIT_USAGE) from None
    files = LocalAccess(directory)
    try:
        cert, key = add_client(files, name, role, importer or (), now=datetime.now(UTC))
        AccessMap.load(files.access_file)
    except (OSError, ValueError, ConfigError) as exc:
        raise fail(str(exc), EXIT_ERROR) from None
    if json_output:
        print_json(
            out,
            {
                "name": name,
                "certificate": str(cert),
                "key": str(key),
                "access_file": str(files.access_file),
            },
        )
        return
    out.print(f"wrote {cert} and {key}; {name} added to {files.access_file}")
