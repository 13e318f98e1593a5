"""Bounded work per request: every EUC list and text has a bound, a decision is bounded
whatever it is fed, and the largest input accepted makes a record, receipt and log entry
that every read path can return (a tlog-tiles entry is at most 65,535 bytes)."""

from __future__ import annotations

import base64
import json
import time
from collections.abc import Callable
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives.asymmetric import ed25519
from eucgate.api.audit import MAX_PAGE_BYTES
from eucgate.api.servicer import response_parts
from eucgate.config import Settings
from eucgate.core import decision as dec
from eucgate.core.canonical import canonical_json
from eucgate.core.decide import decide
from eucgate.core.decision import (
    MAX_DECISION_BYTES,
    MAX_REASON_MESSAGE_BYTES,
    MAX_REASONS,
    MAX_REASONS_PER_RULE,
    Decision,
    Family,
    Outcome,
    Reason,
    RuleOutcome,
    SignerResult,
    bounded_reasons,
    clip,
    json_cost,
    outcome_of,
)
from eucgate.core.ledger import EmptyLedger, LedgerRead
from eucgate.core.model import (
    MAX_ENTRIES,
    MAX_ITEMS,
    MAX_NAME_BYTES,
    MAX_REFERENCE_BYTES,
    MAX_REGISTRATIONS,
    MAX_TEXT_BYTES,
    PAYLOAD_TYPE_PROTO,
    Certificate,
    certificate_from_payload,
    certificate_to_proto,
    encode_certificate,
)
from eucgate.core.registry import RegistryEntry, RegistryRead
from eucgate.core.submission import MAX_ENVELOPE_BYTES, MAX_SIGNATURES, Submission
from eucgate.errors import InvalidSubmission
from eucgate.gate import Gate, decision_of
from eucgate.log.checkpoint import CheckpointSigner
from eucgate.log.entry import LedgerRead as EntryRead
from eucgate.log.entry import encode_entry
from eucgate.log.export import MAX_ENTRY_BYTES, ExportWriter, verify_export
from eucgate.replay.engine import Replayer, Status
from eucgate.store.base import DecisionRecord
from eucgate.store.sqlite import SqliteStore
from eucgate_client.dsse import Envelope, Signature
from eucgate_client.v1 import certificate_pb2, certificate_service_pb2
from google.protobuf.descriptor import FieldDescriptor
from google.protobuf.message import Message
from hypothesis import given
from hypothesis import strategies as st
from pydantic import ValidationError

from tests import largest
from tests.conftest import NOW, Pki
from tests.factories import sample_bundle, signed_submission, valid_certificate

DEFAULT_PAYLOAD = Settings.model_fields["max_payload_bytes"].default
DEFAULT_MESSAGE = Settings.model_fields["max_message_bytes"].default
Pb = certificate_pb2.EndUserCertificate


# --- every field has a bound, and the decoder and the model hold it ------------------


def _fields(descriptor: Any, seen: set[str]) -> list[tuple[str, Any]]:
    if descriptor.full_name in seen or descriptor.full_name.startswith("google.protobuf"):
        return []
    seen.add(descriptor.full_name)
    found = [(descriptor.name, fd) for fd in descriptor.fields]
    for fd in descriptor.fields:
        if fd.type == FieldDescriptor.TYPE_MESSAGE:
            found.extend(_fields(fd.message_type, seen))
    return found


def test_every_repeated_and_text_field_of_the_proto_has_a_bound() -> None:
    fields = _fields(Pb.DESCRIPTOR, set())
    repeated = {(m, fd.name) for m, fd in fields if fd.is_repeated}
    text = {(m, fd.name) for m, fd in fields if fd.type == FieldDescriptor.TYPE_STRING}
    assert len(repeated) >= 8, "the walk missed the certificate"
    assert len(text) >= 30, "the walk missed the certificate"
    assert repeated == set(MAX_ENTRIES), "every repeated field needs a bound, and only they"
    assert text == set(MAX_TEXT_BYTES), "every text field needs a bound, and only they"


