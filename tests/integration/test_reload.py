"""Bundle reload through the real server: PolicyService.ReloadBundle and SIGHUP switch to
a newly signed bundle atomically, refuse a bad one while the old one keeps serving, and
every bundle used stays in the store."""

from __future__ import annotations

import dataclasses
import json
import os
import shutil
import signal
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from pathlib import Path

import grpc
import pytest
import yaml
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from eucgate import samples
from eucgate.api.server import RunningServer, start_server
from eucgate.cli.keys import load_admin_private_key, policy_admin_key, write_signed_bundle
from eucgate.core.bundleload import parse_bundle
from eucgate.core.canonical import canonical_json
from eucgate.core.pki import keyid
from eucgate.core.signedbundle import BUNDLE_PAYLOAD_TYPE
from eucgate.policyfiles import load_bundle
from eucgate_client.client import ApiError, CertificateClient, api_error
from eucgate_client.dsse import Envelope, Signature
from eucgate_client.v1 import decision_pb2
from eucgate_client.v1 import policy_service_pb2 as policy_pb2
from eucgate_client.v1 import policy_service_pb2_grpc as policy_grpc

from .conftest import Env
from .test_process import server_process

APPROVED, REJECTED = decision_pb2.OUTCOME_APPROVED, decision_pb2.OUTCOME_REJECTED


def _without_importers(env: Env, directory: Path) -> Path:
    """`env`'s bundle with no licensed importer (so the sample EUC gets PTY-001), signed."""
    doc = yaml.safe_load(env.bundle.read_text())
    doc["name"] += " without importers"
    doc["licensed_importers"] = []
    source = directory / "no-importers.yaml"
    source.write_text(yaml.safe_dump(doc, sort_keys=False, allow_unicode=True))
    return write_signed_bundle(source, env.admin_key, directory / "no-importers.dsse.json")


def _install(source: Path, target: Path) -> None:
    """Replace the served file in one step, as an operator's deploy should."""
    staged = target.with_name(target.name + ".new")
    shutil.copyfile(source, staged)
    os.replace(staged, target)


class _Policy:
    def __init__(self, channel: grpc.Channel) -> None:
        self._stub = policy_grpc.PolicyServiceStub(channel)

    def get(self) -> policy_pb2.ActiveBundle:
        response: policy_pb2.GetBundleResponse = self._stub.GetBundle(
            policy_pb2.GetBundleRequest(), timeout=10
        )
        return response.bundle

    def reload(self) -> policy_pb2.ReloadBundleResponse:
        try:
            response: policy_pb2.ReloadBundleResponse = self._stub.ReloadBundle(
                policy_pb2.ReloadBundleRequest(), timeout=30
            )
        except grpc.RpcError as exc:
            raise api_error(exc) from None
        return response


@pytest.fixture
def served(env: Env, tmp_path: Path) -> Path:
    """The bundle file the test server reads; tests replace it."""
    path = tmp_path / "served.dsse.json"
    shutil.copyfile(env.signed_bundle, path)
    return path


@pytest.fixture
def running(env: Env, served: Path, tmp_path: Path) -> Iterator[RunningServer]:
    server = start_server(env.settings(tmp_path / "store", bundle_path=served))
    yield server
    server.stop(grace=1)


@pytest.fixture
def channel(running: RunningServer) -> Iterator[grpc.Channel]:
    with grpc.insecure_channel(f"127.0.0.1:{running.port}") as ch:
        grpc.channel_ready_future(ch).result(timeout=10)
        yield ch


def test_reload_switches_the_digest_decisions_record(
    env: Env, served: Path, running: RunningServer, channel: grpc.Channel, tmp_path: Path
) -> None:
    policy, client = _Policy(channel), CertificateClient(channel, timeout=20)
    old = load_bundle(env.bundle)
    before = policy.get()
    assert (before.digest, before.name) == (old.digest, old.name)
    assert client.submit(env.sign(samples.certificate(datetime.now(UTC)))).decision.outcome == (
        APPROVED
    )

    new_file = _without_importers(env, tmp_path)
    _install(new_file, served)
    answer = policy.reload()
    assert answer.previous_digest == old.digest
    assert answer.bundle.digest != old.digest
    assert answer.bundle.name == old.name + " without importers"
    assert answer.bundle.loaded_at.ToDatetime(tzinfo=UTC) >= before.loaded_at.ToDatetime(tzinfo=UTC)
    assert policy.get() == answer.bundle

    decision = client.submit(env.sign(samples.certificate(datetime.now(UTC)))).decision
    assert decision.bundle_digest == answer.bundle.digest
    assert decision.outcome == REJECTED
    assert "PTY-001" in [r.rule_id for r in decision.reasons]
    # Both bundles are kept, byte for byte, for replay.
    for digest in (old.digest, answer.bundle.digest):
        stored = running.store.get_bundle(digest)
        assert stored is not None
        assert parse_bundle(stored.decode(), "stored").digest == digest

    # The same file again changes nothing, not even the load time.
    again = policy.reload()
    assert again.bundle == answer.bundle
    assert again.previous_digest == answer.bundle.digest


