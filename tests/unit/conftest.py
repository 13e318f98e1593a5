"""Store fixtures for the store tests: each test gets a fresh store of each kind.

`location` is where it lives: a SQLite file path, or a PostgreSQL URL on a schema of its
own (created and dropped around the test). Tests of one store only are marked
`@sqlite_only`.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from eucgate.store import Store

from tests.pgdb import fresh_schema

STORES = ["sqlite", "postgresql"]
AnyStore = Store  # the contract both drivers keep: every store test runs on each
# `@sqlite_only` pins `location` (and so `store`) to the SQLite file at `db_path`.
sqlite_only = pytest.mark.parametrize("location", ["sqlite"], indirect=True)


@pytest.fixture
def db_path(tmp_path: Path) -> Path:
    return tmp_path / "decisions.db"


@pytest.fixture(params=STORES)
def location(request: pytest.FixtureRequest, db_path: Path) -> Iterator[str]:
    """Where a fresh store lives: a SQLite file path, or a PostgreSQL URL."""
    if request.param == "sqlite":
        yield str(db_path)
    else:
        with fresh_schema() as url:
            yield url