# Where a message of each type sits in the largest certificate (the model's field names
# are the proto's), so one test can push any field one past its bound.
_AT: dict[str, tuple[str | int, ...]] = {
    "EndUserCertificate": (),
    "Party": ("end_user",),
    "Address": ("end_user", "address"),
    "Registration": ("end_user", "registrations", 0),
    "Owner": ("end_user", "owners", 0),
    "Intermediary": ("intermediaries", 0),
    "Item": ("items", 0),
    "Quantity": ("items", 0, "quantity"),
    "Money": ("items", 0, "value"),
    "EndUse": ("end_use",),
    "Undertakings": ("undertakings",),
    "Signatory": ("signatory",),
    "Endorsement": ("endorsement",),
    "Transaction": ("transaction",),
}


def _path(steps: tuple[str | int, ...], name: str) -> str:
    out = ""
    for step in (*steps, name):
        out = f"{out}[{step}]" if isinstance(step, int) else f"{out}.{step}" if out else step
    return out


def _navigate(msg: Message, steps: tuple[str | int, ...]) -> Any:
    node: Any = msg
    for step in steps:
        node = node[step] if isinstance(step, int) else getattr(node, step)
    return node


def _one_past(key: tuple[str, str], table: str) -> tuple[bytes, str]:
    """The largest certificate's bytes with field `key` one past its bound in `table`
    (entries or text), and the path the refusal must name."""
    message, name = key
    msg = certificate_to_proto(largest.largest_certificate())
    target = _navigate(msg, _AT[message])
    value = getattr(target, name)
    if table == "entries":
        limit = MAX_ENTRIES[key]
        while len(value) <= limit:
            if isinstance(value[0], Message):
                value.add().CopyFrom(value[0])
            else:
                value.append(value[0])
        return msg.SerializeToString(), _path(_AT[message], name)
    over = "x" * (MAX_TEXT_BYTES[key] + 1)
    if isinstance(value, str):
        setattr(target, name, over)
        return msg.SerializeToString(), _path(_AT[message], name)
    value[0] = over
    return msg.SerializeToString(), f"{_path(_AT[message], name)}[0]"


@pytest.mark.parametrize("key", sorted(MAX_ENTRIES), ids="{0[0]}.{0[1]}".format)
def test_a_list_one_past_its_bound_is_refused_with_its_path(key: tuple[str, str]) -> None:
    payload, path = _one_past(key, "entries")
    with pytest.raises(InvalidSubmission) as info:
        certificate_from_payload(PAYLOAD_TYPE_PROTO, payload)
    assert (info.value.reason, info.value.field) == ("PAYLOAD_FIELD_TOO_LARGE", path)
    assert [v.reason for v in info.value.violations] == ["PAYLOAD_FIELD_TOO_LARGE"]


@pytest.mark.parametrize("key", sorted(MAX_TEXT_BYTES), ids="{0[0]}.{0[1]}".format)
def test_a_text_one_byte_past_its_bound_is_refused_with_its_path(key: tuple[str, str]) -> None:
    payload, path = _one_past(key, "text")
    with pytest.raises(InvalidSubmission) as info:
        certificate_from_payload(PAYLOAD_TYPE_PROTO, payload)
    assert (info.value.reason, info.value.field) == ("PAYLOAD_FIELD_TOO_LARGE", path)


def test_the_largest_certificate_is_accepted_and_fits_the_default_payload_limit() -> None:
    cert = largest.largest_certificate()
    payload = encode_certificate(cert)
    assert len(payload) <= DEFAULT_PAYLOAD
    assert certificate_from_payload(PAYLOAD_TYPE_PROTO, payload) == cert


_OVER_THE_BOUND: dict[str, Callable[[], dict[str, Any]]] = {
    "items": lambda: {"items": (largest._item(0),) * (MAX_ITEMS + 1)},
    "legal_name": lambda: {"end_user": {"legal_name": "x" * (MAX_NAME_BYTES + 1)}},
    "certificate_number": lambda: {"certificate_number": "N" * (MAX_REFERENCE_BYTES + 1)},
    "transit": lambda: {"transaction": {"transit_countries": ("LK",) * 9}},
    "nul": lambda: {"certificate_number": "EUC\x00-1"},  # some stores refuse a NUL
    "c1-control": lambda: {"certificate_number": "EUC\x85-1"},
}


