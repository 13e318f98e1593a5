# Generated from proto/ by clients/python/gen_proto.py. Do not edit.
import datetime

from eucgate_client.v1 import certificate_pb2 as _certificate_pb2
from google.protobuf import timestamp_pb2 as _timestamp_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class GetLicenceBalanceRequest(_message.Message):
    __slots__ = ("licence_number", "control_code")
    LICENCE_NUMBER_FIELD_NUMBER: _ClassVar[int]
    CONTROL_CODE_FIELD_NUMBER: _ClassVar[int]
    licence_number: str
    control_code: str
    def __init__(self, licence_number: _Optional[str] = ..., control_code: _Optional[str] = ...) -> None: ...

class GetLicenceBalanceResponse(_message.Message):
    __slots__ = ("licence_number", "balances", "bundle_digest")
    LICENCE_NUMBER_FIELD_NUMBER: _ClassVar[int]
    BALANCES_FIELD_NUMBER: _ClassVar[int]
    BUNDLE_DIGEST_FIELD_NUMBER: _ClassVar[int]
    licence_number: str
    balances: _containers.RepeatedCompositeFieldContainer[QuotaBalance]
    bundle_digest: str
    def __init__(self, licence_number: _Optional[str] = ..., balances: _Optional[_Iterable[_Union[QuotaBalance, _Mapping]]] = ..., bundle_digest: _Optional[str] = ...) -> None: ...

class QuotaBalance(_message.Message):
    __slots__ = ("control_code", "unit", "quota", "approved", "shipped", "remaining")
    CONTROL_CODE_FIELD_NUMBER: _ClassVar[int]
    UNIT_FIELD_NUMBER: _ClassVar[int]
    QUOTA_FIELD_NUMBER: _ClassVar[int]
    APPROVED_FIELD_NUMBER: _ClassVar[int]
    SHIPPED_FIELD_NUMBER: _ClassVar[int]
    REMAINING_FIELD_NUMBER: _ClassVar[int]
    control_code: str
    unit: str
    quota: str
    approved: str
    shipped: str
    remaining: str
    def __init__(self, control_code: _Optional[str] = ..., unit: _Optional[str] = ..., quota: _Optional[str] = ..., approved: _Optional[str] = ..., shipped: _Optional[str] = ..., remaining: _Optional[str] = ...) -> None: ...

class RecordShipmentRequest(_message.Message):
    __slots__ = ("gateway_reference", "decision_id", "control_code", "quantity")
    GATEWAY_REFERENCE_FIELD_NUMBER: _ClassVar[int]
    DECISION_ID_FIELD_NUMBER: _ClassVar[int]
    CONTROL_CODE_FIELD_NUMBER: _ClassVar[int]
    QUANTITY_FIELD_NUMBER: _ClassVar[int]
    gateway_reference: str
    decision_id: str
    control_code: str
    quantity: _certificate_pb2.Quantity
    def __init__(self, gateway_reference: _Optional[str] = ..., decision_id: _Optional[str] = ..., control_code: _Optional[str] = ..., quantity: _Optional[_Union[_certificate_pb2.Quantity, _Mapping]] = ...) -> None: ...

class RecordShipmentResponse(_message.Message):
    __slots__ = ("shipment", "replayed", "leaf_index")
    SHIPMENT_FIELD_NUMBER: _ClassVar[int]
    REPLAYED_FIELD_NUMBER: _ClassVar[int]
    LEAF_INDEX_FIELD_NUMBER: _ClassVar[int]
    shipment: Shipment
    replayed: bool
    leaf_index: int
    def __init__(self, shipment: _Optional[_Union[Shipment, _Mapping]] = ..., replayed: _Optional[bool] = ..., leaf_index: _Optional[int] = ...) -> None: ...

class Shipment(_message.Message):
    __slots__ = ("shipment_id", "gateway_reference", "decision_id", "licence_number", "control_code", "quantity", "caller", "recorded_at")
    SHIPMENT_ID_FIELD_NUMBER: _ClassVar[int]
    GATEWAY_REFERENCE_FIELD_NUMBER: _ClassVar[int]
    DECISION_ID_FIELD_NUMBER: _ClassVar[int]
    LICENCE_NUMBER_FIELD_NUMBER: _ClassVar[int]
    CONTROL_CODE_FIELD_NUMBER: _ClassVar[int]
    QUANTITY_FIELD_NUMBER: _ClassVar[int]
    CALLER_FIELD_NUMBER: _ClassVar[int]
    RECORDED_AT_FIELD_NUMBER: _ClassVar[int]
    shipment_id: str
    gateway_reference: str
    decision_id: str
    licence_number: str
    control_code: str
    quantity: _certificate_pb2.Quantity
    caller: str
    recorded_at: _timestamp_pb2.Timestamp
    def __init__(self, shipment_id: _Optional[str] = ..., gateway_reference: _Optional[str] = ..., decision_id: _Optional[str] = ..., licence_number: _Optional[str] = ..., control_code: _Optional[str] = ..., quantity: _Optional[_Union[_certificate_pb2.Quantity, _Mapping]] = ..., caller: _Optional[str] = ..., recorded_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ...) -> None: ...
