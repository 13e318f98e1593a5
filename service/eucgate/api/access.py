"""Who may call what: callers identified by client certificate, roles, and one table.

Every call on the API port passes `AccessInterceptor`. Under mutual TLS, the peer's
certificate must map to a caller of the access file: issued by one of its named client
CAs and matching an entry's subject or subject alternative name. A peer that maps to no
caller is UNAUTHENTICATED (CALLER_UNKNOWN); a caller whose roles `RPC_ROLES` does not
allow for the method is PERMISSION_DENIED (ROLE_NOT_ALLOWED). A method missing from the
table is refused to everyone: the table is the whole policy, and a test checks that it
names every method the server serves.

What a role may see within an allowed method (an importer only its own importers'
decisions, a reviewer never its own submission) is applied by the servicers and the
store queries with the `Caller` this module identifies.

Only with `insecure` set does the server take plaintext calls; every caller is then
`anonymous` with every role and no importer scope.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from pathlib import Path
from typing import Any, cast

import grpc
import structlog
import yaml
from cryptography import x509
from cryptography.exceptions import InvalidSignature
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from eucgate.api.status import Undecodable, build_status, tolerant, undecodable_status
from eucgate.errors import ConfigError, NotFound, PermissionDenied
from eucgate.metrics import ServerInterceptorBase
from eucgate.store.base import DecisionRecord, Decisions

log = structlog.get_logger("eucgate.access")


class Role(StrEnum):
    IMPORTER = "importer"  # an importer's ERP system: submits, reads its own importers'
    GATEWAY = "gateway"  # a customs integration gateway: looks up, records shipments
    AUDITOR = "auditor"  # the log, proofs, export, replay, bundles
    REVIEWER = "reviewer"  # resolves referrals (never one its own identity submitted)
    POLICY_ADMIN = "policy-admin"  # reloads the policy bundle
    OPERATOR = "operator"  # runs the service: bundle and checkpoint, no decisions


ALL_ROLES = frozenset(Role)
_I, _G, _A, _R, _P, _O = (
    Role.IMPORTER,
    Role.GATEWAY,
    Role.AUDITOR,
    Role.REVIEWER,
    Role.POLICY_ADMIN,
    Role.OPERATOR,
)


@dataclass(frozen=True)
class Rule:
    """Who may call one method, and what scope applies within it (said in the docs)."""

    roles: frozenset[Role]
    scope: str = ""


def _rule(*roles: Role, scope: str = "") -> Rule:
    return Rule(frozenset(roles), scope)


# The one table of who may call what. Health answers any TLS peer (probes normally use
# the plaintext operations port); every other method needs a mapped caller.
PUBLIC = frozenset(
    {
        "/grpc.health.v1.Health/Check",
        "/grpc.health.v1.Health/List",
        "/grpc.health.v1.Health/Watch",
    }
)
RPC_ROLES: Mapping[str, Rule] = {
    "/eucgate.v1.CertificateService/SubmitCertificate": _rule(
        _I, scope="importer: only an EUC whose importer or end user is bound to the caller"
    ),
    "/eucgate.v1.CertificateService/GetDecision": _rule(
        _I, _G, _A, _R, scope="importer: only decisions naming its importers"
    ),
    "/eucgate.v1.CertificateService/ListDecisions": _rule(
        _I, _G, _A, _R, scope="importer: only decisions naming its importers"
    ),
    "/eucgate.v1.LicenceService/GetLicenceBalance": _rule(
        _I, _G, _A, scope="importer: only licences its importers hold"
    ),
    "/eucgate.v1.LicenceService/RecordShipment": _rule(_G),
    "/eucgate.v1.ReviewService/ListReferrals": _rule(_R, _A),
    "/eucgate.v1.ReviewService/ResolveReferral": _rule(
        _R, scope="never a decision the caller's own identity or importers submitted"
    ),
    "/eucgate.v1.PolicyService/GetBundle": _rule(_P, _A, _O),
    "/eucgate.v1.PolicyService/ReloadBundle": _rule(_P),
    "/eucgate.v1.AuditService/GetCheckpoint": _rule(*ALL_ROLES),
    "/eucgate.v1.AuditService/GetInclusionProof": _rule(
        _A, _G, _I, scope="importer: by decision id, only decisions naming its importers"
    ),
    "/eucgate.v1.AuditService/GetConsistencyProof": _rule(_A, _G, _I),
    "/eucgate.v1.AuditService/StreamEntries": _rule(_A),
    "/eucgate.v1.AuditService/Replay": _rule(_A),
    "/grpc.reflection.v1alpha.ServerReflection/ServerReflectionInfo": _rule(*ALL_ROLES),
    "/grpc.reflection.v1.ServerReflection/ServerReflectionInfo": _rule(*ALL_ROLES),
}


@dataclass(frozen=True)
class Caller:
    """An identified caller. `importers` are the registrations ("SCHEME:VALUE") an
    importer role is bound to; `None` means unscoped (every role but importer, and
    anonymous callers under `insecure`)."""

    name: str
    roles: frozenset[Role]
    importers: frozenset[str] | None = None

    @property
    def anonymous(self) -> bool:
        return self.name == ANONYMOUS.name

    def has(self, role: Role) -> bool:
        return role in self.roles

    def scope(self) -> frozenset[str] | None:
        """The importer registrations this caller's reads are limited to, or None.

        A caller holding any unscoped reading role (gateway, auditor, reviewer) reads
        every importer's decisions; a pure importer reads only its own.
        """
        if self.roles & {Role.GATEWAY, Role.AUDITOR, Role.REVIEWER}:
            return None
        return self.importers if self.importers is not None else frozenset()

    def may_submit_for(self, registrations: Iterable[str]) -> bool:
        """Whether an EUC naming these importer/end-user registrations is the caller's."""
        if self.importers is None:
            return True
        return not self.importers.isdisjoint(registrations)


