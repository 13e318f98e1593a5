"""What every check sees and how it is registered: the rule context of one decision,
the `check` decorator (filling core.checks), and helpers the families share."""

from __future__ import annotations

import functools
import unicodedata
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import TypeVar

from pydantic import BaseModel

from eucgate.core.bundle import Bundle, LicensedImporter
from eucgate.core.celrules import CelActivation, activation_for
from eucgate.core.checks import Finding, register
from eucgate.core.decision import SignerResult
from eucgate.core.ledger import LedgerView
from eucgate.core.model import (
    Certificate,
    Party,
)
from eucgate.core.registry import (
    EmptyRegistry,
    RegistryView,
)
from eucgate.core.screening import ScreeningMatch
from eucgate.core.submission import Submission


class SignersUnavailable(RuntimeError):
    """Signature verification could not run, so no signer-based check can be evaluated."""


class RuleUnavailable(RuntimeError):
    """A rule that could not be evaluated for this certificate (a custom expression that
    failed or ran out of bounds): decide() refers under the rule's own id."""


@dataclass(frozen=True)
class RuleContext:
    """Everything a check may look at, fixed for one decision.

    `signer_results` is None when verification itself failed; reading `signers` then
    raises SignersUnavailable, which the engine turns into a REFER (ENG-001).
    """

    submission: Submission
    bundle: Bundle
    signer_results: tuple[SignerResult, ...] | None
    ledger: LedgerView
    now: datetime
    registry: RegistryView = field(default_factory=EmptyRegistry)
    _activations: dict[frozenset[str] | None, CelActivation] = field(
        default_factory=dict, init=False, repr=False, compare=False
    )

    @property
    def certificate(self) -> Certificate:
        return self.submission.certificate

    @functools.cached_property
    def screening_matches(self) -> tuple[ScreeningMatch, ...]:
        """Every screening match of the certificate's names, computed once per decision
        however many rules read it."""
        return self.bundle.screener.screen_certificate(self.certificate, self.now)

    def cel_activation(self, fields: frozenset[str] | None) -> CelActivation:
        """The certificate as custom rules reading `fields` see it (None: every field),
        converted once per decision for each set of fields."""
        activation = self._activations.get(fields)
        if activation is None:
            activation = activation_for(self.certificate, self.now, fields)
            self._activations[fields] = activation
        return activation

    @property
    def signers(self) -> tuple[SignerResult, ...]:
        if self.signer_results is None:
            raise SignersUnavailable("signature verification did not run")
        return self.signer_results

    @functools.cached_property
    def licensed_importer(self) -> LicensedImporter | None:
        """The end user's licence, looked up once per decision (five rules ask)."""
        return self.bundle.licensed_importer_for(self.certificate.end_user)


P = TypeVar("P", bound=BaseModel)
CheckFunction = Callable[[RuleContext, P], list[Finding]]


def check(name: str, params: type[P]) -> Callable[[CheckFunction[P]], CheckFunction[P]]:
    """Register a check under `name` with its params model (core.checks); raises
    ValueError on reuse."""

    def add(function: CheckFunction[P]) -> CheckFunction[P]:
        register(name, params, function)
        return function

    return add


def normalize_name(name: str) -> str:
    """Names compare after Unicode NFC, case folding and white-space collapsing."""
    folded = unicodedata.normalize("NFC", unicodedata.normalize("NFC", name).casefold())
    return " ".join(folded.split())


def registrations_of(party: Party) -> list[str]:
    return [f"{r.scheme}:{r.value}" for r in party.registrations]


def iso(moment: datetime) -> str:
    return moment.isoformat().replace("+00:00", "Z")
