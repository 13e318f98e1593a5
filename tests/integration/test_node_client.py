"""A Node.js caller built from proto/ alone (grpc-js + proto-loader) against the real server.

ERP systems are rarely Python; this is the proof that the proto is the product. The
Node side also verifies the receipt with node:crypto, an independent DSSE/Ed25519 path.
"""

from __future__ import annotations

import json
import subprocess
from datetime import UTC, datetime
from pathlib import Path

import pytest
from eucgate import samples
from eucgate.api.server import RunningServer

from .conftest import Env, node_for

HERE = Path(__file__).resolve().parent / "node"
PROTO = Path(__file__).resolve().parents[2] / "proto"


@pytest.fixture(scope="module")
def node() -> str:
    return node_for(HERE)


def test_node_erp_submits_and_verifies_receipt(
    node: str, server: RunningServer, env: Env, tmp_path: Path
) -> None:
    envelope = tmp_path / "euc.dsse.json"
    envelope.write_bytes(env.sign(samples.certificate(datetime.now(UTC))).to_json())
    result = subprocess.run(
        [
            node,
            "submit.mjs",
            str(PROTO),
            f"127.0.0.1:{server.port}",
            str(envelope),
            str(env.pki.service_public_key),
        ],
        cwd=HERE,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    answer = json.loads(result.stdout)
    assert answer["outcome"] == "OUTCOME_APPROVED"
    assert answer["receipt_verified"] is True
    assert answer["statement_decision_id"] == answer["decision_id"]
