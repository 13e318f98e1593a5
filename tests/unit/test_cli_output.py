"""The CLI's one JSON convention, and gRPC core's plain-text lines kept in the JSON log."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from eucgate.cli.corelog import core_line_event
from eucgate.cli.output import proto_dict
from eucgate_client.v1 import decision_pb2

SERVICE = Path(__file__).resolve().parents[2] / "service"


def test_enums_by_the_names_flags_take_and_int64_as_numbers() -> None:
    decision = decision_pb2.Decision(
        decision_id="dec_1",
        outcome=decision_pb2.OUTCOME_REFERRED,
        reasons=[
            decision_pb2.Reason(
                rule_id="EUS-003",
                family=decision_pb2.RULE_FAMILY_EUS,
                outcome=decision_pb2.RULE_OUTCOME_REFER,
            )
        ],
    )
    doc = proto_dict(decision)
    assert doc["outcome"] == "REFERRED"
    assert doc["reasons"][0]["outcome"] == "REFER"
    assert doc["reasons"][0]["family"] == "EUS"
    assert doc["licence_number"] == ""  # every field present
    receipt = proto_dict(decision_pb2.Receipt(leaf_index=7))
    assert receipt["leaf_index"] == 7
    assert receipt["inclusion_proof"] == []


def test_a_grpc_core_line_becomes_a_json_event() -> None:
    line = (
        "E1201 01:02:03.456789   4242 ssl_transport_security.cc:1659] Handshake failed "
        "with error SSL_ERROR_SSL: error:10000412:SSL routines:OPENSSL_internal:"
        "SSLV3_ALERT_BAD_CERTIFICATE\n"
    )
    event = json.loads(core_line_event(line))
    assert event["event"] == "grpc_core"
    assert event["level"] == "error"
    assert event["message"].startswith("Handshake failed")
    assert event["source"] == "ssl_transport_security.cc:1659"
    already = '{"event": "decision", "level": "info"}'
    assert core_line_event(already + "\n") == already
    assert json.loads(core_line_event("free text\n"))["message"] == "free text"


def test_every_line_on_descriptor_2_comes_out_as_json() -> None:
    """What the C core does (writes to descriptor 2 behind Python's back), for real."""
    script = (
        "import os, sys\n"
        "from eucgate.cli.corelog import json_stderr\n"
        "json_stderr()\n"
        "os.write(2, b'E1201 01:02:03.456789 7 tcp.cc:12] Handshake failed\\n')\n"
        'print(\'{"event": "serving"}\', file=sys.stderr)\n'
    )
    done = subprocess.run(
        [sys.executable, "-c", script],
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
        env={"PYTHONPATH": str(SERVICE)},
    )
    events = [json.loads(line) for line in done.stderr.splitlines()]
    assert [e["event"] for e in events] == ["grpc_core", "serving"]
    assert events[0]["message"] == "Handshake failed"
