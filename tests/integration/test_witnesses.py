"""The server with two witnesses over loopback HTTP (C2SP tlog-witness).

Checkpoints get cosigned and receipts carry the cosignatures; a witness that is down
delays only the witnessed status, never a decision; a forked log (the same log key
signing two trees of one size) is refused by the witnesses and detected by a client.
"""

from __future__ import annotations

import contextlib
import json
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import grpc
import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from eucgate import samples
from eucgate.api.server import RunningServer, start_server
from eucgate.log.checkpoint import CheckpointSigner
from eucgate.log.witness import (
    AddCheckpoint,
    Cosigner,
    Witness,
    WitnessHttpServer,
    WitnessState,
    start_witness,
)
from eucgate.signing import load_private_key
from eucgate_client.client import AuditClient, CertificateClient
from eucgate_client.tlog import (
    CheckpointError,
    NoteVerifier,
    ProofError,
    WitnessVerifier,
    leaf_hash,
    open_checkpoint,
    verify_consistency,
    verify_cosignatures,
    verify_logged_receipt,
)

from tests.integration.conftest import Env
from tests.integration.test_cli import eucgate
from tests.pgdb import fresh_schema

ORIGIN = "eucgate.example/log"
WAIT_SECONDS = 20.0


@dataclass
class RunningWitness:
    """One witness on a loopback port; `stop` and `start` it again on the same port."""

    witness: Witness
    state: WitnessState
    httpd: WitnessHttpServer | None = None
    thread: threading.Thread | None = None
    port: int = 0

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def verifier(self) -> WitnessVerifier:
        return self.witness.verifier

    def start(self) -> None:
        self.httpd, self.thread = start_witness(("127.0.0.1", self.port), self.witness)
        self.port = self.httpd.port

    def stop(self) -> None:
        if self.httpd is not None and self.thread is not None:
            self.httpd.shutdown()
            self.thread.join(5)
            self.httpd.server_close()
            self.httpd = None


def _log_key(env: Env) -> Ed25519PrivateKey:
    key = load_private_key(env.pki.service_key)
    assert isinstance(key, Ed25519PrivateKey)
    return key


@pytest.fixture
def log_verifier(env: Env) -> NoteVerifier:
    return NoteVerifier.from_key(ORIGIN, _log_key(env).public_key())


@pytest.fixture
def witnesses(tmp_path: Path, log_verifier: NoteVerifier) -> Iterator[list[RunningWitness]]:
    running = []
    for name in ("customs.example/witness", "auditor.example/witness"):
        state = WitnessState(tmp_path / name.split(".")[0] / "witness.db")
        cosigner = Cosigner(name, Ed25519PrivateKey.generate())
        w = RunningWitness(Witness(cosigner, {ORIGIN: [log_verifier]}, state), state)
        w.start()
        running.append(w)
    yield running
    for w in running:
        w.stop()
        w.state.close()


@pytest.fixture(params=["sqlite", "postgresql"])
def witnessed_server(
    request: pytest.FixtureRequest, env: Env, tmp_path: Path, witnesses: list[RunningWitness]
) -> Iterator[RunningServer]:
    """The server on each store: both keep the checkpoints and the cosignatures."""
    with contextlib.ExitStack() as stack:
        store = stack.enter_context(fresh_schema()) if request.param == "postgresql" else ""
        settings = env.settings(
            tmp_path / "store",
            store=store,
            witnesses=[{"url": w.url, "verifier_key": str(w.verifier)} for w in witnesses],
            witness_quorum=2,
            witness_interval_seconds=0.05,
        )
        running = start_server(settings)
        yield running
        running.stop(grace=1)


@pytest.fixture
def channel(witnessed_server: RunningServer) -> Iterator[grpc.Channel]:
    with grpc.insecure_channel(f"127.0.0.1:{witnessed_server.port}") as ch:
        grpc.channel_ready_future(ch).result(timeout=10)
        yield ch


def _submit(channel: grpc.Channel, env: Env, number: str) -> Any:
    euc = samples.certificate(datetime.now(UTC), number=number)
    return CertificateClient(channel, timeout=20).submit(env.sign(euc))


def _until(condition: Callable[[], bool], what: str) -> None:
    deadline = time.monotonic() + WAIT_SECONDS
    while not condition():
        if time.monotonic() > deadline:
            pytest.fail(f"timed out waiting for {what}")
        time.sleep(0.05)


