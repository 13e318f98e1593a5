"""Files `keygen` and the demo write besides the PKI itself."""

from __future__ import annotations

from pathlib import Path

import yaml

from eucgate.config import SAMPLE_BUNDLE


def write_trusting_bundle(path: Path, root_cert: Path) -> Path:
    """The sample bundle with `root_cert` as the end-user trust anchor."""
    doc = yaml.safe_load(SAMPLE_BUNDLE.read_text())
    doc["trust_anchors"] = {"end_user": [root_cert.read_text()]}
    path.write_text(yaml.safe_dump(doc, sort_keys=False, allow_unicode=True))
    return path