@pytest.mark.parametrize("name", sorted(_OVER_THE_BOUND))
def test_the_model_holds_the_same_bounds(name: str) -> None:
    doc = valid_certificate().model_dump()
    doc.update(_OVER_THE_BOUND[name]())
    if isinstance(doc["end_user"], dict):
        doc["end_user"] = {**valid_certificate().end_user.model_dump(), **doc["end_user"]}
    with pytest.raises(ValidationError):
        Certificate.model_validate(doc)


def test_a_control_character_in_text_is_an_invalid_field() -> None:
    msg = certificate_to_proto(valid_certificate())
    msg.end_user.registrations[0].value = "0588\x0012345"
    with pytest.raises(InvalidSubmission) as info:
        certificate_from_payload(PAYLOAD_TYPE_PROTO, msg.SerializeToString())
    assert info.value.reason == "PAYLOAD_INVALID_FIELD"
    assert info.value.field == "end_user.registrations[0].value"
    # Tab, line feed and carriage return are text.
    assert valid_certificate(certificate_number="EUC\t1\r\n").certificate_number


# --- the regressions the issue names ------------------------------------------------


def _transit_payload(count: int) -> bytes:
    msg = certificate_to_proto(valid_certificate())
    msg.transaction.transit_countries.extend(["AE"] * count)
    return msg.SerializeToString()


def test_50000_transit_countries_in_a_200_kb_envelope_are_refused_before_deciding() -> None:
    payload = _transit_payload(50_000)
    assert len(payload) > 200_000
    envelope = Envelope(PAYLOAD_TYPE_PROTO, payload, (Signature(sig=b"\x00" * 64, keyid="k"),))
    for limit in (DEFAULT_PAYLOAD, 1024 * 1024):  # even if a caller allows a larger payload
        with pytest.raises(InvalidSubmission) as info:
            Submission.from_envelope(envelope, max_payload_bytes=limit, max_signatures=8)
        assert info.value.reason in {"PAYLOAD_TOO_LARGE", "ENVELOPE_TOO_LARGE"}
    with pytest.raises(InvalidSubmission) as decoded:
        certificate_from_payload(PAYLOAD_TYPE_PROTO, payload)
    assert decoded.value.reason == "PAYLOAD_FIELD_TOO_LARGE"
    assert decoded.value.field == "transaction.transit_countries"


def test_2000_transit_countries_in_8_kb_are_refused_with_the_field() -> None:
    payload = _transit_payload(2000)
    assert 8000 <= len(payload) <= DEFAULT_PAYLOAD
    envelope = Envelope(PAYLOAD_TYPE_PROTO, payload, (Signature(sig=b"\x00" * 64, keyid="k"),))
    with pytest.raises(InvalidSubmission) as info:
        Submission.from_envelope(envelope, max_payload_bytes=DEFAULT_PAYLOAD, max_signatures=8)
    assert (info.value.reason, info.value.field) == (
        "PAYLOAD_FIELD_TOO_LARGE",
        "transaction.transit_countries",
    )
    assert "2000 entries; at most 8" in str(info.value)


def test_a_megabyte_payload_is_over_the_default_limit() -> None:
    envelope = Envelope(PAYLOAD_TYPE_PROTO, b"\x00" * (1 << 20), (Signature(sig=b"s"),))
    with pytest.raises(InvalidSubmission) as info:
        Submission.from_envelope(envelope, max_payload_bytes=DEFAULT_PAYLOAD, max_signatures=8)
    assert info.value.reason == "PAYLOAD_TOO_LARGE"


