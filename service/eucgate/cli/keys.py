"""Files `keygen` and the demo write besides the PKI itself: bundles and their signing."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path

import yaml
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from eucgate.config import SAMPLE_BUNDLE
from eucgate.core.bundleload import inline_list_files, inline_pem_files
from eucgate.core.signedbundle import AdminPrivateKey, sign_bundle
from eucgate.policyfiles import files_in, load_bundle
from eucgate.signing import load_private_key, write_pem_key, write_pem_public_key


def write_trusting_bundle(
    path: Path,
    root_cert: Path,
    crls: Sequence[Path] = (),
    *,
    role: str = "end_user",
    base: Path | None = None,
) -> Path:
    """Write `base` (default: the sample bundle) with `root_cert` as `role`'s trust
    anchor and `crls` as that role's CRLs, replacing what the role had; other roles'
    trust is kept. `base` may be `path` itself, to add a role to a bundle in place.
    Raises OSError on I/O; the result is validated when it is loaded, not here.
    """
    return write_bundle_with_trust(
        path,
        {role: [root_cert.read_text()]},
        {role: [crl.read_text() for crl in crls]},
        base=base,
    )


def write_bundle_with_trust(
    path: Path,
    anchors: Mapping[str, Sequence[str]],
    crls: Mapping[str, Sequence[str]],
    *,
    base: Path | None = None,
) -> Path:
    """Write `base` (default: the sample bundle) with these PEM anchors and CRLs for the
    roles named, other roles' trust kept. Raises OSError on I/O."""
    source = base or SAMPLE_BUNDLE
    doc = yaml.safe_load(source.read_text())
    # The copy stands on its own: files the base bundle names are inlined into it.
    inline_list_files(doc, str(source), files_in(source.parent))
    inline_pem_files(doc, str(source), files_in(source.parent))
    doc["trust_anchors"] = {
        **(doc.get("trust_anchors") or {}),
        **{r: list(a) for r, a in anchors.items()},
    }
    doc["crls"] = {**(doc.get("crls") or {}), **{r: list(c) for r, c in crls.items()}}
    path.write_text(yaml.safe_dump(doc, sort_keys=False, allow_unicode=True))
    return path


def policy_admin_key(directory: Path) -> tuple[Path, Path]:
    """The policy-admin key pair in `directory` (policy-admin.key.pem, .pub.pem): the
    existing one, so every role's `keygen` into one bundle signs with one key, or a new
    Ed25519 key. Raises OSError on I/O, ValueError for an unusable existing key."""
    key_path = directory / "policy-admin.key.pem"
    pub_path = directory / "policy-admin.pub.pem"
    if key_path.exists():
        key = load_admin_private_key(key_path)
    else:
        directory.mkdir(parents=True, exist_ok=True)
        key = Ed25519PrivateKey.generate()
        write_pem_key(key_path, key)
    write_pem_public_key(pub_path, key.public_key())
    return key_path, pub_path


def load_admin_private_key(path: Path) -> AdminPrivateKey:
    """A policy-admin private key (PEM); raises ValueError unless Ed25519 or ECDSA
    P-256/P-384, OSError if unreadable."""
    key = load_private_key(path)
    if not isinstance(key, Ed25519PrivateKey | ec.EllipticCurvePrivateKey):
        raise ValueError(f"{path}: a policy-admin key must be Ed25519 or ECDSA P-256/P-384")
    return key


def signed_bundle_path(bundle: Path) -> Path:
    """Where the signed form of `bundle` goes by default: policy.yaml -> policy.dsse.json."""
    return bundle.with_name(bundle.name.split(".", 1)[0] + ".dsse.json")


def write_signed_bundle(bundle: Path, admin_key: Path, out: Path | None = None) -> Path:
    """Validate `bundle` (YAML or JSON, list files inlined) and write it signed by
    `admin_key` to `out` (default `signed_bundle_path(bundle)`).

    Raises BundleError for an invalid bundle, ValueError for an unusable key, OSError
    on I/O.
    """
    target = out or signed_bundle_path(bundle)
    envelope = sign_bundle(load_bundle(bundle), load_admin_private_key(admin_key))
    target.write_bytes(envelope.to_json())
    return target
