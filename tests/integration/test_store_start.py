"""The system of record never starts over by itself, never runs twice on one file, and
refuses a damaged or rolled-back store at start with a message, never a traceback."""

from __future__ import annotations

import json
import sqlite3
import subprocess
import sys
from pathlib import Path

import psycopg
import pytest
from eucgate.api.server import start_server
from eucgate.errors import StoreError
from eucgate.store import SqliteStore, open_store
from eucgate.store.postgresql import SCHEMA_VERSION as PG_SCHEMA_VERSION
from eucgate.store.sqlite import SQLITE_FILE

from tests.logdata import make_record
from tests.pgdb import fresh_schema

from .conftest import Env

TIMEOUT = 120
PAGE = 4096  # SQLite's default page size, which the store keeps


def eucgate(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "eucgate", *args],
        capture_output=True,
        text=True,
        timeout=TIMEOUT,
        check=False,
        env={"PATH": "/usr/bin:/bin", "NO_COLOR": "1", "COLUMNS": "200"},
    )


def serve_args(env: Env, data_dir: Path) -> list[str]:
    return [
        "serve",
        "--listen", "127.0.0.1:0",
        "--data-dir", str(data_dir),
        "--bundle", str(env.signed_bundle),
        "--policy-admin-key", str(env.admin_public_key),
        "--service-key", str(env.pki.service_key),
        "--insecure",
    ]  # fmt: skip


def test_a_missing_or_empty_store_is_refused_not_started_afresh(env: Env, tmp_path: Path) -> None:
    data_dir = tmp_path / "var"
    with pytest.raises(StoreError, match="no store here"):
        start_server(env.settings(data_dir, init_store=False))
    assert not (data_dir / SQLITE_FILE).exists()
    data_dir.mkdir()
    (data_dir / SQLITE_FILE).write_bytes(b"")  # an emptied file
    with pytest.raises(StoreError, match="no store here"):
        start_server(env.settings(data_dir, init_store=False))
    # The command line says the same, with what to do, and no traceback.
    refused = eucgate(*serve_args(env, tmp_path / "elsewhere"))
    assert refused.returncode == 1
    assert "eucgate db init" in refused.stderr
    assert "Traceback" not in refused.stderr


def test_db_init_creates_the_store_once(env: Env, tmp_path: Path) -> None:
    data_dir = tmp_path / "var"
    made = eucgate("db", "init", "--data-dir", str(data_dir), "--json")
    assert made.returncode == 0, made.stderr
    assert '"created": true' in made.stdout
    again = eucgate("db", "init", "--data-dir", str(data_dir), "--json")
    assert '"created": false' in again.stdout
    running = start_server(env.settings(data_dir, init_store=False))
    running.stop(grace=0)


def test_a_store_in_use_is_refused_to_a_second_server(env: Env, tmp_path: Path) -> None:
    first = start_server(env.settings(tmp_path / "var"))
    try:
        with pytest.raises(StoreError, match="another eucgate process"):
            start_server(env.settings(tmp_path / "var"))
        second = eucgate(*serve_args(env, tmp_path / "var"))
        assert second.returncode == 1
        assert "another eucgate process" in second.stderr
        assert "Traceback" not in second.stderr
    finally:
        first.stop(grace=0)
    # Released with the first: the store opens again.
    start_server(env.settings(tmp_path / "var", init_store=False)).stop(grace=0)


