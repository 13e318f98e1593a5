"""DSSE v1: pre-authentication encoding and the JSON envelope.

Spec: https://github.com/secure-systems-lab/dsse (protocol.md, envelope.md v1.1).
Signed bytes stay opaque: an `Envelope` holds the payload exactly as received and is
never re-serialised before verification.
"""

from __future__ import annotations

import base64
import binascii
import json
from dataclasses import dataclass, field
from typing import Any

from eucgate_client import strictjson
from eucgate_client.errors import VerificationError
from eucgate_client.v1 import envelope_pb2

X509_CHAIN_KIND = "application/vnd.eucgate.x509-chain.v1"


class EnvelopeError(VerificationError, ValueError):
    """An envelope that is not well-formed DSSE; `reason` is a stable code, `field` a path."""

    def __init__(self, reason: str, message: str, field: str = "") -> None:
        super().__init__(reason, message)
        self.field = field


@dataclass(frozen=True)
class Signature:
    """One DSSE signature plus the X.509 chain its v1.1 extension carries (leaf first)."""

    sig: bytes
    keyid: str = ""
    certificates: tuple[bytes, ...] = ()


@dataclass(frozen=True)
class Envelope:
    """A DSSE envelope; `payload` holds the bytes exactly as they travelled."""

    payload_type: str
    payload: bytes
    signatures: tuple[Signature, ...] = field(default=())

    def pae(self) -> bytes:
        """The bytes every signature of this envelope is over."""
        return pae(self.payload_type, self.payload)

    def to_proto(self) -> envelope_pb2.Envelope:
        msg = envelope_pb2.Envelope(payload=self.payload, payload_type=self.payload_type)
        for s in self.signatures:
            pb = msg.signatures.add(sig=s.sig, keyid=s.keyid)
            if s.certificates:
                pb.extension.kind = X509_CHAIN_KIND
                pb.extension.ext.certificates.extend(s.certificates)
        return msg

    def to_json(self) -> bytes:
        """The DSSE JSON envelope (standard base64), UTF-8."""
        sigs: list[dict[str, Any]] = []
        for s in self.signatures:
            entry: dict[str, Any] = {"keyid": s.keyid, "sig": _b64(s.sig)}
            if s.certificates:
                entry["extension"] = {
                    "kind": X509_CHAIN_KIND,
                    "ext": {"certificates": [_b64(c) for c in s.certificates]},
                }
            sigs.append(entry)
        doc = {"payload": _b64(self.payload), "payloadType": self.payload_type, "signatures": sigs}
        return json.dumps(doc, indent=2).encode()

    def digest_input(self) -> bytes:
        """Deterministic bytes identifying this envelope whichever form it arrived in."""
        return self.to_proto().SerializeToString(deterministic=True)

    @classmethod
    def from_proto(cls, msg: envelope_pb2.Envelope) -> Envelope:
        sigs = []
        for i, s in enumerate(msg.signatures):
            certs: tuple[bytes, ...] = ()
            if s.HasField("extension"):
                if s.extension.kind != X509_CHAIN_KIND:
                    raise EnvelopeError(
                        "ENVELOPE_UNKNOWN_EXTENSION",
                        f"signature extension kind {s.extension.kind!r} is not supported",
                        f"signatures[{i}].extension.kind",
                    )
                certs = tuple(s.extension.ext.certificates)
            sigs.append(Signature(sig=s.sig, keyid=s.keyid, certificates=certs))
        return cls(payload_type=msg.payload_type, payload=msg.payload, signatures=tuple(sigs))

    @classmethod
    def from_json(cls, data: bytes) -> Envelope:
        """Parse a DSSE JSON envelope strictly.

        Raises EnvelopeError for invalid UTF-8 or JSON, duplicate keys, missing or
        mistyped fields, and invalid base64 (standard or URL-safe, padded or not).
        Unknown top-level fields are ignored, as the DSSE spec requires.
        """
        try:
            doc = strictjson.loads(data.decode("utf-8"))
        except UnicodeDecodeError as exc:
            raise EnvelopeError("ENVELOPE_INVALID_JSON", f"envelope is not UTF-8: {exc}") from exc
        except strictjson.DuplicateKeyError as exc:
            raise EnvelopeError(
                "ENVELOPE_DUPLICATE_KEY", f"envelope repeats the key {exc.key!r}", exc.key
            ) from exc
        except (ValueError, RecursionError) as exc:
            raise EnvelopeError("ENVELOPE_INVALID_JSON", f"envelope is not JSON: {exc}") from exc
        if not isinstance(doc, dict):
            raise EnvelopeError("ENVELOPE_INVALID_JSON", "envelope must be a JSON object")
        payload = _b64decode(_required_str(doc, "payload", "payload"), "payload")
        payload_type = _required_str(doc, "payloadType", "payloadType")
        raw_sigs = doc.get("signatures")
        if not isinstance(raw_sigs, list):
            raise EnvelopeError(
                "ENVELOPE_INVALID_FIELD", "signatures must be a JSON array", "signatures"
            )
        sigs = []
        for i, raw in enumerate(raw_sigs):
            path = f"signatures[{i}]"
            if not isinstance(raw, dict):
                raise EnvelopeError("ENVELOPE_INVALID_FIELD", f"{path} must be an object", path)
            sig = _b64decode(_required_str(raw, "sig", f"{path}.sig"), f"{path}.sig")
            keyid = raw.get("keyid", "")
            if not isinstance(keyid, str):
                raise EnvelopeError(
                    "ENVELOPE_INVALID_FIELD", f"{path}.keyid must be a string", f"{path}.keyid"
                )
            sigs.append(
                Signature(sig=sig, keyid=keyid, certificates=_chain(raw.get("extension"), path))
            )
        return cls(payload_type=payload_type, payload=payload, signatures=tuple(sigs))


