"""Decision ids: "dec_" + a ULID (48-bit millisecond time, 80 random bits, Crockford base32).

Time-sortable so listings and logs read in order; random enough that ids never collide
across replicas. The time is the caller's clock reading (the gate's clock, so an id
sorts with the decision it names); the randomness is the OS's, so it lives at the edge.
"""

from __future__ import annotations

import os
import re
from datetime import UTC, datetime

_ALPHABET = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"
PATTERN = re.compile(r"^dec_[0-9A-HJKMNP-TV-Z]{26}$")


def _ulid(when: datetime) -> str:
    millis = int(when.astimezone(UTC).timestamp() * 1000)
    value = millis << 80 | int.from_bytes(os.urandom(10), "big")
    chars = []
    for _ in range(26):
        value, rem = divmod(value, 32)
        chars.append(_ALPHABET[rem])
    return "".join(reversed(chars))


def new_decision_id(when: datetime) -> str:
    """A decision's id: "dec_" + a ULID of `when` (aware)."""
    return "dec_" + _ulid(when)


def new_shipment_id(when: datetime) -> str:
    """A shipment debit's id: "shp_" + a ULID of `when` (aware)."""
    return "shp_" + _ulid(when)


def is_decision_id(text: str) -> bool:
    return PATTERN.fullmatch(text) is not None
