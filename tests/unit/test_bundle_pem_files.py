"""Bundles may name PEM (or DER) files for trust anchors and CRLs; loading inlines them,
so the digest covers the certificates and a signed bundle stands on its own."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
import yaml
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from eucgate.cli.keys import write_signed_bundle
from eucgate.cli.main import app
from eucgate.core.bundleload import parse_bundle
from eucgate.core.signedbundle import open_signed_bundle
from eucgate.errors import BundleError
from eucgate.policyfiles import load_bundle
from typer.testing import CliRunner

from tests.conftest import Pki
from tests.factories import sample_bundle


def _pem(obj: object) -> bytes:
    return obj.public_bytes(serialization.Encoding.PEM)  # type: ignore[attr-defined, no-any-return]


def _write(tmp_path: Path, pki: Pki, *, der_crl: bool = False) -> Path:
    """The sample bundle with end_user trust as files under roots/ and crls/."""
    (tmp_path / "roots").mkdir()
    (tmp_path / "crls").mkdir()
    (tmp_path / "roots" / "end-user.pem").write_bytes(_pem(pki.root))
    (tmp_path / "crls" / "root.pem").write_bytes(_pem(pki.root_crl))
    crl = tmp_path / "crls" / ("int.crl" if der_crl else "int.pem")
    crl.write_bytes(
        pki.intermediate_crl.public_bytes(serialization.Encoding.DER)
        if der_crl
        else _pem(pki.intermediate_crl)
    )
    doc = sample_bundle(pki).model_dump(mode="json")
    doc["trust_anchors"]["end_user"] = [{"file": "roots/end-user.pem"}]
    doc["crls"]["end_user"] = [{"file": "crls/root.pem"}, {"file": f"crls/{crl.name}"}]
    path = tmp_path / "policy.yaml"
    path.write_text(yaml.safe_dump(doc, sort_keys=False, allow_unicode=True))
    return path


def _inline_digest(pki: Pki) -> str:
    return sample_bundle(pki).digest


def test_file_references_load_to_the_same_bundle_as_inline_pem(tmp_path: Path, pki: Pki) -> None:
    bundle = load_bundle(_write(tmp_path, pki))
    assert bundle.digest == _inline_digest(pki)
    assert list(bundle.anchors["end_user"]) == [pki.root]


def test_a_der_crl_file_is_inlined_as_pem(tmp_path: Path, pki: Pki) -> None:
    bundle = load_bundle(_write(tmp_path, pki, der_crl=True))
    assert bundle.crls["end_user"][1] == _pem(pki.intermediate_crl).decode("ascii")
    assert bundle.digest == _inline_digest(pki)


def test_a_missing_file_is_named_with_its_line(tmp_path: Path, pki: Pki) -> None:
    path = _write(tmp_path, pki)
    (tmp_path / "crls" / "int.pem").unlink()
    line = next(
        i
        for i, row in enumerate(path.read_text().splitlines(), 1)
        if row.strip() == "- file: crls/int.pem"
    )
    with pytest.raises(BundleError) as caught:
        load_bundle(path)
    message = str(caught.value)
    assert message.startswith(f"{path}:{line}: crls.end_user[1]: cannot read ")
    assert "int.pem" in message


def test_a_file_that_holds_no_certificate_is_refused(tmp_path: Path, pki: Pki) -> None:
    path = _write(tmp_path, pki)
    (tmp_path / "roots" / "end-user.pem").write_bytes(b"not a certificate")
    with pytest.raises(BundleError, match=r"trust_anchors.end_user\[0\]: .*no PEM or DER"):
        load_bundle(path)


def test_a_payload_cannot_name_files(pki: Pki) -> None:
    doc = sample_bundle(pki).model_dump(mode="json")
    doc["trust_anchors"]["end_user"] = [{"file": "/etc/hostname"}]
    with pytest.raises(BundleError, match="PEM files can be named only in a bundle file"):
        parse_bundle(yaml.safe_dump(doc), "payload")


def test_signed_bundle_is_self_contained(tmp_path: Path, pki: Pki) -> None:
    path = _write(tmp_path, pki)
    key = tmp_path / "admin.key.pem"
    admin = Ed25519PrivateKey.generate()
    key.write_bytes(
        admin.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    signed = write_signed_bundle(path, key, tmp_path / "policy.dsse.json")
    shutil.rmtree(tmp_path / "roots")
    shutil.rmtree(tmp_path / "crls")
    bundle = open_signed_bundle(signed.read_bytes(), str(signed), [admin.public_key()])
    assert bundle.digest == _inline_digest(pki)


def test_policy_check_reads_the_files(tmp_path: Path, pki: Pki) -> None:
    path = _write(tmp_path, pki)
    result = CliRunner().invoke(app, ["policy", "check", str(path), "--json"])
    assert result.exit_code == 0, result.output
    assert _inline_digest(pki) in result.output