def pae(payload_type: str, payload: bytes) -> bytes:
    """DSSE v1 pre-authentication encoding.

    "DSSEv1" SP LEN(type) SP type SP LEN(body) SP body, LEN in ASCII decimal bytes.
    """
    t = payload_type.encode("utf-8")
    return b"DSSEv1 %d %b %d %b" % (len(t), t, len(payload), payload)


def _required_str(doc: dict[str, Any], key: str, path: str) -> str:
    if key not in doc:
        raise EnvelopeError("ENVELOPE_MISSING_FIELD", f"{path} is required", path)
    value = doc[key]
    if not isinstance(value, str):
        raise EnvelopeError("ENVELOPE_INVALID_FIELD", f"{path} must be a string", path)
    return value


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


def _b64decode(text: str, path: str) -> bytes:
    """Standard or URL-safe base64, padded or not (as DSSE and the protobuf JSON mapping
    accept); anything else is an error."""
    alphabet = text.replace("-", "+").replace("_", "/")
    if len(alphabet) % 4 in (2, 3):  # unpadded; a remainder of 1 is never valid base64
        alphabet += "=" * (4 - len(alphabet) % 4)
    try:
        return base64.b64decode(alphabet, validate=True)
    except (binascii.Error, ValueError) as exc:
        raise EnvelopeError("ENVELOPE_INVALID_BASE64", f"{path} is not valid base64", path) from exc


def _chain(ext: Any, path: str) -> tuple[bytes, ...]:
    if ext is None:
        return ()
    epath = f"{path}.extension"
    if not isinstance(ext, dict) or ext.get("kind") != X509_CHAIN_KIND:
        raise EnvelopeError(
            "ENVELOPE_UNKNOWN_EXTENSION", f"{epath} must be of kind {X509_CHAIN_KIND}", epath
        )
    body = ext.get("ext")
    certs = body.get("certificates") if isinstance(body, dict) else None
    if not isinstance(certs, list) or not all(isinstance(c, str) for c in certs):
        raise EnvelopeError(
            "ENVELOPE_INVALID_FIELD",
            f"{epath}.ext.certificates must be an array of base64 strings",
            f"{epath}.ext.certificates",
        )
    return tuple(_b64decode(c, f"{epath}.ext.certificates[{j}]") for j, c in enumerate(certs))
