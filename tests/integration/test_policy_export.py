"""An auditor gets the policy a decision was made under: GetBundle by digest, with its
bytes for auditor and policy-admin only, and `eucgate policy export DIGEST`."""

from __future__ import annotations

import hashlib
import json
import shutil
from collections.abc import Iterator
from pathlib import Path

import grpc
import pytest
from eucgate.api.server import RunningServer, start_server
from eucgate_client.client import ApiError, PolicyClient
from eucgate_client.dsse import Envelope

from .conftest import Env
from .test_cli import eucgate
from .test_reload import _install, _without_importers


@pytest.fixture
def served(env: Env, tmp_path: Path) -> Path:
    path = tmp_path / "served.dsse.json"
    shutil.copyfile(env.signed_bundle, path)
    return path


@pytest.fixture
def reloadable(env: Env, served: Path, tmp_path: Path) -> Iterator[RunningServer]:
    """A mutual-TLS server reading `served`, which tests replace and reload."""
    running = start_server(env.secure_settings(tmp_path / "store", bundle_path=served))
    yield running
    running.stop(grace=1)


def test_get_bundle_by_digest_with_its_bytes(
    reloadable: RunningServer, env: Env, served: Path, tmp_path: Path
) -> None:
    port = reloadable.port
    with env.channel(port, "auditor") as channel:
        first = PolicyClient(channel).bundle(include_content=True)
    digest = first.bundle.digest
    assert first.active
    assert hashlib.sha256(first.canonical_bundle).hexdigest() == digest
    assert Envelope.from_json(first.signed_bundle).payload == first.canonical_bundle
    assert first.signed_bundle == served.read_bytes()

    # The operator may see which bundle serves, not its content.
    with env.channel(port, "operator") as channel:
        operator = PolicyClient(channel)
        assert operator.bundle().bundle.digest == digest
        with pytest.raises(ApiError) as denied:
            operator.bundle(include_content=True)
    assert denied.value.code == grpc.StatusCode.PERMISSION_DENIED
    assert denied.value.reason == "ROLE_NOT_ALLOWED"

    # After a reload the first bundle is still there by digest, without its envelope.
    _install(_without_importers(env, tmp_path), served)
    with env.channel(port, "policy-admin") as channel:
        PolicyClient(channel).reload()
    with env.channel(port, "auditor") as channel:
        auditor = PolicyClient(channel)
        active_now = auditor.bundle().bundle.digest
        old = auditor.bundle(digest, include_content=True)
        assert not old.active
        assert old.bundle.name == first.bundle.name
        assert old.canonical_bundle == first.canonical_bundle
        assert old.signed_bundle == b""
        for bad, code, reason in (
            ("0" * 64, grpc.StatusCode.NOT_FOUND, "BUNDLE_NOT_FOUND"),
            ("ABC", grpc.StatusCode.INVALID_ARGUMENT, "BUNDLE_DIGEST_INVALID"),
        ):
            with pytest.raises(ApiError) as refused:
                auditor.bundle(bad)
            assert (refused.value.code, refused.value.reason) == (code, reason)

    address = f"localhost:{port}"
    auditor_env = env.client_env("auditor")
    out = tmp_path / "exported.json"
    exported = eucgate(
        "policy", "export", digest, "-s", address, "--out", str(out), "--json", env=auditor_env
    )
    assert exported.returncode == 0, exported.stdout + exported.stderr
    assert json.loads(exported.stdout)["active"] is False
    assert out.read_bytes() == first.canonical_bundle
    checked = eucgate("policy", "check", str(out), "--json")
    assert json.loads(checked.stdout)["digest"] == digest
    current = eucgate(
        "policy", "export", active_now, "-s", address, "--signed-out",
        str(tmp_path / "signed.json"), env=auditor_env,
    )  # fmt: skip
    assert current.returncode == 0, current.stderr
    assert (tmp_path / "signed.json").read_bytes() == served.read_bytes()
    denied_cli = eucgate(
        "policy", "export", digest, "-s", address, "--json", env=env.client_env("operator")
    )
    assert denied_cli.returncode == 3
    assert json.loads(denied_cli.stdout)["error"]["reason"] == "ROLE_NOT_ALLOWED"
