"""Decision ids: "dec_" + a ULID (48-bit millisecond time, 80 random bits, Crockford base32).

Time-sortable so listings and logs read in order; random enough that ids never collide
across replicas. Reads the clock and the OS random source, so it lives at the edge.
"""

from __future__ import annotations

import os
import re
import time

_ALPHABET = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"
PATTERN = re.compile(r"^dec_[0-9A-HJKMNP-TV-Z]{26}$")


def _ulid() -> str:
    value = (time.time_ns() // 1_000_000) << 80 | int.from_bytes(os.urandom(10), "big")
    chars = []
    for _ in range(26):
        value, rem = divmod(value, 32)
        chars.append(_ALPHABET[rem])
    return "".join(reversed(chars))


def new_decision_id() -> str:
    return "dec_" + _ulid()


def new_shipment_id() -> str:
    """A shipment debit's id: "shp_" + a ULID."""
    return "shp_" + _ulid()


def is_decision_id(text: str) -> bool:
    return PATTERN.fullmatch(text) is not None
