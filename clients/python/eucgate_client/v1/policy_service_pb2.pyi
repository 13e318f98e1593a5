# Generated from proto/ by clients/python/gen_proto.py. Do not edit.
import datetime

from google.protobuf import timestamp_pb2 as _timestamp_pb2
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class ActiveBundle(_message.Message):
    __slots__ = ("digest", "name", "loaded_at")
    DIGEST_FIELD_NUMBER: _ClassVar[int]
    NAME_FIELD_NUMBER: _ClassVar[int]
    LOADED_AT_FIELD_NUMBER: _ClassVar[int]
    digest: str
    name: str
    loaded_at: _timestamp_pb2.Timestamp
    def __init__(self, digest: _Optional[str] = ..., name: _Optional[str] = ..., loaded_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ...) -> None: ...

class GetBundleRequest(_message.Message):
    __slots__ = ("digest", "include_content")
    DIGEST_FIELD_NUMBER: _ClassVar[int]
    INCLUDE_CONTENT_FIELD_NUMBER: _ClassVar[int]
    digest: str
    include_content: bool
    def __init__(self, digest: _Optional[str] = ..., include_content: _Optional[bool] = ...) -> None: ...

class GetBundleResponse(_message.Message):
    __slots__ = ("bundle", "active", "canonical_bundle", "signed_bundle")
    BUNDLE_FIELD_NUMBER: _ClassVar[int]
    ACTIVE_FIELD_NUMBER: _ClassVar[int]
    CANONICAL_BUNDLE_FIELD_NUMBER: _ClassVar[int]
    SIGNED_BUNDLE_FIELD_NUMBER: _ClassVar[int]
    bundle: ActiveBundle
    active: bool
    canonical_bundle: bytes
    signed_bundle: bytes
    def __init__(self, bundle: _Optional[_Union[ActiveBundle, _Mapping]] = ..., active: _Optional[bool] = ..., canonical_bundle: _Optional[bytes] = ..., signed_bundle: _Optional[bytes] = ...) -> None: ...

class ReloadBundleRequest(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class ReloadBundleResponse(_message.Message):
    __slots__ = ("bundle", "previous_digest")
    BUNDLE_FIELD_NUMBER: _ClassVar[int]
    PREVIOUS_DIGEST_FIELD_NUMBER: _ClassVar[int]
    bundle: ActiveBundle
    previous_digest: str
    def __init__(self, bundle: _Optional[_Union[ActiveBundle, _Mapping]] = ..., previous_digest: _Optional[str] = ...) -> None: ...
