"""`eucgate db`: operate the shared PostgreSQL store (the SQLite file needs none of it)."""

from __future__ import annotations

from typing import Annotated

import typer
from rich.console import Console

from eucgate.errors import EucgateError
from eucgate.store import is_postgresql
from eucgate.store.postgresql import SCHEMA_VERSION, migrate

db_app = typer.Typer(help="Operate the PostgreSQL store.", no_args_is_help=True)

_out = Console()
_err = Console(stderr=True)


@db_app.command("migrate")
def migrate_command(
    store: Annotated[
        str,
        typer.Option(
            envvar="EUCGATE_STORE", help="postgresql://... URL of the store (or EUCGATE_STORE)"
        ),
    ],
) -> None:
    """Bring the database's schema to this release's version; safe to repeat, and safe
    while replicas run (`serve` applies the same migrations at start)."""
    if not is_postgresql(store):
        _err.print("[red]error:[/] --store must be a postgresql:// URL", highlight=False)
        raise typer.Exit(2)
    try:
        version = migrate(store)
    except EucgateError as exc:
        _err.print(f"[red]error:[/] {exc}", highlight=False)
        raise typer.Exit(4) from None
    _out.print(f"store schema at version {version} (this release: {SCHEMA_VERSION})")
