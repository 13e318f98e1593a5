# Generated from proto/ by clients/python/gen_proto.py. Do not edit.
from eucgate_client.v1 import decision_pb2 as _decision_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf.internal import enum_type_wrapper as _enum_type_wrapper
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class Verdict(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    VERDICT_UNSPECIFIED: _ClassVar[Verdict]
    VERDICT_APPROVE: _ClassVar[Verdict]
    VERDICT_REJECT: _ClassVar[Verdict]
VERDICT_UNSPECIFIED: Verdict
VERDICT_APPROVE: Verdict
VERDICT_REJECT: Verdict

class ListReferralsRequest(_message.Message):
    __slots__ = ("page_size", "page_token", "include_resolved")
    PAGE_SIZE_FIELD_NUMBER: _ClassVar[int]
    PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    INCLUDE_RESOLVED_FIELD_NUMBER: _ClassVar[int]
    page_size: int
    page_token: str
    include_resolved: bool
    def __init__(self, page_size: _Optional[int] = ..., page_token: _Optional[str] = ..., include_resolved: _Optional[bool] = ...) -> None: ...

class ListReferralsResponse(_message.Message):
    __slots__ = ("referrals", "next_page_token")
    REFERRALS_FIELD_NUMBER: _ClassVar[int]
    NEXT_PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    referrals: _containers.RepeatedCompositeFieldContainer[Referral]
    next_page_token: str
    def __init__(self, referrals: _Optional[_Iterable[_Union[Referral, _Mapping]]] = ..., next_page_token: _Optional[str] = ...) -> None: ...

class Referral(_message.Message):
    __slots__ = ("decision", "resolution_decision_id")
    DECISION_FIELD_NUMBER: _ClassVar[int]
    RESOLUTION_DECISION_ID_FIELD_NUMBER: _ClassVar[int]
    decision: _decision_pb2.Decision
    resolution_decision_id: str
    def __init__(self, decision: _Optional[_Union[_decision_pb2.Decision, _Mapping]] = ..., resolution_decision_id: _Optional[str] = ...) -> None: ...

class ResolveReferralRequest(_message.Message):
    __slots__ = ("decision_id", "verdict", "reason")
    DECISION_ID_FIELD_NUMBER: _ClassVar[int]
    VERDICT_FIELD_NUMBER: _ClassVar[int]
    REASON_FIELD_NUMBER: _ClassVar[int]
    decision_id: str
    verdict: Verdict
    reason: str
    def __init__(self, decision_id: _Optional[str] = ..., verdict: _Optional[_Union[Verdict, str]] = ..., reason: _Optional[str] = ...) -> None: ...

class ResolveReferralResponse(_message.Message):
    __slots__ = ("decision", "receipt")
    DECISION_FIELD_NUMBER: _ClassVar[int]
    RECEIPT_FIELD_NUMBER: _ClassVar[int]
    decision: _decision_pb2.Decision
    receipt: _decision_pb2.Receipt
    def __init__(self, decision: _Optional[_Union[_decision_pb2.Decision, _Mapping]] = ..., receipt: _Optional[_Union[_decision_pb2.Receipt, _Mapping]] = ...) -> None: ...
