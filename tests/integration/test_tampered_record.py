"""A state change reads the signed record, not a database column: with write access to
the store, turning an approval into a referral (its `outcome` column, or the outcome in
its decision bytes) does not let a review approve it again and take the quota twice."""

from __future__ import annotations

import sqlite3
from collections.abc import Callable, Iterator
from contextlib import nullcontext
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path

import grpc
import psycopg
import pytest
from eucgate import samples
from eucgate.api.server import RunningServer, start_server
from eucgate_client.client import ApiError, CertificateClient, LicenceClient, ReviewClient
from eucgate_client.v1 import decision_pb2

from tests.pgdb import fresh_schema

from .conftest import Env
from .test_quota import LICENCE, small_quota_bundle

Tamper = Callable[[str, bool], None]  # (decision id, the decision bytes too)

OUTCOME = "UPDATE decisions SET outcome = 'REFERRED' WHERE decision_id = {p}"
# The same, and the outcome inside the decision bytes (canonical JSON).
BYTES = {
    "sqlite": "UPDATE decisions SET outcome = 'REFERRED', decision = CAST(REPLACE("
    "CAST(decision AS TEXT), '\"APPROVED\"', '\"REFERRED\"') AS BLOB) WHERE decision_id = {p}",
    "postgresql": "UPDATE decisions SET outcome = 'REFERRED', decision = convert_to(replace("
    "convert_from(decision, 'UTF8'), '\"APPROVED\"', '\"REFERRED\"'), 'UTF8') "
    "WHERE decision_id = {p}",
}


@pytest.fixture(params=["sqlite", "postgresql"])
def tampering(
    request: pytest.FixtureRequest, env: Env, tmp_path: Path
) -> Iterator[tuple[RunningServer, Tamper]]:
    kind = str(request.param)
    bundle = small_quota_bundle(env, tmp_path, "1000")
    with nullcontext("") if kind == "sqlite" else fresh_schema() as url:
        server = start_server(
            env.settings(tmp_path / "store", bundle_path=bundle, **({"store": url} if url else {}))
        )

        def tamper(decision_id: str, decision_too: bool) -> None:
            sql = BYTES[kind] if decision_too else OUTCOME
            if url:
                with psycopg.connect(url, autocommit=True) as conn:
                    conn.execute(sql.format(p="%s").encode(), (decision_id,))
                    row = conn.execute("SELECT decision FROM decisions WHERE decision_id = %s",
                                       (decision_id,)).fetchone()  # fmt: skip
            else:
                with sqlite3.connect(tmp_path / "store" / "eucgate.db") as conn:
                    conn.execute(sql.format(p="?"), (decision_id,))
                    row = conn.execute("SELECT decision FROM decisions WHERE decision_id = ?",
                                       (decision_id,)).fetchone()  # fmt: skip
            assert row is not None
            assert (b'"REFERRED"' in bytes(row[0])) == decision_too

        try:
            yield server, tamper
        finally:
            server.stop(grace=1)


@pytest.mark.parametrize("decision_too", [False, True], ids=["outcome column", "and bytes"])
def test_an_approval_turned_into_a_referral_cannot_be_approved_again(
    env: Env, tampering: tuple[RunningServer, Tamper], decision_too: bool
) -> None:
    server, tamper = tampering
    with grpc.insecure_channel(f"127.0.0.1:{server.port}") as channel:
        cert = samples.certificate(datetime.now(UTC), number="TAMPER-1")
        cert.items[0].quantity.value = "100"
        approved = CertificateClient(channel).submit(env.sign(cert)).decision
        assert approved.outcome == decision_pb2.OUTCOME_APPROVED
        tamper(approved.decision_id, decision_too)
        with pytest.raises(ApiError) as refused:
            ReviewClient(channel).resolve(approved.decision_id, approve=True, reason="looks fine")
        assert refused.value.code == grpc.StatusCode.FAILED_PRECONDITION
        assert refused.value.reason == "RECORD_NOT_AUTHENTIC"
        (row,) = LicenceClient(channel).balance(LICENCE, "1C904").balances
        assert Decimal(row.approved) == Decimal(100)
