"""Canonical JSON: the one byte form that digests and signatures are computed over.

Keys sorted, no insignificant white space, UTF-8, no NaN or infinities; integers and
strings only where numbers could be ambiguous (quantities are decimal strings). For the
values eucgate produces this coincides with RFC 8785 (JCS).
"""

from __future__ import annotations

import hashlib
import json
from typing import Any


def canonical_json(value: Any) -> bytes:
    """Serialise `value` canonically; raises ValueError for floats that are not finite."""
    return json.dumps(
        value, sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False
    ).encode("utf-8")


def sha256_hex(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()
