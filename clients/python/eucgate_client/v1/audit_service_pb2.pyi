# Generated from proto/ by clients/python/gen_proto.py. Do not edit.
from google.protobuf.internal import containers as _containers
from google.protobuf.internal import enum_type_wrapper as _enum_type_wrapper
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class ReplayStatus(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    REPLAY_STATUS_UNSPECIFIED: _ClassVar[ReplayStatus]
    REPLAY_STATUS_MATCH: _ClassVar[ReplayStatus]
    REPLAY_STATUS_DIFFERENT: _ClassVar[ReplayStatus]
    REPLAY_STATUS_UNCHANGED: _ClassVar[ReplayStatus]
    REPLAY_STATUS_CHANGED: _ClassVar[ReplayStatus]
    REPLAY_STATUS_SKIPPED: _ClassVar[ReplayStatus]
    REPLAY_STATUS_ERROR: _ClassVar[ReplayStatus]
REPLAY_STATUS_UNSPECIFIED: ReplayStatus
REPLAY_STATUS_MATCH: ReplayStatus
REPLAY_STATUS_DIFFERENT: ReplayStatus
REPLAY_STATUS_UNCHANGED: ReplayStatus
REPLAY_STATUS_CHANGED: ReplayStatus
REPLAY_STATUS_SKIPPED: ReplayStatus
REPLAY_STATUS_ERROR: ReplayStatus

class GetCheckpointRequest(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class GetCheckpointResponse(_message.Message):
    __slots__ = ("checkpoint", "tree_size", "verifier_key", "witnessed_checkpoint", "witnessed_tree_size")
    CHECKPOINT_FIELD_NUMBER: _ClassVar[int]
    TREE_SIZE_FIELD_NUMBER: _ClassVar[int]
    VERIFIER_KEY_FIELD_NUMBER: _ClassVar[int]
    WITNESSED_CHECKPOINT_FIELD_NUMBER: _ClassVar[int]
    WITNESSED_TREE_SIZE_FIELD_NUMBER: _ClassVar[int]
    checkpoint: str
    tree_size: int
    verifier_key: str
    witnessed_checkpoint: str
    witnessed_tree_size: int
    def __init__(self, checkpoint: _Optional[str] = ..., tree_size: _Optional[int] = ..., verifier_key: _Optional[str] = ..., witnessed_checkpoint: _Optional[str] = ..., witnessed_tree_size: _Optional[int] = ...) -> None: ...

class GetInclusionProofRequest(_message.Message):
    __slots__ = ("decision_id", "leaf_index", "tree_size")
    DECISION_ID_FIELD_NUMBER: _ClassVar[int]
    LEAF_INDEX_FIELD_NUMBER: _ClassVar[int]
    TREE_SIZE_FIELD_NUMBER: _ClassVar[int]
    decision_id: str
    leaf_index: int
    tree_size: int
    def __init__(self, decision_id: _Optional[str] = ..., leaf_index: _Optional[int] = ..., tree_size: _Optional[int] = ...) -> None: ...

class GetInclusionProofResponse(_message.Message):
    __slots__ = ("leaf_index", "tree_size", "hashes", "leaf_hash", "checkpoint")
    LEAF_INDEX_FIELD_NUMBER: _ClassVar[int]
    TREE_SIZE_FIELD_NUMBER: _ClassVar[int]
    HASHES_FIELD_NUMBER: _ClassVar[int]
    LEAF_HASH_FIELD_NUMBER: _ClassVar[int]
    CHECKPOINT_FIELD_NUMBER: _ClassVar[int]
    leaf_index: int
    tree_size: int
    hashes: _containers.RepeatedScalarFieldContainer[bytes]
    leaf_hash: bytes
    checkpoint: str
    def __init__(self, leaf_index: _Optional[int] = ..., tree_size: _Optional[int] = ..., hashes: _Optional[_Iterable[bytes]] = ..., leaf_hash: _Optional[bytes] = ..., checkpoint: _Optional[str] = ...) -> None: ...

class GetConsistencyProofRequest(_message.Message):
    __slots__ = ("first_size", "second_size")
    FIRST_SIZE_FIELD_NUMBER: _ClassVar[int]
    SECOND_SIZE_FIELD_NUMBER: _ClassVar[int]
    first_size: int
    second_size: int
    def __init__(self, first_size: _Optional[int] = ..., second_size: _Optional[int] = ...) -> None: ...

class GetConsistencyProofResponse(_message.Message):
    __slots__ = ("first_size", "second_size", "hashes", "checkpoint")
    FIRST_SIZE_FIELD_NUMBER: _ClassVar[int]
    SECOND_SIZE_FIELD_NUMBER: _ClassVar[int]
    HASHES_FIELD_NUMBER: _ClassVar[int]
    CHECKPOINT_FIELD_NUMBER: _ClassVar[int]
    first_size: int
    second_size: int
    hashes: _containers.RepeatedScalarFieldContainer[bytes]
    checkpoint: str
    def __init__(self, first_size: _Optional[int] = ..., second_size: _Optional[int] = ..., hashes: _Optional[_Iterable[bytes]] = ..., checkpoint: _Optional[str] = ...) -> None: ...

class StreamEntriesRequest(_message.Message):
    __slots__ = ("start_index", "limit", "page_size")
    START_INDEX_FIELD_NUMBER: _ClassVar[int]
    LIMIT_FIELD_NUMBER: _ClassVar[int]
    PAGE_SIZE_FIELD_NUMBER: _ClassVar[int]
    start_index: int
    limit: int
    page_size: int
    def __init__(self, start_index: _Optional[int] = ..., limit: _Optional[int] = ..., page_size: _Optional[int] = ...) -> None: ...

class StreamEntriesResponse(_message.Message):
    __slots__ = ("start_index", "entries", "tree_size")
    START_INDEX_FIELD_NUMBER: _ClassVar[int]
    ENTRIES_FIELD_NUMBER: _ClassVar[int]
    TREE_SIZE_FIELD_NUMBER: _ClassVar[int]
    start_index: int
    entries: _containers.RepeatedScalarFieldContainer[bytes]
    tree_size: int
    def __init__(self, start_index: _Optional[int] = ..., entries: _Optional[_Iterable[bytes]] = ..., tree_size: _Optional[int] = ...) -> None: ...

class ReplayRequest(_message.Message):
    __slots__ = ("start_index", "limit", "candidate_bundle", "keep_going")
    START_INDEX_FIELD_NUMBER: _ClassVar[int]
    LIMIT_FIELD_NUMBER: _ClassVar[int]
    CANDIDATE_BUNDLE_FIELD_NUMBER: _ClassVar[int]
    KEEP_GOING_FIELD_NUMBER: _ClassVar[int]
    start_index: int
    limit: int
    candidate_bundle: bytes
    keep_going: bool
    def __init__(self, start_index: _Optional[int] = ..., limit: _Optional[int] = ..., candidate_bundle: _Optional[bytes] = ..., keep_going: _Optional[bool] = ...) -> None: ...

class ReplayResponse(_message.Message):
    __slots__ = ("range", "result")
    RANGE_FIELD_NUMBER: _ClassVar[int]
    RESULT_FIELD_NUMBER: _ClassVar[int]
    range: ReplayRange
    result: ReplayResult
    def __init__(self, range: _Optional[_Union[ReplayRange, _Mapping]] = ..., result: _Optional[_Union[ReplayResult, _Mapping]] = ...) -> None: ...

class ReplayRange(_message.Message):
    __slots__ = ("checkpoint", "tree_size", "start_index", "end_index", "prefix_hashes", "consistency_proof", "candidate_bundle_digest")
    CHECKPOINT_FIELD_NUMBER: _ClassVar[int]
    TREE_SIZE_FIELD_NUMBER: _ClassVar[int]
    START_INDEX_FIELD_NUMBER: _ClassVar[int]
    END_INDEX_FIELD_NUMBER: _ClassVar[int]
    PREFIX_HASHES_FIELD_NUMBER: _ClassVar[int]
    CONSISTENCY_PROOF_FIELD_NUMBER: _ClassVar[int]
    CANDIDATE_BUNDLE_DIGEST_FIELD_NUMBER: _ClassVar[int]
    checkpoint: str
    tree_size: int
    start_index: int
    end_index: int
    prefix_hashes: _containers.RepeatedScalarFieldContainer[bytes]
    consistency_proof: _containers.RepeatedScalarFieldContainer[bytes]
    candidate_bundle_digest: str
    def __init__(self, checkpoint: _Optional[str] = ..., tree_size: _Optional[int] = ..., start_index: _Optional[int] = ..., end_index: _Optional[int] = ..., prefix_hashes: _Optional[_Iterable[bytes]] = ..., consistency_proof: _Optional[_Iterable[bytes]] = ..., candidate_bundle_digest: _Optional[str] = ...) -> None: ...

class ReplayResult(_message.Message):
    __slots__ = ("leaf_index", "decision_id", "leaf_hash", "status", "reason", "message", "detail")
    LEAF_INDEX_FIELD_NUMBER: _ClassVar[int]
    DECISION_ID_FIELD_NUMBER: _ClassVar[int]
    LEAF_HASH_FIELD_NUMBER: _ClassVar[int]
    STATUS_FIELD_NUMBER: _ClassVar[int]
    REASON_FIELD_NUMBER: _ClassVar[int]
    MESSAGE_FIELD_NUMBER: _ClassVar[int]
    DETAIL_FIELD_NUMBER: _ClassVar[int]
    leaf_index: int
    decision_id: str
    leaf_hash: bytes
    status: ReplayStatus
    reason: str
    message: str
    detail: bytes
    def __init__(self, leaf_index: _Optional[int] = ..., decision_id: _Optional[str] = ..., leaf_hash: _Optional[bytes] = ..., status: _Optional[_Union[ReplayStatus, str]] = ..., reason: _Optional[str] = ..., message: _Optional[str] = ..., detail: _Optional[bytes] = ...) -> None: ...
