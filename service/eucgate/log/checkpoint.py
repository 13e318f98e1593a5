"""Signing the log's checkpoints: C2SP tlog-checkpoint bodies in C2SP signed notes.

https://c2sp.org/tlog-checkpoint and https://c2sp.org/signed-note. The key name is the
log's origin, so a checkpoint reads

    eucgate.example/log
    42
    <base64 root>

    — eucgate.example/log <base64(key id || Ed25519 signature)>

Ed25519 signatures are deterministic (RFC 8032), so signing the same tree state again
gives the same bytes: a checkpoint lost before it was stored is re-made identically.
Verification is `eucgate_client.tlog.open_checkpoint`.
"""

from __future__ import annotations

import base64
from collections.abc import Sequence

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from eucgate_client.tlog import SIGNATURE_PREFIX, NoteVerifier, checkpoint_body


class CheckpointSigner:
    """Signs checkpoints for one log (origin) with one Ed25519 key.

    Raises CheckpointError(CHECKPOINT_KEY_INVALID) on construction if `origin` cannot be
    a signed-note key name (empty, or holding white space or "+").
    """

    def __init__(self, origin: str, key: Ed25519PrivateKey) -> None:
        self._key = key
        self.verifier = NoteVerifier.from_key(origin, key.public_key())

    @property
    def origin(self) -> str:
        return self.verifier.name

    @property
    def verifier_key(self) -> str:
        """The published verifier key string: name+hex(key id)+base64(0x01 || key)."""
        return str(self.verifier)

    def sign_text(self, text: str) -> str:
        """A signed note over `text` (which must end with a newline); raises ValueError."""
        if not text.endswith("\n") or "\n\n" in text:
            raise ValueError("note text ends with one newline and holds no blank line")
        signature = self._key.sign(text.encode())
        blob = base64.b64encode(self.verifier.key_id + signature).decode()
        return f"{text}\n{SIGNATURE_PREFIX}{self.origin} {blob}\n"

    def sign(self, size: int, root: bytes, extensions: Sequence[str] = ()) -> str:
        """The signed checkpoint of a tree of `size` leaves with `root`; ValueError if bad."""
        return self.sign_text(checkpoint_body(self.origin, size, root, extensions))