ANONYMOUS = Caller(name="anonymous", roles=ALL_ROLES)


def allowed(method: str, caller: Caller) -> bool:
    """Whether the table lets `caller` call `method` at all (scopes apply after)."""
    rule = RPC_ROLES.get(method)
    return rule is not None and not rule.roles.isdisjoint(caller.roles)


def visible_record(decisions: Decisions, caller: Caller, decision_id: str) -> DecisionRecord:
    """The record `decision_id` if `caller` may see it; NotFound (DECISION_NOT_FOUND)
    otherwise, the same answer as for an id that does not exist, so a scoped caller
    learns nothing of other importers' decisions."""
    record = decisions.get(decision_id)
    scope = caller.scope()
    if record is None or (scope is not None and scope.isdisjoint(record.parties)):
        raise NotFound(f"no decision {decision_id}", reason="DECISION_NOT_FOUND")
    return record


# --- the access file -------------------------------------------------------------------

_SAN_KINDS = ("dns", "uri", "email", "ip")


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class CallerEntry(_Strict):
    """One caller of the access file."""

    name: str = Field(pattern=r"^[A-Za-z0-9._@:-]{1,128}$")
    client_ca: str
    subject: str | None = None  # RFC 4514, e.g. "CN=acme-erp,O=Acme Magnetics"
    san: str | None = None  # "dns:...", "uri:...", "email:..." or "ip:..."
    roles: tuple[Role, ...] = Field(min_length=1)
    importers: tuple[str, ...] = ()  # "SCHEME:VALUE" registrations, for the importer role

    @field_validator("subject")
    @classmethod
    def _subject(cls, value: str | None) -> str | None:
        if value is not None:
            try:
                x509.Name.from_rfc4514_string(value)
            except ValueError as exc:
                raise ValueError(f"not an RFC 4514 name: {exc}") from None
        return value

    @field_validator("san")
    @classmethod
    def _san(cls, value: str | None) -> str | None:
        if value is not None:
            kind, sep, rest = value.partition(":")
            if not sep or kind not in _SAN_KINDS or not rest:
                raise ValueError(f"must be one of {', '.join(_SAN_KINDS)} then ':' and a value")
            if kind == "ip":
                ipaddress.ip_address(rest)
        return value

    @field_validator("importers")
    @classmethod
    def _registrations(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        for registration in value:
            scheme, sep, number = registration.partition(":")
            if not sep or not scheme or not number:
                raise ValueError(f"{registration!r} must be SCHEME:VALUE, e.g. IEC:0599001122")
        return value

    @model_validator(mode="after")
    def _identity(self) -> CallerEntry:
        if (self.subject is None) == (self.san is None):
            raise ValueError("give exactly one of subject or san")
        if (Role.IMPORTER in self.roles) != bool(self.importers):
            raise ValueError("the importer role needs importers, and importers need it")
        return self


class AccessFile(_Strict):
    """The access file: client CAs by name (PEM paths relative to the file), callers."""

    client_cas: dict[str, str] = Field(min_length=1)
    callers: tuple[CallerEntry, ...] = Field(min_length=1)

    @model_validator(mode="after")
    def _consistent(self) -> AccessFile:
        names: set[str] = set()
        identities: set[tuple[str, str]] = set()
        for entry in self.callers:
            if entry.client_ca not in self.client_cas:
                raise ValueError(f"caller {entry.name}: no client CA named {entry.client_ca!r}")
            if entry.name in names:
                raise ValueError(f"caller {entry.name} is listed twice")
            names.add(entry.name)
            identity = (entry.client_ca, entry.subject or entry.san or "")
            if identity in identities:
                raise ValueError(f"caller {entry.name}: its identity is another caller's too")
            identities.add(identity)
        return self


@dataclass(frozen=True)
class _Mapped:
    ca: x509.Certificate
    subject: x509.Name | None
    san: tuple[str, str] | None
    caller: Caller


@dataclass
class AccessMap:
    """The loaded access file: the handshake's client CA roots and the identity map.

    `identify` checks that a peer certificate was issued by the entry's named CA (the
    TLS handshake already checked it chains to one of them) before mapping it, and
    caches the answer per certificate.
    """

    roots: bytes
    entries: tuple[_Mapped, ...]
    _cache: dict[bytes, Caller | None] = field(default_factory=dict, repr=False)

    @classmethod
    def load(cls, path: Path) -> AccessMap:
        """Read and check the access file; raises ConfigError naming what is wrong."""
        try:
            raw = yaml.safe_load(path.read_text(encoding="utf-8"))
        except OSError as exc:
            raise ConfigError(f"access file {path}: {exc.strerror or exc}") from exc
        except (yaml.YAMLError, UnicodeDecodeError) as exc:
            raise ConfigError(f"access file {path} is not YAML: {exc}") from exc
        try:
            parsed = AccessFile.model_validate(raw)
        except ValidationError as exc:
            problems = "; ".join(
                f"{'.'.join(str(p) for p in e['loc']) or 'file'}: "
                f"{e['msg'].removeprefix('Value error, ')}"
                for e in exc.errors()
            )
            raise ConfigError(f"access file {path}: {problems}") from exc
        cas: dict[str, x509.Certificate] = {}
        pems: list[bytes] = []
        for name, ca_path in parsed.client_cas.items():
            full = path.parent / ca_path
            try:
                pem = full.read_bytes()
                certs = x509.load_pem_x509_certificates(pem)
            except (OSError, ValueError) as exc:
                raise ConfigError(
                    f"access file {path}: client CA {name} ({full}) is not PEM: {exc}"
                ) from exc
            cas[name] = _checked_ca(name, certs[0])
            pems.append(pem)
        entries = tuple(
            _Mapped(
                ca=cas[e.client_ca],
                subject=None if e.subject is None else x509.Name.from_rfc4514_string(e.subject),
                san=None if e.san is None else _split_san(e.san),
                caller=Caller(
                    name=e.name,
                    roles=frozenset(e.roles),
                    importers=frozenset(e.importers) if Role.IMPORTER in e.roles else None,
                ),
            )
            for e in parsed.callers
        )
        return cls(roots=b"".join(pems), entries=entries)

    def identify(self, pem: bytes) -> Caller | None:
        """The caller a peer certificate (PEM) maps to, or None."""
        if pem in self._cache:
            return self._cache[pem]
        caller = self._match(pem)
        if len(self._cache) > 4096:  # bound the cache; identities are few in practice
            self._cache.clear()
        self._cache[pem] = caller
        return caller

    def _match(self, pem: bytes) -> Caller | None:
        try:
            cert = x509.load_pem_x509_certificate(pem)
        except ValueError:
            return None
        sans = _sans_of(cert)
        found = [
            m.caller
            for m in self.entries
            if (m.subject == cert.subject if m.subject is not None else m.san in sans)
            and _issued_by(cert, m.ca)
        ]
        # Two entries matching one certificate (by subject and by SAN) is ambiguous.
        return found[0] if len(found) == 1 else None


def _checked_ca(name: str, cert: x509.Certificate) -> x509.Certificate:
    try:
        constraints = cert.extensions.get_extension_for_class(x509.BasicConstraints).value
    except x509.ExtensionNotFound:
        constraints = None
    if constraints is None or not constraints.ca:
        raise ConfigError(f"client CA {name} is not a CA certificate (basicConstraints CA:true)")
    return cert


def _issued_by(cert: x509.Certificate, ca: x509.Certificate) -> bool:
    try:
        cert.verify_directly_issued_by(ca)
    except (ValueError, TypeError, InvalidSignature):
        return False
    return True


def _split_san(san: str) -> tuple[str, str]:
    kind, _, value = san.partition(":")
    if kind == "ip":
        value = str(ipaddress.ip_address(value))
    return kind, value


def _sans_of(cert: x509.Certificate) -> set[tuple[str, str]]:
    try:
        ext = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    except x509.ExtensionNotFound:
        return set()
    found: set[tuple[str, str]] = set()
    for kind, general in (
        ("dns", x509.DNSName),
        ("uri", x509.UniformResourceIdentifier),
        ("email", x509.RFC822Name),
        ("ip", x509.IPAddress),
    ):
        for value in ext.get_values_for_type(general):
            found.add((kind, str(value)))
    return found


# --- the interceptor -------------------------------------------------------------------


class Access:
    """Identifies the caller of a call: by certificate under mTLS, else anonymous."""

    def __init__(self, access_map: AccessMap | None) -> None:
        self._map = access_map

    @property
    def insecure(self) -> bool:
        return self._map is None

    @property
    def roots(self) -> bytes | None:
        """The client CA certificates the TLS handshake trusts (PEM); None if insecure."""
        return None if self._map is None else self._map.roots

    def caller(self, context: grpc.ServicerContext) -> Caller | None:
        """The mapped caller of `context`, ANONYMOUS under insecure, or None."""
        if self._map is None:
            return ANONYMOUS
        pems = cast(list[bytes], context.auth_context().get("x509_pem_cert") or [])
        return self._map.identify(pems[0]) if pems else None

    def require(self, context: grpc.ServicerContext) -> Caller:
        """The caller, for a servicer: the interceptor already refused unmapped ones."""
        caller = self.caller(context)
        if caller is None:  # pragma: no cover - the interceptor refuses these first
            raise PermissionDenied("the caller is not identified", reason="CALLER_UNKNOWN")
        return caller


def _refusal(method: str, access: Access, context: grpc.ServicerContext) -> grpc.Status | None:
    if method in PUBLIC:
        return None
    caller = access.caller(context)
    if caller is None:
        log.info("rpc_unauthenticated", rpc=method, peer=context.peer())
        return build_status(
            grpc.StatusCode.UNAUTHENTICATED,
            "CALLER_UNKNOWN",
            "the client certificate maps to no caller of this service",
        )
    if not allowed(method, caller):
        log.info("rpc_denied", rpc=method, caller=caller.name, roles=sorted(caller.roles))
        return build_status(
            grpc.StatusCode.PERMISSION_DENIED,
            "ROLE_NOT_ALLOWED",
            f"{method.rsplit('/', 1)[-1]} is not allowed for the roles of {caller.name}",
            metadata={"caller": caller.name, "method": method},
        )
    return None


Behaviour = Callable[[Any, grpc.ServicerContext], Any]


class AccessInterceptor(ServerInterceptorBase):
    """Refuses every call the table does not allow, before any servicer code runs; then
    a request body that did not decode (an `Undecodable` from the `tolerant`
    deserializer it installs) as INVALID_ARGUMENT REQUEST_UNDECODABLE, so a stranger
    learns nothing from how its bytes parse."""

    def __init__(self, access: Access) -> None:
        self._access = access

    def intercept_service(
        self,
        continuation: Callable[[grpc.HandlerCallDetails], grpc.RpcMethodHandler[Any, Any] | None],
        handler_call_details: grpc.HandlerCallDetails,
    ) -> grpc.RpcMethodHandler[Any, Any] | None:
        handler = continuation(handler_call_details)
        if handler is None:
            return None
        method = handler_call_details.method
        access = self._access

        streamed = handler.stream_unary is not None or handler.stream_stream is not None

        def guard(behaviour: Behaviour) -> Behaviour:
            def checked(request: Any, context: grpc.ServicerContext) -> Any:
                refusal = _refusal(method, access, context)
                if refusal is not None:
                    context.abort_with_status(refusal)
                if streamed:
                    request = _decoded(request, context)
                elif isinstance(request, Undecodable):
                    context.abort_with_status(undecodable_status(request))
                return behaviour(request, context)

            return checked

        return _wrapped(handler, guard, method)


def _decoded(requests: Iterator[Any], context: grpc.ServicerContext) -> Iterator[Any]:
    """A request stream that ends the call with REQUEST_UNDECODABLE at a bad message."""
    for request in requests:
        if isinstance(request, Undecodable):
            context.abort_with_status(undecodable_status(request))
        yield request


def _wrapped(
    handler: grpc.RpcMethodHandler[Any, Any],
    guard: Callable[[Behaviour], Behaviour],
    method: str,
) -> grpc.RpcMethodHandler[Any, Any]:
    """`handler` with each behaviour guarded and a deserializer that never raises."""
    kinds = (
        ("unary_unary", grpc.unary_unary_rpc_method_handler),
        ("unary_stream", grpc.unary_stream_rpc_method_handler),
        ("stream_unary", grpc.stream_unary_rpc_method_handler),
        ("stream_stream", grpc.stream_stream_rpc_method_handler),
    )
    for attribute, make in kinds:
        behaviour = getattr(handler, attribute)
        if behaviour is not None:
            return make(
                guard(behaviour),
                request_deserializer=tolerant(handler.request_deserializer, method),
                response_serializer=handler.response_serializer,
            )
    return handler  # pragma: no cover - every handler has one behaviour


def markdown_table() -> str:
    """The role table as Markdown, for docs/access.md (a test keeps them equal)."""
    roles = list(Role)
    lines = [
        "| method | " + " | ".join(r.value for r in roles) + " | scope |",
        "|---|" + "---|" * len(roles) + "---|",
    ]
    for method, rule in RPC_ROLES.items():
        marks = " | ".join("yes" if r in rule.roles else "" for r in roles)
        lines.append(f"| `{method.lstrip('/')}` | {marks} | {rule.scope} |")
    for method in sorted(PUBLIC):
        lines.append(
            f"| `{method.lstrip('/')}` | "
            + " | ".join("any" for _ in roles)
            + " | any TLS peer, mapped or not |"
        )
    return "\n".join(lines) + "\n"