def test_the_core_caps_signatures_and_envelope_whatever_the_caller_allows() -> None:
    payload = encode_certificate(valid_certificate())
    many = Envelope(PAYLOAD_TYPE_PROTO, payload, tuple(Signature(sig=b"s") for _ in range(9)))
    with pytest.raises(InvalidSubmission) as info:
        Submission.from_envelope(many, max_payload_bytes=DEFAULT_PAYLOAD, max_signatures=64)
    assert info.value.reason == "SIGNATURES_TOO_MANY"
    chain = (b"\x30" * (MAX_ENVELOPE_BYTES // 2),)
    fat = Envelope(PAYLOAD_TYPE_PROTO, payload, (Signature(sig=b"s", certificates=chain),) * 2)
    with pytest.raises(InvalidSubmission) as info:
        Submission.from_envelope(fat, max_payload_bytes=DEFAULT_PAYLOAD, max_signatures=8)
    assert info.value.reason == "ENVELOPE_TOO_LARGE"


# --- a decision is bounded whatever it is fed ----------------------------------------


def _reason(rule_id: str, outcome: RuleOutcome, n: int = 0) -> Reason:
    family = Family(rule_id.split("-", maxsplit=1)[0])
    return Reason(rule_id=rule_id, family=family, outcome=outcome, message=f"finding {n}")


def test_a_rule_keeps_a_few_reasons_and_counts_the_rest() -> None:
    fired = [_reason("ITM-001", RuleOutcome.REFER, n) for n in range(50)]
    fired.append(_reason("ITM-001", RuleOutcome.REJECT, 50))  # stricter, past the cap
    kept = bounded_reasons(fired)
    assert len(kept) == MAX_REASONS_PER_RULE
    assert [r.message for r in kept[:-1]] == [f"finding {n}" for n in range(5)]
    assert kept[-1].outcome is RuleOutcome.REJECT
    assert "46 more problems" in kept[-1].message
    assert outcome_of(kept) is outcome_of(fired) is Outcome.REJECTED


def test_a_decision_keeps_at_most_max_reasons_and_names_the_rules_left_out() -> None:
    fired = [_reason(f"RF-{n:03d}", RuleOutcome.REFER) for n in range(60)]
    fired.append(_reason("PTY-002", RuleOutcome.REJECT))
    kept = bounded_reasons(fired)
    assert len(kept) == MAX_REASONS
    assert kept[: MAX_REASONS - 1] == tuple(fired[: MAX_REASONS - 1])
    assert kept[-1].outcome is RuleOutcome.REJECT
    assert "RF-019" in kept[-1].message
    assert "42 more reasons" in kept[-1].message
    assert outcome_of(kept) is Outcome.REJECTED
    few = fired[:5]
    assert bounded_reasons(few) == tuple(few)


def test_decide_caps_the_reasons_of_a_rule_with_many_findings(pki: Pki, now: datetime) -> None:
    """Ten uncontrolled items gave ten ITM-001 reasons; a rule now keeps six."""
    item = largest._item(0)
    cert = valid_certificate(items=(item,) * MAX_ITEMS)
    d = decide(signed_submission(cert, pki), sample_bundle(pki), EmptyLedger(), now)
    itm = [r for r in d.reasons if r.rule_id == "ITM-001"]
    assert len(itm) == MAX_REASONS_PER_RULE
    assert "5 more problems" in itm[-1].message


def test_the_messages_of_a_decision_share_a_budget() -> None:
    """Ordinary messages stay whole; many long ones are cut once the budget is spent."""
    ordinary = [
        Reason(
            rule_id=f"RF-{i:03d}", family=Family.RF, outcome=RuleOutcome.REFER, message="m" * 400
        )
        for i in range(3)
    ]
    assert bounded_reasons(ordinary) == tuple(ordinary)
    many = [r.model_copy(update={"rule_id": f"RF-{i:03d}"}) for i, r in enumerate(ordinary * 7)]
    kept = bounded_reasons(many)
    sizes = [json_cost(r.message) for r in kept]
    assert sizes[:10] == [400] * 10
    assert sum(sizes) <= dec.MAX_REASON_TEXT_BYTES + len(kept) * dec.MIN_REASON_MESSAGE_BYTES
    assert max(sizes[11:]) <= dec.MIN_REASON_MESSAGE_BYTES
    assert kept[-2].message.endswith("…")


@given(st.text(max_size=400), st.integers(min_value=8, max_value=300))
def test_clip_bounds_the_canonical_json_bytes(text: str, limit: int) -> None:
    clipped = clip(text, limit)
    assert len(canonical_json(clipped)) - 2 <= limit  # less the quotes
    if len(canonical_json(text.encode("utf-8", "replace").decode())) - 2 <= limit:
        assert clipped == text or "\ufffd" in clipped
    else:
        assert clipped.endswith("…")
    assert clip(clipped, limit) == clipped  # reading a record back changes nothing


def _reference_cost(ch: str) -> int:
    code = ord(ch)
    if ch in '"\\\b\f\n\r\t':
        return 2
    if code < 0x20:
        return 6
    return 1 if code < 0x80 else 2 if code < 0x800 else 3 if code < 0x10000 else 4


def _reference_clip(text: str, limit: int) -> str:
    """The character-by-character clip that recorded decisions were made with."""
    if any(0xD800 <= ord(ch) <= 0xDFFF for ch in text[: limit + 1]):
        text = "".join("\ufffd" if 0xD800 <= ord(ch) <= 0xDFFF else ch for ch in text)
    room, used, cut = limit - len("…".encode()), 0, 0
    for i, ch in enumerate(text):
        cost = _reference_cost(ch)
        if used + cost <= room:
            cut = i + 1
        used += cost
        if used > limit:
            return text[:cut] + "…"
    return text


_EVERY_KIND = st.text(
    alphabet=st.one_of(
        st.characters(max_codepoint=0x7F),
        st.characters(min_codepoint=0xD800, max_codepoint=0xDFFF),
        st.characters(),
    ),
    max_size=400,
)


@given(_EVERY_KIND, st.integers(min_value=8, max_value=300))
def test_clip_cuts_where_the_per_character_clip_cut(text: str, limit: int) -> None:
    # Recorded decisions must replay byte for byte: the fast path changes speed only.
    assert clip(text, limit) == _reference_clip(text, limit)
    assert json_cost(text) == sum(_reference_cost(ch) for ch in text)


def test_what_a_signer_certificate_says_is_clipped() -> None:
    signer = SignerResult(
        index=0,
        keyid="k" * 10_000,
        subject='"' * 10_000,
        organization="O" * 10_000,
        registrations=tuple(f"S:{i}" * 100 for i in range(50)),
        failure="SIG_BAD_CERTIFICATE",
        detail="\x01" * 10_000,
    )
    assert len(signer.registrations) == dec.MAX_SIGNER_REGISTRATIONS
    assert len(canonical_json(signer.model_dump(mode="json"))) < 2000
    assert signer.failure == "SIG_BAD_CERTIFICATE"


def _worst_decision(*, review: bool, approved: bool) -> Decision:
    """Every field a decision takes from outside the bundle at the most its bounds allow,
    each character costing the most JSON bytes it can."""
    q = '"'
    party = dec.PartySummary(
        legal_name=q * MAX_NAME_BYTES,
        country_code="IN",
        registrations=tuple(("S" * 16, q * MAX_REFERENCE_BYTES) for _ in range(MAX_REGISTRATIONS)),
    )
    longest: dict[str, Any] = {
        name: q * 10_000
        for name in SignerResult.model_fields
        if name not in {"index", "checked_at", "verified", "registrations"}
    }
    signer = SignerResult(**longest, index=7, checked_at=NOW, registrations=(q * 1000,) * 50)
    fired = [
        Reason(
            rule_id=f"RF-{i:03d}",
            family=Family.RF,
            outcome=RuleOutcome.REFER,
            message=q * 10_000,
            field=q * 10_000,
        )
        for i in range(2 * MAX_REASONS)
    ]
    item = dec.ApprovedItem(
        description=q * 200,
        hs_code="8505.11.10.00",
        elements=("Dy",) * 8,
        form="COMPOUND",
        quantity="9" * 24 + "." + "9" * 12,
        unit="k" * 16,
    )
    return Decision(
        outcome=Outcome.APPROVED if approved else Outcome.REJECTED,
        # A review's only reason is REV-001; decide() keeps at most MAX_REASONS.
        reasons=() if approved else bounded_reasons(fired[:1] if review else fired),
        bundle_digest="a" * 64,
        euc_digest="b" * 64,
        decided_at=NOW,
        valid_from=NOW,
        valid_until=NOW,
        approved_items=(item,) * MAX_ITEMS if approved else (),
        certificate_number=q * MAX_REFERENCE_BYTES,
        importer=party,
        end_user=party,
        licence_number="L" * 64,
        signers=(signer,) * MAX_SIGNATURES,
        ledger_reads=_reads(),
        # One registry lookup per issuer key: each registration of the end user.
        registry_reads=tuple(
            RegistryRead(
                issuer="S" * 16 + ":" + q * MAX_REFERENCE_BYTES,
                certificate_number=q * MAX_REFERENCE_BYTES,
                entry=RegistryEntry(
                    euc_digest="d" * 64, decision_id="dec_" + "0" * 26, outcome="REFERRED"
                ),
            )
            for _ in range(MAX_REGISTRATIONS)
        ),
        review=dec.Review(resolves="dec_" + "0" * 26, reviewer=q * 1000, note=q * 100_000)
        if review
        else None,
    )


def _reads() -> tuple[LedgerRead, ...]:
    # Balances come from the bundle's quotas (trusted): one per control code an item
    # can draw on, each with a licence number and code as long as the bundle allows.
    return tuple(
        LedgerRead(licence_number="L" * 64, control_code="C" * 16, remaining="9" * 37)
        for _ in range(MAX_ITEMS)
    )


@pytest.mark.parametrize(
    ("review", "approved"), [(False, False), (False, True), (True, False), (True, True)]
)
def test_no_decision_can_exceed_its_bound(review: bool, approved: bool) -> None:
    worst = canonical_json(
        _worst_decision(review=review, approved=approved).model_dump(mode="json")
    )
    assert len(worst) <= MAX_DECISION_BYTES


def test_the_bounds_add_up_to_a_tlog_tiles_entry() -> None:
    """The largest envelope with the largest decision, the longest caller and request id
    and a read per item makes an entry tlog-tiles can hold; so GetDecision, StreamEntries
    pages and exports hold it too."""
    record = DecisionRecord(
        decision_id="dec_" + "0" * 26,
        caller="c" * 256,
        request_id="r" * 128,
        envelope_digest="e" * 64,
        envelope=b"\xff" * MAX_ENVELOPE_BYTES,
        decision=b"\xff" * MAX_DECISION_BYTES,
        receipt=b"",
        outcome="REJECTED",
        decided_at=NOW,
        bundle_digest="b" * 64,
        importer_registrations=(),
    )
    entry = encode_entry(
        record, [EntryRead(r.licence_number, r.control_code, r.remaining) for r in _reads()]
    )
    assert len(entry) <= MAX_ENTRY_BYTES
    # A StreamEntries page stops at MAX_PAGE_BYTES plus at most one entry.
    assert MAX_PAGE_BYTES + MAX_ENTRY_BYTES + 4096 <= DEFAULT_MESSAGE


# --- the largest accepted input, end to end --------------------------------------------


def _largest_envelopes(pki: Pki) -> dict[str, Envelope]:
    end_user = [(pki.end_user_key, list(pki.end_user_chain))]
    payload = encode_certificate(largest.largest_certificate())
    signed = largest.sign(payload, PAYLOAD_TYPE_PROTO, end_user)
    small = encode_certificate(valid_certificate())
    return {
        # every field at its bound, and the other seven signatures the most verbose failures
        "largest-payload": largest.with_signatures(
            signed, largest.garbage_signatures(MAX_SIGNATURES - 1)
        ),
        # eight signatures by untrusted certificates with the longest names they carry
        "fattest-signers": largest.sign(
            small, PAYLOAD_TYPE_PROTO, largest.fat_signers(MAX_SIGNATURES)
        ),
    }


@pytest.fixture(scope="module")
def largest_envelopes(pki: Pki) -> dict[str, Envelope]:
    return _largest_envelopes(pki)


@pytest.mark.parametrize("case", ["largest-payload", "fattest-signers"])
def test_the_largest_input_makes_a_record_every_read_path_can_return(
    case: str,
    largest_envelopes: dict[str, Envelope],
    pki: Pki,
    service_key: ed25519.Ed25519PrivateKey,
    tmp_path: Path,
) -> None:
    envelope = largest_envelopes[case]
    assert len(envelope.digest_input()) <= MAX_ENVELOPE_BYTES
    bundle = sample_bundle(pki)
    submission = Submission.from_envelope(
        envelope, max_payload_bytes=DEFAULT_PAYLOAD, max_signatures=MAX_SIGNATURES
    )
    started = time.process_time()
    decision = decide(submission, bundle, EmptyLedger(), NOW)
    cpu = time.process_time() - started
    print(f"{case}: decide() took {cpu * 1000:.1f} ms of CPU")
    assert cpu < 2.0
    assert decision.outcome is Outcome.REJECTED
    assert len(decision.reasons) <= MAX_REASONS
    assert all(
        len(canonical_json(r.message)) - 2 <= MAX_REASON_MESSAGE_BYTES for r in decision.reasons
    )

    signer = CheckpointSigner("eucgate.example/log", service_key)
    store = SqliteStore.open(tmp_path / "decisions.db", signer)
    try:
        gate = Gate(
            store,
            bundle,
            service_key,
            max_payload_bytes=DEFAULT_PAYLOAD,
            max_signatures=MAX_SIGNATURES,
            clock=lambda: NOW,
        )
        started = time.process_time()
        appended = gate.decide_and_record("c" * 64, "r" * 128, envelope).result
        print(f"{case}: the whole submission took {(time.process_time() - started) * 1000:.1f} ms")
        record = appended.record
        (entry,) = store.entries(0, 1)
        sizes = {
            "decision": len(record.decision),
            "receipt": len(record.receipt),
            "entry": len(entry),
        }
        decided, receipt = response_parts(store, record, appended)
        response = certificate_service_pb2.GetDecisionResponse(decision=decided, receipt=receipt)
        sizes["GetDecision"] = response.ByteSize()
        print(f"{case}: {sizes}")
        assert sizes["decision"] <= MAX_DECISION_BYTES
        assert sizes["receipt"] <= 16 * 1024
        assert sizes["entry"] <= MAX_ENTRY_BYTES
        assert sizes["GetDecision"] <= 64 * 1024
        assert decision_of(record).reasons == decision.reasons
        # Exact replay (the real replayer, from the entry and the stored bundle).
        replayed = Replayer(bundles=store.get_bundle).replay(0, entry)
        assert replayed.status is Status.MATCH, replayed
        # tlog-tiles export and its verification.
        writer = ExportWriter(tmp_path / "export")
        writer.add(entry)
        checkpoint = store.latest_checkpoint()
        assert checkpoint is not None
        writer.finish(checkpoint.note)
        assert verify_export(tmp_path / "export", signer.verifier).ok
        assert json.loads(entry)["decision"] == base64.b64encode(record.decision).decode()
    finally:
        store.close()


def test_decide_is_cheap_on_the_largest_certificate(pki: Pki) -> None:
    """Was 18.5 s of CPU for a 1 MB payload; the largest accepted input takes milliseconds."""
    envelope = _largest_envelopes(pki)["largest-payload"]
    bundle = sample_bundle(pki)
    started = time.process_time()
    for _ in range(10):
        submission = Submission.from_envelope(
            envelope, max_payload_bytes=DEFAULT_PAYLOAD, max_signatures=MAX_SIGNATURES
        )
        decide(submission, bundle, EmptyLedger(), NOW)
    per_request = (time.process_time() - started) / 10
    print(f"decode and decide of the largest input: {per_request * 1000:.1f} ms of CPU")
    assert per_request < 0.5
    assert isinstance(submission.certificate, Certificate)
