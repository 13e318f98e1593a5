"""Bundle files as the CLI reads them: a plain YAML or JSON bundle, or a signed one (the
DSSE envelope `eucgate policy sign` writes), with or without checking who signed it."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from eucgate.core.bundle import Bundle
from eucgate.core.signedbundle import (
    admin_public_key,
    looks_signed,
    open_signed_bundle,
    unverified_bundle,
)
from eucgate.errors import BundleError
from eucgate.policyfiles import load_bundle


def read_bundle_file(path: Path, admin_keys: Sequence[Path] = ()) -> tuple[Bundle, str]:
    """The bundle and how its signature was judged: "unsigned", "verified" (by one of
    `admin_keys`) or "not verified" (signed, but no key was given to check it).

    A signed bundle's digest is that of its payload, so it names the same bundle as the
    file it was signed from. Raises BundleError (invalid bundle, bad or foreign
    signature, --admin-key given for an unsigned file), OSError, ValueError (a key file
    that is not a usable public key).
    """
    data = path.read_bytes()
    if not looks_signed(data):
        if admin_keys:
            raise BundleError(f"{path}: not a signed bundle, so an admin key cannot apply")
        return load_bundle(path), "unsigned"
    if not admin_keys:
        return unverified_bundle(data, str(path)), "not verified"
    keys = [admin_public_key(k.read_bytes(), str(k)) for k in admin_keys]
    return open_signed_bundle(data, str(path), keys), "verified"
