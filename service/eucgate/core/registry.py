"""What the decision core may read of the registry of decided EUCs: one EUC, one use.

An EUC is identified by its issuer (the end user, by each of its registrations) and its
certificate number. The registry keeps, per (issuer, number), the decision that used
it: its EUC digest, decision id and outcome. The gate reads it before deciding; the
store re-checks it in the transaction that records the decision and keeps it current
(an APPROVED or REFERRED decision takes the EUC; a REJECTED one leaves it free to be
corrected and sent again). Like ledger balances, every entry `decide()` reads goes into
the decision (`Decision.registry_reads`), so replay sees exactly what the decision saw.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Protocol

from pydantic import BaseModel, ConfigDict

from eucgate.core.model import Certificate

# The outcomes that use an EUC up; a REJECTED one leaves it free to be corrected.
USING_OUTCOMES = ("APPROVED", "REFERRED")


class RegistryEntry(BaseModel):
    """The decision that used an EUC: what the registry holds under (issuer, number)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    euc_digest: str
    decision_id: str
    outcome: str


class RegistryRead(BaseModel):
    """One registry lookup a decision made; `entry` None means the EUC was unused."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    issuer: str
    certificate_number: str
    entry: RegistryEntry | None


class RegistryView(Protocol):
    """The registry as of one instant."""

    def used(self, issuer: str, certificate_number: str) -> RegistryEntry | None:
        """The decision that used (issuer, number), or None."""
        ...


class EmptyRegistry:
    """A registry that has seen no EUC (policy tests, a first submission)."""

    def used(self, issuer: str, certificate_number: str) -> RegistryEntry | None:
        return None


class SnapshotRegistry:
    """Entries read at one instant, keyed by (issuer, certificate number)."""

    def __init__(self, entries: Mapping[tuple[str, str], RegistryEntry | None]) -> None:
        self._entries = dict(entries)

    @classmethod
    def of_reads(cls, reads: Iterable[RegistryRead]) -> SnapshotRegistry:
        """The view a recorded decision saw (replay)."""
        return cls({(r.issuer, r.certificate_number): r.entry for r in reads})

    def used(self, issuer: str, certificate_number: str) -> RegistryEntry | None:
        return self._entries.get((issuer, certificate_number))


class RecordingRegistry:
    """Wraps a view and keeps every distinct read, in order, for the decision record."""

    def __init__(self, view: RegistryView) -> None:
        self._view = view
        self._reads: dict[tuple[str, str], RegistryEntry | None] = {}

    def used(self, issuer: str, certificate_number: str) -> RegistryEntry | None:
        key = (issuer, certificate_number)
        if key not in self._reads:
            self._reads[key] = self._view.used(issuer, certificate_number)
        return self._reads[key]

    @property
    def reads(self) -> tuple[RegistryRead, ...]:
        return tuple(
            RegistryRead(issuer=issuer, certificate_number=number, entry=entry)
            for (issuer, number), entry in self._reads.items()
        )


def issuers_of(certificate: Certificate) -> tuple[str, ...]:
    """The keys an EUC's issuer (its end user) is known by (see `issuer_keys`)."""
    party = certificate.end_user
    return issuer_keys(
        ((r.scheme, r.value) for r in party.registrations), party.country_code, party.legal_name
    )


def issuer_keys(
    registrations: Iterable[tuple[str, str]], country_code: str, legal_name: str
) -> tuple[str, ...]:
    """Each registration as "SCHEME:VALUE", or, with none, the country and case-folded
    legal name: a number reused under any of them is the same issuer's."""
    keys = sorted({f"{scheme}:{value}" for scheme, value in registrations})
    return tuple(keys) or (f"NAME:{country_code}:{legal_name.casefold()}",)
