# Generated from proto/ by clients/python/gen_proto.py. Do not edit.
import datetime

from eucgate_client.v1 import certificate_pb2 as _certificate_pb2
from eucgate_client.v1 import envelope_pb2 as _envelope_pb2
from google.protobuf import timestamp_pb2 as _timestamp_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf.internal import enum_type_wrapper as _enum_type_wrapper
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class Outcome(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    OUTCOME_UNSPECIFIED: _ClassVar[Outcome]
    OUTCOME_APPROVED: _ClassVar[Outcome]
    OUTCOME_REJECTED: _ClassVar[Outcome]
    OUTCOME_REFERRED: _ClassVar[Outcome]

class RuleFamily(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    RULE_FAMILY_UNSPECIFIED: _ClassVar[RuleFamily]
    RULE_FAMILY_SIG: _ClassVar[RuleFamily]
    RULE_FAMILY_DOC: _ClassVar[RuleFamily]
    RULE_FAMILY_CMT: _ClassVar[RuleFamily]
    RULE_FAMILY_ITM: _ClassVar[RuleFamily]
    RULE_FAMILY_EUS: _ClassVar[RuleFamily]
    RULE_FAMILY_DST: _ClassVar[RuleFamily]
    RULE_FAMILY_PTY: _ClassVar[RuleFamily]
    RULE_FAMILY_LIC: _ClassVar[RuleFamily]
    RULE_FAMILY_QTY: _ClassVar[RuleFamily]
    RULE_FAMILY_RF: _ClassVar[RuleFamily]
    RULE_FAMILY_ENG: _ClassVar[RuleFamily]
    RULE_FAMILY_REV: _ClassVar[RuleFamily]

class RuleOutcome(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    RULE_OUTCOME_UNSPECIFIED: _ClassVar[RuleOutcome]
    RULE_OUTCOME_REJECT: _ClassVar[RuleOutcome]
    RULE_OUTCOME_REFER: _ClassVar[RuleOutcome]
OUTCOME_UNSPECIFIED: Outcome
OUTCOME_APPROVED: Outcome
OUTCOME_REJECTED: Outcome
OUTCOME_REFERRED: Outcome
RULE_FAMILY_UNSPECIFIED: RuleFamily
RULE_FAMILY_SIG: RuleFamily
RULE_FAMILY_DOC: RuleFamily
RULE_FAMILY_CMT: RuleFamily
RULE_FAMILY_ITM: RuleFamily
RULE_FAMILY_EUS: RuleFamily
RULE_FAMILY_DST: RuleFamily
RULE_FAMILY_PTY: RuleFamily
RULE_FAMILY_LIC: RuleFamily
RULE_FAMILY_QTY: RuleFamily
RULE_FAMILY_RF: RuleFamily
RULE_FAMILY_ENG: RuleFamily
RULE_FAMILY_REV: RuleFamily
RULE_OUTCOME_UNSPECIFIED: RuleOutcome
RULE_OUTCOME_REJECT: RuleOutcome
RULE_OUTCOME_REFER: RuleOutcome

class Decision(_message.Message):
    __slots__ = ("decision_id", "outcome", "reasons", "bundle_digest", "euc_digest", "decided_at", "validity", "approved_items", "request_id", "certificate_number", "importer", "end_user", "licence_number", "signers", "ledger_reads", "review")
    DECISION_ID_FIELD_NUMBER: _ClassVar[int]
    OUTCOME_FIELD_NUMBER: _ClassVar[int]
    REASONS_FIELD_NUMBER: _ClassVar[int]
    BUNDLE_DIGEST_FIELD_NUMBER: _ClassVar[int]
    EUC_DIGEST_FIELD_NUMBER: _ClassVar[int]
    DECIDED_AT_FIELD_NUMBER: _ClassVar[int]
    VALIDITY_FIELD_NUMBER: _ClassVar[int]
    APPROVED_ITEMS_FIELD_NUMBER: _ClassVar[int]
    REQUEST_ID_FIELD_NUMBER: _ClassVar[int]
    CERTIFICATE_NUMBER_FIELD_NUMBER: _ClassVar[int]
    IMPORTER_FIELD_NUMBER: _ClassVar[int]
    END_USER_FIELD_NUMBER: _ClassVar[int]
    LICENCE_NUMBER_FIELD_NUMBER: _ClassVar[int]
    SIGNERS_FIELD_NUMBER: _ClassVar[int]
    LEDGER_READS_FIELD_NUMBER: _ClassVar[int]
    REVIEW_FIELD_NUMBER: _ClassVar[int]
    decision_id: str
    outcome: Outcome
    reasons: _containers.RepeatedCompositeFieldContainer[Reason]
    bundle_digest: str
    euc_digest: str
    decided_at: _timestamp_pb2.Timestamp
    validity: _certificate_pb2.Validity
    approved_items: _containers.RepeatedCompositeFieldContainer[_certificate_pb2.Item]
    request_id: str
    certificate_number: str
    importer: PartySummary
    end_user: PartySummary
    licence_number: str
    signers: _containers.RepeatedCompositeFieldContainer[SignerSummary]
    ledger_reads: _containers.RepeatedCompositeFieldContainer[LedgerRead]
    review: Review
    def __init__(self, decision_id: _Optional[str] = ..., outcome: _Optional[_Union[Outcome, str]] = ..., reasons: _Optional[_Iterable[_Union[Reason, _Mapping]]] = ..., bundle_digest: _Optional[str] = ..., euc_digest: _Optional[str] = ..., decided_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., validity: _Optional[_Union[_certificate_pb2.Validity, _Mapping]] = ..., approved_items: _Optional[_Iterable[_Union[_certificate_pb2.Item, _Mapping]]] = ..., request_id: _Optional[str] = ..., certificate_number: _Optional[str] = ..., importer: _Optional[_Union[PartySummary, _Mapping]] = ..., end_user: _Optional[_Union[PartySummary, _Mapping]] = ..., licence_number: _Optional[str] = ..., signers: _Optional[_Iterable[_Union[SignerSummary, _Mapping]]] = ..., ledger_reads: _Optional[_Iterable[_Union[LedgerRead, _Mapping]]] = ..., review: _Optional[_Union[Review, _Mapping]] = ...) -> None: ...

class LedgerRead(_message.Message):
    __slots__ = ("licence_number", "control_code", "remaining")
    LICENCE_NUMBER_FIELD_NUMBER: _ClassVar[int]
    CONTROL_CODE_FIELD_NUMBER: _ClassVar[int]
    REMAINING_FIELD_NUMBER: _ClassVar[int]
    licence_number: str
    control_code: str
    remaining: str
    def __init__(self, licence_number: _Optional[str] = ..., control_code: _Optional[str] = ..., remaining: _Optional[str] = ...) -> None: ...

class Review(_message.Message):
    __slots__ = ("resolves_decision_id", "reviewer", "note")
    RESOLVES_DECISION_ID_FIELD_NUMBER: _ClassVar[int]
    REVIEWER_FIELD_NUMBER: _ClassVar[int]
    NOTE_FIELD_NUMBER: _ClassVar[int]
    resolves_decision_id: str
    reviewer: str
    note: str
    def __init__(self, resolves_decision_id: _Optional[str] = ..., reviewer: _Optional[str] = ..., note: _Optional[str] = ...) -> None: ...

class Reason(_message.Message):
    __slots__ = ("rule_id", "family", "outcome", "message", "field")
    RULE_ID_FIELD_NUMBER: _ClassVar[int]
    FAMILY_FIELD_NUMBER: _ClassVar[int]
    OUTCOME_FIELD_NUMBER: _ClassVar[int]
    MESSAGE_FIELD_NUMBER: _ClassVar[int]
    FIELD_FIELD_NUMBER: _ClassVar[int]
    rule_id: str
    family: RuleFamily
    outcome: RuleOutcome
    message: str
    field: str
    def __init__(self, rule_id: _Optional[str] = ..., family: _Optional[_Union[RuleFamily, str]] = ..., outcome: _Optional[_Union[RuleOutcome, str]] = ..., message: _Optional[str] = ..., field: _Optional[str] = ...) -> None: ...

class PartySummary(_message.Message):
    __slots__ = ("legal_name", "country_code", "registrations")
    LEGAL_NAME_FIELD_NUMBER: _ClassVar[int]
    COUNTRY_CODE_FIELD_NUMBER: _ClassVar[int]
    REGISTRATIONS_FIELD_NUMBER: _ClassVar[int]
    legal_name: str
    country_code: str
    registrations: _containers.RepeatedCompositeFieldContainer[_certificate_pb2.Registration]
    def __init__(self, legal_name: _Optional[str] = ..., country_code: _Optional[str] = ..., registrations: _Optional[_Iterable[_Union[_certificate_pb2.Registration, _Mapping]]] = ...) -> None: ...

class SignerSummary(_message.Message):
    __slots__ = ("role", "subject", "certificate_digest", "keyid", "verified", "failure", "revocation", "revocation_failure", "checked_at")
    ROLE_FIELD_NUMBER: _ClassVar[int]
    SUBJECT_FIELD_NUMBER: _ClassVar[int]
    CERTIFICATE_DIGEST_FIELD_NUMBER: _ClassVar[int]
    KEYID_FIELD_NUMBER: _ClassVar[int]
    VERIFIED_FIELD_NUMBER: _ClassVar[int]
    FAILURE_FIELD_NUMBER: _ClassVar[int]
    REVOCATION_FIELD_NUMBER: _ClassVar[int]
    REVOCATION_FAILURE_FIELD_NUMBER: _ClassVar[int]
    CHECKED_AT_FIELD_NUMBER: _ClassVar[int]
    role: str
    subject: str
    certificate_digest: str
    keyid: str
    verified: bool
    failure: str
    revocation: str
    revocation_failure: str
    checked_at: _timestamp_pb2.Timestamp
    def __init__(self, role: _Optional[str] = ..., subject: _Optional[str] = ..., certificate_digest: _Optional[str] = ..., keyid: _Optional[str] = ..., verified: _Optional[bool] = ..., failure: _Optional[str] = ..., revocation: _Optional[str] = ..., revocation_failure: _Optional[str] = ..., checked_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ...) -> None: ...

class Receipt(_message.Message):
    __slots__ = ("envelope", "leaf_index", "checkpoint", "inclusion_proof")
    ENVELOPE_FIELD_NUMBER: _ClassVar[int]
    LEAF_INDEX_FIELD_NUMBER: _ClassVar[int]
    CHECKPOINT_FIELD_NUMBER: _ClassVar[int]
    INCLUSION_PROOF_FIELD_NUMBER: _ClassVar[int]
    envelope: _envelope_pb2.Envelope
    leaf_index: int
    checkpoint: str
    inclusion_proof: _containers.RepeatedScalarFieldContainer[bytes]
    def __init__(self, envelope: _Optional[_Union[_envelope_pb2.Envelope, _Mapping]] = ..., leaf_index: _Optional[int] = ..., checkpoint: _Optional[str] = ..., inclusion_proof: _Optional[_Iterable[bytes]] = ...) -> None: ...
