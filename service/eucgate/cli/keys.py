"""Files `keygen` and the demo write besides the PKI itself."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import yaml

from eucgate.config import SAMPLE_BUNDLE


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
    doc = yaml.safe_load((base or SAMPLE_BUNDLE).read_text())
    anchors = dict(doc.get("trust_anchors") or {})
    anchors[role] = [root_cert.read_text()]
    doc["trust_anchors"] = anchors
    role_crls = dict(doc.get("crls") or {})
    role_crls[role] = [crl.read_text() for crl in crls]
    doc["crls"] = role_crls
    path.write_text(yaml.safe_dump(doc, sort_keys=False, allow_unicode=True))
    return path