@pytest.mark.parametrize("bad", ["unsigned", "other_key", "tampered", "invalid", "missing"])
def test_a_bad_bundle_is_refused_and_the_old_one_keeps_serving(
    bad: str,
    env: Env,
    served: Path,
    channel: grpc.Channel,
    tmp_path: Path,
) -> None:
    policy, client = _Policy(channel), CertificateClient(channel, timeout=20)
    before = policy.get()
    expected = {
        "unsigned": "BUNDLE_UNSIGNED",
        "other_key": "BUNDLE_SIGNATURE_INVALID",
        "tampered": "BUNDLE_SIGNATURE_INVALID",
        "invalid": "BUNDLE_INVALID",
        "missing": "BUNDLE_UNREADABLE",
    }[bad]
    if bad == "unsigned":
        _install(env.bundle, served)
    elif bad == "other_key":
        other, _ = policy_admin_key(tmp_path / "intruder")
        _install(write_signed_bundle(env.bundle, other, tmp_path / "intruder.dsse.json"), served)
    elif bad == "tampered":
        text = served.read_text()
        signed = _without_importers(env, tmp_path).read_text()
        # The new payload under the old signature.
        doc, new = json.loads(text), json.loads(signed)
        doc["payload"] = new["payload"]
        served.write_text(json.dumps(doc))
    elif bad == "invalid":
        doc = json.loads(load_bundle(env.bundle).canonical())
        doc["parameters"]["max_validity_days"] = -1
        _install(_sign_unvalidated(doc, env, tmp_path / "invalid.dsse.json"), served)
    else:
        served.unlink()

    with pytest.raises(ApiError) as caught:
        policy.reload()
    assert caught.value.code == grpc.StatusCode.FAILED_PRECONDITION
    assert caught.value.reason == expected
    assert before.digest in caught.value.message
    assert policy.get() == before
    decision = client.submit(env.sign(samples.certificate(datetime.now(UTC)))).decision
    assert (decision.bundle_digest, decision.outcome) == (before.digest, APPROVED)


def _sign_unvalidated(doc: dict[str, object], env: Env, out: Path) -> Path:
    """Sign bundle content without validating it, as a careless tool could."""
    key = load_admin_private_key(env.admin_key)
    assert isinstance(key, Ed25519PrivateKey)
    unsigned = Envelope(BUNDLE_PAYLOAD_TYPE, canonical_json(doc))
    signature = Signature(sig=key.sign(unsigned.pae()), keyid=keyid(key.public_key()))
    out.write_bytes(Envelope(unsigned.payload_type, unsigned.payload, (signature,)).to_json())
    return out


def test_concurrent_submissions_during_reloads_each_see_one_whole_bundle(
    env: Env, served: Path, channel: grpc.Channel, tmp_path: Path
) -> None:
    """Submissions race reloads that flip between two bundles which decide the sample EUC
    differently; each decision records one of the two digests and carries what that
    bundle decides (B, without licensed importers, rejects with PTY-001; A never does)."""
    policy, client = _Policy(channel), CertificateClient(channel, timeout=30)
    first = served.with_name("a.dsse.json")
    shutil.copyfile(served, first)
    second = _without_importers(env, tmp_path)
    digest_a = policy.get().digest
    now = datetime.now(UTC)
    envelopes = [
        env.sign(samples.certificate(now, number=f"JUL-EUC-RELOAD-{i:04d}")) for i in range(120)
    ]
    stop = threading.Event()
    reloads: list[str] = []

    def flip() -> None:
        source = second
        while not stop.is_set():
            _install(source, served)
            reloads.append(policy.reload().bundle.digest)
            source = first if source == second else second

    flipper = threading.Thread(target=flip)
    flipper.start()
    try:
        with ThreadPoolExecutor(max_workers=12) as pool:
            decisions = list(pool.map(lambda e: client.submit(e).decision, envelopes))
    finally:
        stop.set()
        flipper.join(timeout=60)
    digest_b = load_bundle(second.with_name("no-importers.yaml")).digest
    assert set(reloads) == {digest_a, digest_b}, "the reloads did not alternate"
    seen = {d.bundle_digest for d in decisions}
    assert seen <= {digest_a, digest_b}
    for d in decisions:
        rules = {r.rule_id for r in d.reasons}
        # Only B lacks the importer; anything else (A's quota running out) may differ.
        if d.bundle_digest == digest_a:
            assert "PTY-001" not in rules, d.certificate_number
        else:
            assert d.outcome == REJECTED, d.certificate_number
            assert "PTY-001" in rules, d.certificate_number
    assert len(seen) == 2, f"all {len(decisions)} submissions saw one bundle: no race was run"


def test_sighup_reloads_and_a_bad_file_keeps_the_old_bundle(env: Env, tmp_path: Path) -> None:
    served = tmp_path / "served.dsse.json"
    shutil.copyfile(env.signed_bundle, served)
    proc_env = dataclasses.replace(env, signed_bundle=served)
    old = load_bundle(env.bundle).digest
    new_file = _without_importers(env, tmp_path)
    new = load_bundle(tmp_path / "no-importers.yaml").digest
    with (
        server_process(proc_env, tmp_path / "store") as (proc, port, lines),
        grpc.insecure_channel(f"127.0.0.1:{port}") as channel,
    ):
        policy = _Policy(channel)
        assert policy.get().digest == old
        _install(new_file, served)
        proc.send_signal(signal.SIGHUP)
        _wait_for(lambda: policy.get().digest == new, "SIGHUP did not switch the bundle")

        _install(env.bundle, served)  # unsigned
        proc.send_signal(signal.SIGHUP)
        _wait_for(
            lambda: any("bundle_reload_refused" in line for line in lines),
            "SIGHUP with an unsigned file was not logged",
        )
        refused = json.loads(next(x for x in lines if "bundle_reload_refused" in x))
        assert (refused["reason"], refused["active_digest"]) == ("BUNDLE_UNSIGNED", new)
        assert policy.get().digest == new
        assert proc.poll() is None, "a bad bundle must not stop the server"


def _wait_for(condition: Callable[[], bool], message: str, timeout: float = 20) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return
        time.sleep(0.05)
    raise AssertionError(message)
