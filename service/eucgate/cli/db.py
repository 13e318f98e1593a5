"""`eucgate db`: create a store, migrate the shared PostgreSQL one, check one for damage.

Creating a store starts a new, empty audit log, so it is an explicit step (`db init`,
or `serve --init-store`): a server never starts over by itself on a store it cannot
find. Reading a whole store for damage is one too (`db check`): at open a server reads
only what its next append depends on, so a restart over a large log is not held for
the minutes a full read takes.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from eucgate_client.tlog import EMPTY_ROOT, ProofError, leaf_hash, verify_inclusion
from rich.console import Console

from eucgate.cli.output import emit_json, fail
from eucgate.errors import EucgateError
from eucgate.store import Store, is_postgresql, open_store
from eucgate.store.postgresql import SCHEMA_VERSION, migrate, stored_version
from eucgate.store.sqlite import SQLITE_FILE, check_file
from eucgate.store.tree import checkpoint_ahead

db_app = typer.Typer(
    help="Create a store; migrate the PostgreSQL one; check one for damage.",
    no_args_is_help=True,
)

# `db check` found damage (README, "The command line": the audit log failed a check).
EXIT_DAMAGED = 6

_out = Console()

# The options `db init` and `db check` share: one store, SQLite's directory or a URL.
DataDirOption = Annotated[
    Path | None, typer.Option(envvar="EUCGATE_DATA_DIR", help="the SQLite store's directory")
]
StoreOption = Annotated[
    str | None, typer.Option(envvar="EUCGATE_STORE", help="or a postgresql://... URL")
]
JsonOption = Annotated[bool, typer.Option("--json", help="machine-readable output")]


def _one_store(data_dir: Path | None, store: str | None) -> None:
    """Refuse (exit 2) anything but one store: a SQLite data dir or a PostgreSQL URL."""
    if (data_dir is None) == (store is None):
        raise fail("give --data-dir (SQLite) or --store (PostgreSQL), not both", 2)
    if store is not None and not is_postgresql(store):
        raise fail("--store must be a postgresql:// URL", 2)


@db_app.command("migrate")
def migrate_command(
    store: Annotated[
        str,
        typer.Option(
            envvar="EUCGATE_STORE", help="postgresql://... URL of the store (or EUCGATE_STORE)"
        ),
    ],
    json_output: JsonOption = False,
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
    data_dir: DataDirOption = None,
    store: StoreOption = None,
    json_output: JsonOption = False,
) -> None:
    """Create a new, empty store (a new audit log) where there is none; an existing one
    is left as it is, and said so."""
    _one_store(data_dir, store)
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


@db_app.command("check")
def check_command(
    data_dir: DataDirOption = None,
    store: StoreOption = None,
    full: Annotated[
        bool,
        typer.Option(
            "--full", help="SQLite: PRAGMA integrity_check, also matching indexes to tables"
        ),
    ] = False,
    json_output: JsonOption = False,
) -> None:
    """Read a whole store for damage, which a server does not do at start: on SQLite
    every page (PRAGMA quick_check, --full integrity_check; read-only, so beside a
    server too; it reads the whole file), then the log's tree state against its
    stored nodes and newest entry; on PostgreSQL the log only (its pages are amcheck's),
    and only at this release's schema version (an older store is left to `db migrate`).
    Exit 0 sound, 6 damaged, 4 it could not be checked."""
    _one_store(data_dir, store)
    if store is not None and full:
        raise fail("--full is SQLite's integrity_check; PostgreSQL has amcheck", 2)
    try:
        if store is not None:
            where, check, version = "the PostgreSQL store", "log", SCHEMA_VERSION
            # A check changes nothing: a store a release behind is left to `db migrate`
            # (opening it, as a replica does, would migrate it).
            found_version = stored_version(store)
            if found_version is None:
                raise fail(f"{where} holds no eucgate store", 4)
            if found_version != SCHEMA_VERSION:
                raise fail(
                    f"{where} is at schema version {found_version}, this release reads "
                    f"{SCHEMA_VERSION}: run `eucgate db migrate` first (a check changes nothing)",
                    4,
                )
            opened = open_store(store, create=False)
            try:
                size: int | None = opened.tree_state().size
                problems = _log_problems(opened)
            finally:
                opened.close()
        else:
            assert data_dir is not None  # one of the two, checked above
            where = str(data_dir / SQLITE_FILE)
            found = check_file(data_dir / SQLITE_FILE, full=full)
            check, problems, size = found.check, list(found.problems), found.log_size
            version = found.schema_version or 0
    except EucgateError as exc:
        raise fail(str(exc), 4) from None
    if problems:
        listed = "".join(f"\n  {p}" for p in problems)
        raise fail(
            f"{where} is damaged ({check} found {len(problems)} problem(s)):{listed}\n"
            "restore it from a backup, and check it against an audit export with "
            "`eucgate audit verify`",
            EXIT_DAMAGED,
        )
    if json_output:
        emit_json({"store": where, "check": check, "schema_version": version, "log_size": size})
        return
    log = (
        f"log of {size} leaves sound"
        if size is not None
        else f"log not checked: schema version {version} is migrated at the next open"
    )
    _out.print(f"{where}: no damage found by {check}; {log}", highlight=False)


def _log_problems(store: Store) -> list[str]:
    """The log checks SQLite runs at open, through the store's own reads: the stored
    nodes on the newest leaf's inclusion path give the stored root, the newest entry
    hashes to that leaf, and the signed checkpoint is not ahead of the tree."""
    state, problems = store.tree_state(), []
    signed = store.latest_checkpoint()
    if ahead := checkpoint_ahead(None if signed is None else signed.size, state.size):
        problems.append(ahead)
    newest = store.entries(max(0, state.size - 1), 2)
    if state.size == 0:
        if state.root != EMPTY_ROOT or newest:
            problems.append("the tree is empty but its root or the log entries are not")
        return problems
    leaf, proof = store.inclusion_proof(state.size - 1, state.size)
    try:
        verify_inclusion(state.size - 1, state.size, leaf, proof, state.root)
    except ProofError:
        problems.append("the stored tree nodes do not give the stored root")
    if len(newest) != 1 or leaf_hash(newest[0]) != leaf:
        problems.append(f"the log entries do not end with leaf {state.size - 1}")
    return problems