def test_checkpoints_get_cosigned_and_receipts_carry_them(
    channel: grpc.Channel,
    env: Env,
    witnesses: list[RunningWitness],
    log_verifier: NoteVerifier,
) -> None:
    audit = AuditClient(channel, timeout=20)
    responses = [_submit(channel, env, f"EUC-W-{i}") for i in range(3)]
    size = audit.get_checkpoint().tree_size
    _until(lambda: audit.get_checkpoint().witnessed_tree_size == size, "the witnesses")
    answer = audit.get_checkpoint()
    witnessed = open_checkpoint(answer.witnessed_checkpoint, log_verifier)
    keys = [w.verifier for w in witnesses]
    assert set(verify_cosignatures(witnessed, keys, 2)) == {k.name for k in keys}
    # The latest checkpoint carries them too, and so does a receipt looked up now.
    assert answer.checkpoint == answer.witnessed_checkpoint
    service_key = env.pki.service_public_key.read_bytes()
    decision_id = responses[0].decision.decision_id
    looked_up = CertificateClient(channel, timeout=20).get_decision(decision_id).receipt
    logged = verify_logged_receipt(
        looked_up, service_key, log_verifier, witnesses=keys, threshold=2
    )
    assert logged.checkpoint.size == size
    # The receipt of the submission itself came before the witnesses answered: it
    # verifies with the log key alone, and a client asking for 2 witnesses is told so.
    first = responses[-1].receipt
    verify_logged_receipt(first, service_key, log_verifier)
    with pytest.raises(CheckpointError) as caught:
        verify_logged_receipt(first, service_key, log_verifier, witnesses=keys, threshold=2)
    assert caught.value.reason == "CHECKPOINT_NOT_WITNESSED"
    # An inclusion proof at the witnessed size comes with the cosigned checkpoint.
    proof = audit.inclusion_proof(decision_id=decision_id, tree_size=size)
    verify_cosignatures(open_checkpoint(proof.checkpoint, log_verifier), keys, 2)


def test_a_witness_down_delays_only_the_witnessed_status(
    channel: grpc.Channel,
    env: Env,
    witnesses: list[RunningWitness],
    witnessed_server: RunningServer,
) -> None:
    audit = AuditClient(channel, timeout=20)
    _submit(channel, env, "EUC-W-UP")
    _until(lambda: audit.get_checkpoint().witnessed_tree_size == 1, "the witnesses")
    down = witnesses[1]
    down.stop()
    started = time.monotonic()
    outcomes = [_submit(channel, env, f"EUC-W-DOWN-{i}").decision.outcome for i in range(3)]
    elapsed = time.monotonic() - started
    assert len(outcomes) == 3
    assert elapsed < 10, f"decisions took {elapsed:.1f} s with a witness down"
    size = audit.get_checkpoint().tree_size
    assert size == 4
    assert witnessed_server.witnessing is not None
    _until(
        lambda: (
            witnessed_server.witnessing is not None
            and bool(witnessed_server.witnessing.status()[down.verifier.name].failing)
        ),
        "the failure to be seen",
    )
    assert audit.get_checkpoint().witnessed_tree_size == 1
    # Back up (same port, same state): it catches up from the size it holds.
    down.start()
    _until(lambda: audit.get_checkpoint().witnessed_tree_size == size, "the witness to catch up")
    assert witnesses[1].state.size(ORIGIN) == size
    registry = witnessed_server.metrics.registry
    assert registry.get_sample_value("eucgate_witnessed_tree_size") == size
    failed = registry.get_sample_value(
        "eucgate_witness_submissions_total",
        {"witness": down.verifier.name, "result": "unreachable"},
    )
    assert failed is not None
    assert failed >= 1


def test_a_forked_log_is_refused_and_detected(
    channel: grpc.Channel,
    env: Env,
    witnesses: list[RunningWitness],
    log_verifier: NoteVerifier,
) -> None:
    """The operator signs, with the real log key, a second tree of the size the
    witnesses hold. No witness cosigns it; a client requiring cosignatures refuses it,
    and a client holding the witnessed checkpoint sees the two roots cannot both be."""
    audit = AuditClient(channel, timeout=20)
    for i in range(2):
        _submit(channel, env, f"EUC-W-FORK-{i}")
    _until(lambda: audit.get_checkpoint().witnessed_tree_size == 2, "the witnesses")
    honest = open_checkpoint(audit.get_checkpoint().witnessed_checkpoint, log_verifier)
    forger = CheckpointSigner(ORIGIN, _log_key(env))
    forked_root = leaf_hash(b"a history shown to one auditor only")
    forked_note = forger.sign(honest.size, forked_root)
    for w in witnesses:
        request = AddCheckpoint(honest.size, (), forked_note)
        with pytest.raises(urllib.error.HTTPError) as caught:
            urllib.request.urlopen(
                urllib.request.Request(f"{w.url}/add-checkpoint", request.body(), method="POST"),
                timeout=5,
            )
        assert caught.value.code == 409
        assert w.state.size(ORIGIN) == honest.size
    forked = open_checkpoint(forked_note, log_verifier)  # the log key did sign it
    with pytest.raises(CheckpointError) as refused:
        verify_cosignatures(forked, [w.verifier for w in witnesses], 1)
    assert refused.value.reason == "CHECKPOINT_NOT_WITNESSED"
    with pytest.raises(ProofError):
        verify_consistency(honest.size, forked.size, honest.root, forked.root, [])


