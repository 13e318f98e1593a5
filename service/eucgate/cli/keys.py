"""Files `keygen` and the demo write besides the PKI itself."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path

import yaml

from eucgate.config import SAMPLE_BUNDLE
from eucgate.core.bundle import inline_list_files


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
    inline_list_files(doc, str(source), source.parent)
    doc["trust_anchors"] = {
        **(doc.get("trust_anchors") or {}),
        **{r: list(a) for r, a in anchors.items()},
    }
    doc["crls"] = {**(doc.get("crls") or {}), **{r: list(c) for r, c in crls.items()}}
    path.write_text(yaml.safe_dump(doc, sort_keys=False, allow_unicode=True))
    return path
