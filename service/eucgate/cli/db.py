"""`eucgate db`: operate the shared PostgreSQL store (the SQLite file needs none of it)."""

from __future__ import annotations

from typing import Annotated

import typer
from rich.console import Console

from eucgate.cli.output import emit_json, fail
from eucgate.errors import EucgateError
from eucgate.store import is_postgresql
from eucgate.store.postgresql import SCHEMA_VERSION, migrate

db_app = typer.Typer(help="Operate the PostgreSQL store.", no_args_is_help=True)

_out = Console()


@db_app.command("migrate")
def migrate_command(
    store: Annotated[
        str,
        typer.Option(
            envvar="EUCGATE_STORE", help="postgresql://... URL of the store (or EUCGATE_STORE)"
        ),
    ],
    json_output: Annotated[bool, typer.Option("--json", help="machine-readable output")] = False,
) -> None:
    """Bring the database's schema to this release's version; safe to repeat, and safe
    while replicas run (`serve` applies the same migrations at start)."""
    if not is_postgresql(store):
        raise fail("--store must be a postgresql:// URL", 2)
    try:
        version = migrate(store)
    except EucgateError as exc:
        raise fail(str(exc), 4) from None
    if json_output:
        emit_json({"schema_version": version, "release_schema_version": SCHEMA_VERSION})
        return
    _out.print(f"store schema at version {version} (this release: {SCHEMA_VERSION})")
