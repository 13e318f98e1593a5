"""The server starts only on a bundle signed by a configured policy-admin key, and the
CLI writes and checks such bundles (`policy sign`, `policy check --admin-key`, `keygen`)."""

from __future__ import annotations

import json
from pathlib import Path

from eucgate.api.server import start_server
from eucgate.cli.keys import policy_admin_key, write_signed_bundle
from eucgate.cli.main import app
from eucgate.config import load_settings
from eucgate.core.signedbundle import open_signed_bundle
from eucgate.errors import BundleError, ConfigError
from eucgate.policysource import load_admin_keys
from typer.testing import CliRunner

from .conftest import Env


def _start_refused(env: Env, tmp_path: Path, **overrides: object) -> BundleError | ConfigError:
    try:
        running = start_server(env.settings(tmp_path / "store", **overrides))
    except (BundleError, ConfigError) as exc:
        return exc
    running.stop(grace=0)
    raise AssertionError("the server started")


def test_an_unsigned_bundle_stops_start_up(env: Env, tmp_path: Path) -> None:
    error = _start_refused(env, tmp_path, bundle_path=env.bundle)
    assert error.reason == "BUNDLE_UNSIGNED"
    assert "eucgate policy sign" in str(error)


def test_a_bundle_signed_by_another_key_stops_start_up(env: Env, tmp_path: Path) -> None:
    other_key, _ = policy_admin_key(tmp_path / "other-admin")
    signed = write_signed_bundle(env.bundle, other_key, tmp_path / "other.dsse.json")
    error = _start_refused(env, tmp_path, bundle_path=signed)
    assert error.reason == "BUNDLE_SIGNATURE_INVALID"


def test_no_admin_key_or_an_unusable_one_stops_start_up(env: Env, tmp_path: Path) -> None:
    assert _start_refused(env, tmp_path, policy_admin_keys=[]).reason == "POLICY_ADMIN_KEY_INVALID"
    missing = _start_refused(env, tmp_path, policy_admin_keys=[tmp_path / "none.pem"])
    assert missing.reason == "POLICY_ADMIN_KEY_INVALID"
    # A private key where the public one belongs.
    wrong = _start_refused(env, tmp_path, policy_admin_keys=[env.admin_key])
    assert wrong.reason == "POLICY_ADMIN_KEY_INVALID"
    assert not (tmp_path / "store" / "eucgate.db").exists(), "nothing may start on a refusal"


def _cli(*args: str) -> tuple[int, str]:
    result = CliRunner().invoke(app, list(args))
    return result.exit_code, result.output


def test_policy_sign_then_check_with_the_admin_key(env: Env, tmp_path: Path) -> None:
    out = tmp_path / "signed.json"
    code, output = _cli(
        "policy", "sign", str(env.bundle), "--key", str(env.admin_key), "--out", str(out)
    )
    assert code == 0, output
    bundle = open_signed_bundle(out.read_bytes(), str(out), load_admin_keys([env.admin_public_key]))
    assert bundle.digest in output.replace("\n", "")

    code, output = _cli(
        "policy", "check", str(out), "--admin-key", str(env.admin_public_key), "--json"
    )
    assert code == 0, output
    summary = json.loads(output)
    assert (summary["digest"], summary["signature"]) == (bundle.digest, "verified")

    _, other_public = policy_admin_key(tmp_path / "other")
    code, output = _cli("policy", "check", str(out), "--admin-key", str(other_public))
    assert code == 1
    assert "BUNDLE_SIGNATURE_INVALID" in output

    code, output = _cli("policy", "check", str(out), "--json")
    assert code == 0, output
    assert json.loads(output)["signature"] == "not verified"
    code, output = _cli("policy", "test", str(out), "--admin-key", str(env.admin_public_key))
    assert code == 0, output


def test_policy_sign_refuses_an_invalid_bundle(tmp_path: Path, env: Env) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text(env.bundle.read_text().replace("max_validity_days: 183", "max_validity_days: 0"))
    assert bad.read_text() != env.bundle.read_text()
    code, output = _cli("policy", "sign", str(bad), "--key", str(env.admin_key))
    assert code == 1
    assert "max_validity_days" in output
    assert not (tmp_path / "bad.dsse.json").exists()


def test_keygen_writes_a_signed_bundle_the_server_starts_on(tmp_path: Path) -> None:
    code, output = _cli("keygen", str(tmp_path / "keys"))
    assert code == 0, output
    keys = tmp_path / "keys"
    first = (keys / "policy-admin.key.pem").read_bytes()
    code, output = _cli(
        "keygen",
        str(tmp_path / "consignee"),
        "--role",
        "consignee",
        "--organization",
        "Sona Magnet Assemblies Private Limited",
        "--bundle",
        str(keys / "policy.yaml"),
    )
    assert code == 0, output
    assert (keys / "policy-admin.key.pem").read_bytes() == first, "one admin key per bundle"
    running = start_server(
        load_settings(
            listen="127.0.0.1:0",
            data_dir=tmp_path / "store",
            bundle_path=keys / "policy.dsse.json",
            policy_admin_keys=[keys / "policy-admin.pub.pem"],
            service_key_path=keys / "service.key.pem",
            insecure=True,
            init_store=True,
        )
    )
    try:
        assert sorted(running.gate.bundle.anchors) == ["consignee", "end_user"]
    finally:
        running.stop(grace=0)
