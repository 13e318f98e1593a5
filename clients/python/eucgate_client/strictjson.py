"""JSON read strictly: a repeated key or a NaN/Infinity constant is an error.

Parsers disagree on which of two repeated keys wins, so a signed document with one
could mean different things to the signer and to us; both are refused everywhere
eucgate reads JSON (envelopes, EUC payloads, bundles).
"""

from __future__ import annotations

import json
from typing import Any


class DuplicateKeyError(ValueError):
    """A JSON object repeats `key`."""

    def __init__(self, key: str) -> None:
        super().__init__(f"the key {key!r} appears twice in one object")
        self.key = key


def loads(text: str | bytes) -> Any:
    """Parse JSON; raises DuplicateKeyError, ValueError (malformed, NaN, Infinity,
    bad UTF-8) or RecursionError (nested too deeply)."""
    return json.loads(text, object_pairs_hook=_unique, parse_constant=_no_constant)


def _unique(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in pairs:
        if key in out:
            raise DuplicateKeyError(key)
        out[key] = value
    return out


def _no_constant(name: str) -> Any:
    raise ValueError(f"{name} is not JSON")