def test_damage_is_found_by_db_check_and_refused_at_start_only_where_open_reads(
    env: Env, tmp_path: Path
) -> None:
    # Open reads only what the next append depends on (not every page, which took over
    # half an hour for a million decisions): damaged pages of old log entries do not
    # stop a server; `eucgate db check` reads them all and says so (exit 6).
    data_dir = tmp_path / "var"
    path = data_dir / SQLITE_FILE
    store = SqliteStore.open(path)
    for n in range(200):
        store.append(make_record(n))
    old = store.entries(0, 5)
    store.close()
    sound = eucgate("db", "check", "--data-dir", str(data_dir), "--json")
    assert sound.returncode == 0, sound.stderr
    assert json.loads(sound.stdout)["log_size"] == 200
    with sqlite3.connect(path) as conn:  # fold the WAL into the file
        conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    data = bytearray(path.read_bytes())
    for entry in old:  # zero the pages holding the oldest entries, as bad blocks read
        at = data.find(entry) // PAGE * PAGE
        data[at : at + PAGE] = bytes(PAGE)
    path.write_bytes(bytes(data))
    start_server(env.settings(data_dir, init_store=False)).stop(grace=0)
    for options in ((), ("--full",)):
        checked = eucgate("db", "check", "--data-dir", str(data_dir), *options)
        assert checked.returncode == 6, checked.stderr
        assert "damaged" in checked.stderr
        assert "Traceback" not in checked.stderr
    as_json = eucgate("db", "check", "--data-dir", str(data_dir), "--json")
    assert json.loads(as_json.stdout)["error"]["exit_code"] == as_json.returncode == 6
    # A damaged page that open does read (the tree state) is refused at start.
    with sqlite3.connect(path) as conn:
        tree_state = conn.execute("SELECT rootpage FROM sqlite_master WHERE name = 'tree_state'")
        page = int(tree_state.fetchone()[0])
    with path.open("r+b") as f:
        f.seek((page - 1) * PAGE)
        f.write(bytes(PAGE))
    with pytest.raises(StoreError, match="damaged"):
        SqliteStore.open(path, create=False)
    refused = eucgate(*serve_args(env, data_dir))
    assert refused.returncode == 1
    assert "damaged" in refused.stderr
    assert "eucgate db check" in refused.stderr
    assert "Traceback" not in refused.stderr


def test_db_check_takes_one_store(tmp_path: Path) -> None:
    both = eucgate("db", "check", "--data-dir", str(tmp_path), "--store", "postgresql://x")
    assert both.returncode == 2
    none = eucgate("db", "check", "--data-dir", str(tmp_path / "none"))
    assert none.returncode == 4
    assert "no store here" in none.stderr


def test_a_store_behind_its_signed_checkpoint_is_refused(env: Env, tmp_path: Path) -> None:
    running = start_server(env.settings(tmp_path / "var"))
    running.stop(grace=0)
    with sqlite3.connect(tmp_path / "var" / SQLITE_FILE) as conn:
        conn.execute("UPDATE checkpoint SET size = 99 WHERE id = 0")  # signed more than held
    with pytest.raises(StoreError, match="rolled back or replaced"):
        start_server(env.settings(tmp_path / "var", init_store=False))


def test_postgresql_is_never_initialised_by_a_server_that_was_not_told(
    env: Env, tmp_path: Path
) -> None:
    with fresh_schema() as url:
        with pytest.raises(StoreError, match="holds no eucgate store"):
            start_server(env.settings(tmp_path, store=url, init_store=False))
        made = eucgate("db", "init", "--store", url)
        assert made.returncode == 0, made.stderr
        store = open_store(url, create=False)
        store.close()
        with psycopg.connect(url, autocommit=True) as conn:
            conn.execute("INSERT INTO checkpoint (id, size, note) VALUES (0, 99, 'x')")
        with pytest.raises(StoreError, match="rolled back or replaced"):
            open_store(url, create=False)


def test_db_check_on_postgresql_checks_the_log(tmp_path: Path) -> None:
    # Its pages are PostgreSQL's to check; the log's tree state is eucgate's.
    with fresh_schema() as url:
        store = open_store(url)
        for n in range(5):
            store.append(make_record(n))
        store.close()
        sound = eucgate("db", "check", "--store", url, "--json")
        assert sound.returncode == 0, sound.stdout
        assert json.loads(sound.stdout)["log_size"] == 5
        assert eucgate("db", "check", "--store", url, "--full").returncode == 2
        with psycopg.connect(url, autocommit=True) as conn:  # a store a release behind
            conn.execute("UPDATE schema_version SET version = version - 1")
        behind = eucgate("db", "check", "--store", url)
        assert behind.returncode == 4
        assert "db migrate" in behind.stderr
        with psycopg.connect(url, autocommit=True) as conn:  # the check migrated nothing
            row = conn.execute("SELECT version FROM schema_version").fetchone()
            assert row is not None
            assert row[0] == PG_SCHEMA_VERSION - 1
            conn.execute("UPDATE schema_version SET version = version + 1")
        with psycopg.connect(url, autocommit=True) as conn:
            conn.execute("UPDATE tree_state SET root = %s", (bytes(32),))
        damaged = eucgate("db", "check", "--store", url)
        assert damaged.returncode == 6
        assert "do not give the stored root" in damaged.stderr
