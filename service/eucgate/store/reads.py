"""The read side both drivers share: the columns of a record, the list query, and rows
turned back into records and shipments.

Drivers differ only in how they write a parameter (`?`/`:name` or `%(name)s`) and how
they store a record's importer registrations (a JSON array or a TEXT[]); those come in
as a `Dialect` and as decoded values. Every value is a parameter; only the fixed table
aliases are put into the SQL text.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from eucgate.core.registry import RegistryEntry
from eucgate.errors import InvalidSubmission
from eucgate.store.base import (
    DecisionFilter,
    DecisionRecord,
    Page,
    PageCursor,
    Shipment,
    decode_page_token,
    encode_page_token,
    from_micros,
    recorded_extras,
    to_micros,
)

RECORD_COLUMNS = """
d.decision_id, d.caller, d.request_id, d.envelope_digest, d.envelope, d.decision,
d.receipt, d.outcome, d.decided_at, d.bundle_digest, d.importer_registrations"""
SHIPMENT_COLUMNS = """
shipment_id, decision_id, caller, licence_number, control_code, quantity, unit, recorded_at"""


@dataclass(frozen=True)
class Dialect:
    """How a driver writes the named parameter `name` into SQL text."""

    param: Callable[[str], str]
    true: str  # the literal a WHERE clause starts from


# `list` is one of two heads, then any of the conditions, then the order. `{k}` names
# the table whose (decided_at, decision_id) index drives the scan: `d` itself, or the
# importer side table `i` (which copies decided_at for this reason).
_LIST_ALL = "SELECT" + RECORD_COLUMNS + " FROM decisions AS d WHERE {true}"
_LIST_BY_IMPORTER = (
    "SELECT"
    + RECORD_COLUMNS
    + """
FROM decision_importers AS i JOIN decisions AS d ON d.decision_id = i.decision_id
WHERE i.registration = {registration}"""
)
_LIST_OUTCOME = " AND d.outcome = {outcome}"
# An importer caller's scope: only decisions naming one of its registrations.
_LIST_PARTIES = """ AND d.decision_id IN (
    SELECT p.decision_id FROM decision_parties AS p WHERE p.party IN ({parties}))"""
_LIST_NOTHING = " AND 1 = 0"
_LIST_UNRESOLVED = (
    " AND NOT EXISTS (SELECT 1 FROM resolutions AS r WHERE r.referral_id = d.decision_id)"
)
_LIST_AFTER = " AND {k}.decided_at >= {after}"
_LIST_BEFORE = " AND {k}.decided_at < {before}"
_LIST_CURSOR = " AND ({k}.decided_at, {k}.decision_id) < ({cursor_at}, {cursor_id})"
_LIST_ORDER = " ORDER BY {k}.decided_at DESC, {k}.decision_id DESC LIMIT {limit}"


def list_query(
    flt: DecisionFilter, cursor: PageCursor | None, limit: int, dialect: Dialect
) -> tuple[str, dict[str, Any]]:
    """The SQL and parameters of one page of `Store.list`."""
    params: dict[str, Any] = {"limit": limit}
    if flt.importer_registration:
        sql, key = _LIST_BY_IMPORTER, "i"
        params["registration"] = flt.importer_registration
    else:
        sql, key = _LIST_ALL, "d"
    if flt.outcome:
        sql += _LIST_OUTCOME
        params["outcome"] = flt.outcome
    if flt.parties is not None:
        names = [f"party{n}" for n in range(len(flt.parties))]
        params.update(zip(names, sorted(flt.parties), strict=True))
        listed = ", ".join(dialect.param(name) for name in names)
        sql += _LIST_PARTIES.replace("{parties}", listed) if names else _LIST_NOTHING
    if flt.unresolved:
        sql += _LIST_UNRESOLVED
    if flt.decided_after is not None:
        sql += _LIST_AFTER
        params["after"] = to_micros(flt.decided_after)
    if flt.decided_before is not None:
        sql += _LIST_BEFORE
        params["before"] = to_micros(flt.decided_before)
    if cursor is not None:
        sql += _LIST_CURSOR
        params["cursor_at"] = to_micros(cursor.decided_at)
        params["cursor_id"] = cursor.decision_id
    sql += _LIST_ORDER
    placeholders = {name: dialect.param(name) for name in params if not name.startswith("party")}
    return sql.format(k=key, true=dialect.true, **placeholders), params


def page_of(
    flt: DecisionFilter,
    page_size: int,
    page_token: str,
    dialect: Dialect,
    fetch: Callable[[str, dict[str, Any]], Sequence[DecisionRecord]],
) -> Page:
    """One page of `Decisions.list`: `fetch` runs the query and maps the rows.

    Raises InvalidSubmission for a bad page token or page_size (see Decisions.list).
    """
    if page_size < 1:
        raise InvalidSubmission(
            f"page_size must be at least 1, got {page_size}",
            reason="PAGE_SIZE_INVALID",
            field="page_size",
        )
    cursor = decode_page_token(flt, page_token)
    sql, params = list_query(flt, cursor, page_size + 1, dialect)
    records = fetch(sql, params)
    page = tuple(records[:page_size])
    token = ""
    if len(records) > page_size:
        last = page[-1]
        token = encode_page_token(flt, PageCursor(last.decided_at, last.decision_id))
    return Page(records=page, next_page_token=token)


def record_of(row: Sequence[Any], importer_registrations: Sequence[str]) -> DecisionRecord:
    """A record from a RECORD_COLUMNS row (its last column decoded by the driver)."""
    decision = bytes(row[5])
    reads, resolves = recorded_extras(decision)
    return DecisionRecord(
        decision_id=row[0],
        caller=row[1],
        request_id=row[2],
        envelope_digest=row[3],
        envelope=bytes(row[4]),
        decision=decision,
        receipt=bytes(row[6]),
        outcome=row[7],
        decided_at=from_micros(int(row[8])),
        bundle_digest=row[9],
        importer_registrations=tuple(importer_registrations),
        ledger_reads=reads,
        resolves=resolves,
    )


def registry_entry_of(row: Sequence[Any]) -> RegistryEntry:
    """A registry entry from a (euc_digest, decision_id, outcome) row."""
    return RegistryEntry(euc_digest=row[0], decision_id=row[1], outcome=row[2])


def shipment_of(gateway_reference: str, row: Sequence[Any]) -> Shipment:
    """A shipment from a SHIPMENT_COLUMNS row."""
    return Shipment(
        shipment_id=row[0],
        decision_id=row[1],
        caller=row[2],
        gateway_reference=gateway_reference,
        licence_number=row[3],
        control_code=row[4],
        quantity=Decimal(row[5]),
        unit=row[6],
        recorded_at=from_micros(int(row[7])),
    )
