"""The PostgreSQL server the tests share (127.0.0.1:5432, database `test`, trust auth;
`.ci/run` starts it), and a fresh schema per use so runs and tests never collide.

Set EUCGATE_TEST_POSTGRES to use another server. Without one, PostgreSQL tests fail in CI
(the CI variable is set) and are skipped, saying why, elsewhere.
"""

from __future__ import annotations

import os
import secrets
from collections.abc import Iterator
from contextlib import contextmanager
from urllib.parse import quote

import psycopg
import pytest

SERVER = os.environ.get("EUCGATE_TEST_POSTGRES", "postgresql://postgres@127.0.0.1:5432/test")


def require_postgres() -> str:
    """The server URL; fails the test in CI when it is unreachable, else skips it."""
    try:
        with psycopg.connect(SERVER, connect_timeout=3) as conn:
            conn.execute("SELECT 1")
    except psycopg.Error as exc:
        message = f"PostgreSQL at {SERVER} is unreachable ({exc.__class__.__name__}: {exc})"
        if os.environ.get("CI"):
            pytest.fail(message + "; CI starts it in .ci/run")
        pytest.skip(message + "; start it (see .ci/run) to run these tests")
    return SERVER


def schema_url(schema: str) -> str:
    """The server URL with `schema` as the search path, as a store or replica takes it."""
    return f"{SERVER}?options={quote(f'-c search_path={schema}')}"


@contextmanager
def fresh_schema() -> Iterator[str]:
    """A store URL on a new, empty schema, dropped with everything in it afterwards."""
    require_postgres()
    schema = f"eucgate_test_{secrets.token_hex(6)}"
    with psycopg.connect(SERVER, autocommit=True) as conn:
        conn.execute(f"CREATE SCHEMA {schema}")
    try:
        yield schema_url(schema)
    finally:
        with psycopg.connect(SERVER, autocommit=True) as conn:
            conn.execute(f"DROP SCHEMA {schema} CASCADE")
