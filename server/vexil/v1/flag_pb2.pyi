import datetime

from google.protobuf import struct_pb2 as _struct_pb2
from google.protobuf import timestamp_pb2 as _timestamp_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf.internal import enum_type_wrapper as _enum_type_wrapper
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class FlagState(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    FLAG_STATE_UNSPECIFIED: _ClassVar[FlagState]
    FLAG_STATE_ENABLED: _ClassVar[FlagState]
    FLAG_STATE_DISABLED: _ClassVar[FlagState]

class ChangeKind(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    CHANGE_KIND_UNSPECIFIED: _ClassVar[ChangeKind]
    CHANGE_KIND_CREATE: _ClassVar[ChangeKind]
    CHANGE_KIND_UPDATE: _ClassVar[ChangeKind]
    CHANGE_KIND_DELETE: _ClassVar[ChangeKind]
    CHANGE_KIND_ROLLBACK: _ClassVar[ChangeKind]
    CHANGE_KIND_KILL: _ClassVar[ChangeKind]
    CHANGE_KIND_ENVIRONMENT: _ClassVar[ChangeKind]
FLAG_STATE_UNSPECIFIED: FlagState
FLAG_STATE_ENABLED: FlagState
FLAG_STATE_DISABLED: FlagState
CHANGE_KIND_UNSPECIFIED: ChangeKind
CHANGE_KIND_CREATE: ChangeKind
CHANGE_KIND_UPDATE: ChangeKind
CHANGE_KIND_DELETE: ChangeKind
CHANGE_KIND_ROLLBACK: ChangeKind
CHANGE_KIND_KILL: ChangeKind
CHANGE_KIND_ENVIRONMENT: ChangeKind

class Flag(_message.Message):
    __slots__ = ("key", "environment", "state", "variants", "default_variant", "targeting", "description", "owner", "tags", "metadata", "version", "created_at", "updated_at", "updated_by", "managed_by", "problem")
    class VariantsEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: _struct_pb2.Value
        def __init__(self, key: _Optional[str] = ..., value: _Optional[_Union[_struct_pb2.Value, _Mapping]] = ...) -> None: ...
    KEY_FIELD_NUMBER: _ClassVar[int]
    ENVIRONMENT_FIELD_NUMBER: _ClassVar[int]
    STATE_FIELD_NUMBER: _ClassVar[int]
    VARIANTS_FIELD_NUMBER: _ClassVar[int]
    DEFAULT_VARIANT_FIELD_NUMBER: _ClassVar[int]
    TARGETING_FIELD_NUMBER: _ClassVar[int]
    DESCRIPTION_FIELD_NUMBER: _ClassVar[int]
    OWNER_FIELD_NUMBER: _ClassVar[int]
    TAGS_FIELD_NUMBER: _ClassVar[int]
    METADATA_FIELD_NUMBER: _ClassVar[int]
    VERSION_FIELD_NUMBER: _ClassVar[int]
    CREATED_AT_FIELD_NUMBER: _ClassVar[int]
    UPDATED_AT_FIELD_NUMBER: _ClassVar[int]
    UPDATED_BY_FIELD_NUMBER: _ClassVar[int]
    MANAGED_BY_FIELD_NUMBER: _ClassVar[int]
    PROBLEM_FIELD_NUMBER: _ClassVar[int]
    key: str
    environment: str
    state: FlagState
    variants: _containers.MessageMap[str, _struct_pb2.Value]
    default_variant: str
    targeting: _struct_pb2.Struct
    description: str
    owner: str
    tags: _containers.RepeatedScalarFieldContainer[str]
    metadata: _struct_pb2.Struct
    version: int
    created_at: _timestamp_pb2.Timestamp
    updated_at: _timestamp_pb2.Timestamp
    updated_by: str
    managed_by: str
    problem: str
    def __init__(self, key: _Optional[str] = ..., environment: _Optional[str] = ..., state: _Optional[_Union[FlagState, str]] = ..., variants: _Optional[_Mapping[str, _struct_pb2.Value]] = ..., default_variant: _Optional[str] = ..., targeting: _Optional[_Union[_struct_pb2.Struct, _Mapping]] = ..., description: _Optional[str] = ..., owner: _Optional[str] = ..., tags: _Optional[_Iterable[str]] = ..., metadata: _Optional[_Union[_struct_pb2.Struct, _Mapping]] = ..., version: _Optional[int] = ..., created_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., updated_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., updated_by: _Optional[str] = ..., managed_by: _Optional[str] = ..., problem: _Optional[str] = ...) -> None: ...

class Environment(_message.Message):
    __slots__ = ("name", "evaluators", "kill_switch", "kill_reason", "metadata", "config_version", "updated_at", "updated_by")
    NAME_FIELD_NUMBER: _ClassVar[int]
    EVALUATORS_FIELD_NUMBER: _ClassVar[int]
    KILL_SWITCH_FIELD_NUMBER: _ClassVar[int]
    KILL_REASON_FIELD_NUMBER: _ClassVar[int]
    METADATA_FIELD_NUMBER: _ClassVar[int]
    CONFIG_VERSION_FIELD_NUMBER: _ClassVar[int]
    UPDATED_AT_FIELD_NUMBER: _ClassVar[int]
    UPDATED_BY_FIELD_NUMBER: _ClassVar[int]
    name: str
    evaluators: _struct_pb2.Struct
    kill_switch: bool
    kill_reason: str
    metadata: _struct_pb2.Struct
    config_version: int
    updated_at: _timestamp_pb2.Timestamp
    updated_by: str
    def __init__(self, name: _Optional[str] = ..., evaluators: _Optional[_Union[_struct_pb2.Struct, _Mapping]] = ..., kill_switch: _Optional[bool] = ..., kill_reason: _Optional[str] = ..., metadata: _Optional[_Union[_struct_pb2.Struct, _Mapping]] = ..., config_version: _Optional[int] = ..., updated_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., updated_by: _Optional[str] = ...) -> None: ...

class Change(_message.Message):
    __slots__ = ("environment", "config_version", "kind", "actor", "timestamp", "flag_key", "before_version", "after_version", "reason")
    ENVIRONMENT_FIELD_NUMBER: _ClassVar[int]
    CONFIG_VERSION_FIELD_NUMBER: _ClassVar[int]
    KIND_FIELD_NUMBER: _ClassVar[int]
    ACTOR_FIELD_NUMBER: _ClassVar[int]
    TIMESTAMP_FIELD_NUMBER: _ClassVar[int]
    FLAG_KEY_FIELD_NUMBER: _ClassVar[int]
    BEFORE_VERSION_FIELD_NUMBER: _ClassVar[int]
    AFTER_VERSION_FIELD_NUMBER: _ClassVar[int]
    REASON_FIELD_NUMBER: _ClassVar[int]
    environment: str
    config_version: int
    kind: ChangeKind
    actor: str
    timestamp: _timestamp_pb2.Timestamp
    flag_key: str
    before_version: int
    after_version: int
    reason: str
    def __init__(self, environment: _Optional[str] = ..., config_version: _Optional[int] = ..., kind: _Optional[_Union[ChangeKind, str]] = ..., actor: _Optional[str] = ..., timestamp: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., flag_key: _Optional[str] = ..., before_version: _Optional[int] = ..., after_version: _Optional[int] = ..., reason: _Optional[str] = ...) -> None: ...

class FlagRevision(_message.Message):
    __slots__ = ("flag", "kind", "actor", "timestamp", "config_version", "reason", "deleted")
    FLAG_FIELD_NUMBER: _ClassVar[int]
    KIND_FIELD_NUMBER: _ClassVar[int]
    ACTOR_FIELD_NUMBER: _ClassVar[int]
    TIMESTAMP_FIELD_NUMBER: _ClassVar[int]
    CONFIG_VERSION_FIELD_NUMBER: _ClassVar[int]
    REASON_FIELD_NUMBER: _ClassVar[int]
    DELETED_FIELD_NUMBER: _ClassVar[int]
    flag: Flag
    kind: ChangeKind
    actor: str
    timestamp: _timestamp_pb2.Timestamp
    config_version: int
    reason: str
    deleted: bool
    def __init__(self, flag: _Optional[_Union[Flag, _Mapping]] = ..., kind: _Optional[_Union[ChangeKind, str]] = ..., actor: _Optional[str] = ..., timestamp: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., config_version: _Optional[int] = ..., reason: _Optional[str] = ..., deleted: _Optional[bool] = ...) -> None: ...
