# Generated from proto/ by clients/python/gen_proto.py. Do not edit.
import datetime

from eucgate_client.v1 import decision_pb2 as _decision_pb2
from eucgate_client.v1 import envelope_pb2 as _envelope_pb2
from google.protobuf import timestamp_pb2 as _timestamp_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class SubmitCertificateRequest(_message.Message):
    __slots__ = ("request_id", "envelope", "envelope_json")
    REQUEST_ID_FIELD_NUMBER: _ClassVar[int]
    ENVELOPE_FIELD_NUMBER: _ClassVar[int]
    ENVELOPE_JSON_FIELD_NUMBER: _ClassVar[int]
    request_id: str
    envelope: _envelope_pb2.Envelope
    envelope_json: bytes
    def __init__(self, request_id: _Optional[str] = ..., envelope: _Optional[_Union[_envelope_pb2.Envelope, _Mapping]] = ..., envelope_json: _Optional[bytes] = ...) -> None: ...

class SubmitCertificateResponse(_message.Message):
    __slots__ = ("decision", "receipt", "replayed")
    DECISION_FIELD_NUMBER: _ClassVar[int]
    RECEIPT_FIELD_NUMBER: _ClassVar[int]
    REPLAYED_FIELD_NUMBER: _ClassVar[int]
    decision: _decision_pb2.Decision
    receipt: _decision_pb2.Receipt
    replayed: bool
    def __init__(self, decision: _Optional[_Union[_decision_pb2.Decision, _Mapping]] = ..., receipt: _Optional[_Union[_decision_pb2.Receipt, _Mapping]] = ..., replayed: _Optional[bool] = ...) -> None: ...

class GetDecisionRequest(_message.Message):
    __slots__ = ("decision_id",)
    DECISION_ID_FIELD_NUMBER: _ClassVar[int]
    decision_id: str
    def __init__(self, decision_id: _Optional[str] = ...) -> None: ...

class GetDecisionResponse(_message.Message):
    __slots__ = ("decision", "receipt")
    DECISION_FIELD_NUMBER: _ClassVar[int]
    RECEIPT_FIELD_NUMBER: _ClassVar[int]
    decision: _decision_pb2.Decision
    receipt: _decision_pb2.Receipt
    def __init__(self, decision: _Optional[_Union[_decision_pb2.Decision, _Mapping]] = ..., receipt: _Optional[_Union[_decision_pb2.Receipt, _Mapping]] = ...) -> None: ...

class ListDecisionsRequest(_message.Message):
    __slots__ = ("page_size", "page_token", "importer_registration", "outcome", "decided_after", "decided_before")
    PAGE_SIZE_FIELD_NUMBER: _ClassVar[int]
    PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    IMPORTER_REGISTRATION_FIELD_NUMBER: _ClassVar[int]
    OUTCOME_FIELD_NUMBER: _ClassVar[int]
    DECIDED_AFTER_FIELD_NUMBER: _ClassVar[int]
    DECIDED_BEFORE_FIELD_NUMBER: _ClassVar[int]
    page_size: int
    page_token: str
    importer_registration: str
    outcome: _decision_pb2.Outcome
    decided_after: _timestamp_pb2.Timestamp
    decided_before: _timestamp_pb2.Timestamp
    def __init__(self, page_size: _Optional[int] = ..., page_token: _Optional[str] = ..., importer_registration: _Optional[str] = ..., outcome: _Optional[_Union[_decision_pb2.Outcome, str]] = ..., decided_after: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., decided_before: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ...) -> None: ...

class ListDecisionsResponse(_message.Message):
    __slots__ = ("decisions", "next_page_token")
    DECISIONS_FIELD_NUMBER: _ClassVar[int]
    NEXT_PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    decisions: _containers.RepeatedCompositeFieldContainer[_decision_pb2.Decision]
    next_page_token: str
    def __init__(self, decisions: _Optional[_Iterable[_Union[_decision_pb2.Decision, _Mapping]]] = ..., next_page_token: _Optional[str] = ...) -> None: ...