def test_witness_cli_and_auditor_cli(
    tmp_path: Path, env: Env, witnesses: list[RunningWitness], log_verifier: NoteVerifier
) -> None:
    """`eucgate witness keygen|serve` as its own process next to an in-process witness;
    then `eucgate audit checkpoint|prove|export|verify` with both witness keys pinned."""
    made = eucgate("witness", "keygen", str(tmp_path / "w"), "--name", "ops.example/witness")
    assert made.returncode == 0, made.stderr
    cli_key = made.stdout.strip()
    assert WitnessVerifier.parse(cli_key).name == "ops.example/witness"
    again = eucgate("witness", "keygen", str(tmp_path / "w"), "--name", "ops.example/witness")
    assert again.returncode == 1  # a witness keeps its key
    process = subprocess.Popen(
        [
            sys.executable,
            "-u",
            "-m",
            "eucgate",
            "witness",
            "serve",
            "--name",
            "ops.example/witness",
            "--data-dir",
            str(tmp_path / "w"),
            "--listen",
            "127.0.0.1:0",
            "--log-key",
            str(log_verifier),
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
        env={"PATH": "/usr/bin:/bin"},
    )
    try:
        assert process.stdout is not None
        serving = json.loads(process.stdout.readline())
        assert serving["verifier_key"] == cli_key
        url = f"http://127.0.0.1:{serving['port']}"
        pinned = [witnesses[0].verifier, WitnessVerifier.parse(cli_key)]
        settings = env.settings(
            tmp_path / "store",
            witnesses=[
                {"url": witnesses[0].url, "verifier_key": str(pinned[0])},
                {"url": url, "verifier_key": cli_key},
            ],
            witness_interval_seconds=0.05,
        )
        running = start_server(settings)
        try:
            address = f"127.0.0.1:{running.port}"
            with grpc.insecure_channel(address) as channel:
                decision_id = _submit(channel, env, "EUC-W-CLI").decision.decision_id
                audit = AuditClient(channel, timeout=20)
                _until(lambda: audit.get_checkpoint().witnessed_tree_size == 1, "witnesses")
            keys = [arg for k in pinned for arg in ("--witness-key", str(k))]
            common = ["-s", address, "--insecure", "--log-key", str(log_verifier)]
            shown = eucgate("audit", "checkpoint", *common, *keys, "--json")
            assert shown.returncode == 0, shown.stderr
            assert sorted(json.loads(shown.stdout)["witnesses"]) == sorted(k.name for k in pinned)
            stranger = str(Cosigner("x.example/w", Ed25519PrivateKey.generate()).verifier)
            lacking = eucgate("audit", "checkpoint", *common, *keys, "--witness-key", stranger)
            assert lacking.returncode == 6
            assert "CHECKPOINT_NOT_WITNESSED" in lacking.stderr
            proved = eucgate(
                "audit", "prove", *common, *keys, "--decision-id", decision_id, "--json"
            )
            assert proved.returncode == 0, proved.stderr
            assert json.loads(proved.stdout)["verified"] is True
            exported = tmp_path / "export"
            done = eucgate("audit", "export", str(exported), *common, "--witnessed")
            assert done.returncode == 0, done.stderr
            verified = eucgate(
                "audit",
                "verify",
                str(exported),
                "--log-key",
                str(log_verifier),
                *keys,
                "--witnesses-required",
                "2",
            )
            assert verified.returncode == 0, verified.stderr
            one_more = eucgate(
                "audit",
                "verify",
                str(exported),
                "--log-key",
                str(log_verifier),
                *keys,
                "--witness-key",
                stranger,
            )
            assert one_more.returncode == 6
            assert "CHECKPOINT_NOT_WITNESSED" in one_more.stderr
        finally:
            running.stop(grace=1)
    finally:
        process.terminate()
        process.wait(10)
