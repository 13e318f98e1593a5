"""Test cases a policy bundle carries about itself, like unit tests for policy.

A case is a certificate (the bundle's `base` certificate with a `patch` merged in), a
clock reading, how it is signed, and the outcome and exact set of rule ids expected.
`eucgate policy test` runs them through the same `decide()` the server calls. The data
lives here; running needs keys, so the runner sits at the edge (eucgate.policytest).
"""

from __future__ import annotations

from typing import Any, Literal

from eucgate_client.v1 import certificate_pb2
from google.protobuf import json_format
from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, field_validator, model_validator

from eucgate.core.decision import Outcome


class _Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class Expectation(_Frozen):
    """The decision a case must get: its outcome and exactly these rule ids firing."""

    outcome: Outcome
    rules: tuple[str, ...] = ()


class RegistryCase(_Frozen):
    """The registry of decided EUCs as a case sees it: the certificate's number was
    already used by a decision with this outcome, for this EUC (`same`) or for an EUC
    with other content (`other`)."""

    content: Literal["same", "other"]
    outcome: Outcome


class BundleTestCase(_Frozen):
    """One case. `signer`: `end_user` signs with a certificate naming the certificate's
    end user; `other` with one naming another organisation under the same trusted root;
    `untrusted` with one under a root the bundle does not trust. `tamper` changes the
    payload after signing. `consignee_signer` adds a consignee signature, by the
    certificate's consignee or by another organisation. `crls: expired` gives the bundle
    CRLs whose next update lies before `now`. `registry` says the certificate's number
    was used before (unused if omitted)."""

    name: str = Field(min_length=1)
    now: AwareDatetime
    patch: dict[str, Any] = Field(default_factory=dict)
    signer: Literal["end_user", "other", "untrusted"] = "end_user"
    tamper: bool = False
    consignee_signer: Literal["none", "consignee", "other"] = "none"
    crls: Literal["current", "expired"] = "current"
    registry: RegistryCase | None = None
    expect: Expectation


class BundleTests(_Frozen):
    """The base certificate (protobuf JSON mapping, field names as in proto/) and cases."""

    base: dict[str, Any]
    cases: tuple[BundleTestCase, ...] = Field(min_length=1)

    @field_validator("base")
    @classmethod
    def _base_parses(cls, value: dict[str, Any]) -> dict[str, Any]:
        _parse(value, "base")
        return value

    @model_validator(mode="after")
    def _cases_parse(self) -> BundleTests:
        names: set[str] = set()
        for i, case in enumerate(self.cases):
            if case.name in names:
                raise ValueError(f"cases[{i}]: the name {case.name!r} is used twice")
            names.add(case.name)
            _parse(merge(self.base, case.patch), f"cases[{i}].patch")
        return self

    def certificate(self, case: BundleTestCase) -> certificate_pb2.EndUserCertificate:
        """The case's certificate as the eucgate.v1 message."""
        return _parse(merge(self.base, case.patch), case.name)


def merge(base: Any, patch: Any) -> Any:
    """JSON merge patch (RFC 7396): mappings merge, null deletes, anything else replaces."""
    if not isinstance(patch, dict):
        return patch
    result = dict(base) if isinstance(base, dict) else {}
    for key, value in patch.items():
        if value is None:
            result.pop(key, None)
        else:
            result[key] = merge(result.get(key), value)
    return result


def _parse(doc: dict[str, Any], where: str) -> certificate_pb2.EndUserCertificate:
    try:
        return json_format.ParseDict(doc, certificate_pb2.EndUserCertificate())
    except json_format.ParseError as exc:
        raise ValueError(f"{where} is not an EndUserCertificate: {exc}") from None
