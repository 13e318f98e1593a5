"""`eucgate db`: create a store, and migrate the shared PostgreSQL one.

Creating a store starts a new, empty audit log, so it is an explicit step (`db init`,
or `serve --init-store`): a server never starts over by itself on a store it cannot
find.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console

from eucgate.cli.output import emit_json, fail
from eucgate.errors import EucgateError
from eucgate.store import is_postgresql, open_store
from eucgate.store.postgresql import SCHEMA_VERSION, migrate
from eucgate.store.sqlite import SQLITE_FILE

db_app = typer.Typer(help="Create a store; migrate the PostgreSQL one.", no_args_is_help=True)

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


@db_app.command("init")
def init_command(
    data_dir: Annotated[
        Path | None,
        typer.Option(envvar="EUCGATE_DATA_DIR", help="the SQLite store's directory"),
    ] = None,
    store: Annotated[
        str | None,
        typer.Option(envvar="EUCGATE_STORE", help="or a postgresql://... URL"),
    ] = None,
    json_output: Annotated[bool, typer.Option("--json", help="machine-readable output")] = False,
) -> None:
    """Create a new, empty store (a new audit log) where there is none; an existing one
    is left as it is, and said so."""
    if (data_dir is None) == (store is None):
        raise fail("give --data-dir (SQLite) or --store (PostgreSQL), not both", 2)
    if store is not None and not is_postgresql(store):
        raise fail("--store must be a postgresql:// URL", 2)
    if store is not None:
        location = store
    else:
        assert data_dir is not None  # one of the two, checked above
        location = str(data_dir / SQLITE_FILE)
    try:
        existed = _exists(location)
        opened = open_store(location, create=True)
        size = opened.tree_state().size
        opened.close()
    except EucgateError as exc:
        raise fail(str(exc), 4) from None
    where = "the PostgreSQL store" if store is not None else location
    if json_output:
        emit_json({"store": where, "created": not existed, "log_size": size})
        return
    _out.print(f"{where}: {'already there' if existed else 'created'} (log size {size})")


def _exists(location: str) -> bool:
    """Whether a store is already at `location`. Raises StoreError."""
    if not is_postgresql(location):
        path = Path(location)
        return path.is_file() and path.stat().st_size > 0
    try:
        open_store(location, create=False).close()
    except EucgateError:
        return False
    return True
