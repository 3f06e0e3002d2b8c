from google.protobuf import struct_pb2 as _struct_pb2
from vexil.v1 import flag_pb2 as _flag_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf.internal import enum_type_wrapper as _enum_type_wrapper
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class CreateFlagRequest(_message.Message):
    __slots__ = ("flag", "reason")
    FLAG_FIELD_NUMBER: _ClassVar[int]
    REASON_FIELD_NUMBER: _ClassVar[int]
    flag: _flag_pb2.Flag
    reason: str
    def __init__(self, flag: _Optional[_Union[_flag_pb2.Flag, _Mapping]] = ..., reason: _Optional[str] = ...) -> None: ...

class UpdateFlagRequest(_message.Message):
    __slots__ = ("flag", "expected_version", "reason")
    FLAG_FIELD_NUMBER: _ClassVar[int]
    EXPECTED_VERSION_FIELD_NUMBER: _ClassVar[int]
    REASON_FIELD_NUMBER: _ClassVar[int]
    flag: _flag_pb2.Flag
    expected_version: int
    reason: str
    def __init__(self, flag: _Optional[_Union[_flag_pb2.Flag, _Mapping]] = ..., expected_version: _Optional[int] = ..., reason: _Optional[str] = ...) -> None: ...

class FlagResponse(_message.Message):
    __slots__ = ("flag", "config_version")
    FLAG_FIELD_NUMBER: _ClassVar[int]
    CONFIG_VERSION_FIELD_NUMBER: _ClassVar[int]
    flag: _flag_pb2.Flag
    config_version: int
    def __init__(self, flag: _Optional[_Union[_flag_pb2.Flag, _Mapping]] = ..., config_version: _Optional[int] = ...) -> None: ...

class DeleteFlagRequest(_message.Message):
    __slots__ = ("environment", "key", "expected_version", "reason")
    ENVIRONMENT_FIELD_NUMBER: _ClassVar[int]
    KEY_FIELD_NUMBER: _ClassVar[int]
    EXPECTED_VERSION_FIELD_NUMBER: _ClassVar[int]
    REASON_FIELD_NUMBER: _ClassVar[int]
    environment: str
    key: str
    expected_version: int
    reason: str
    def __init__(self, environment: _Optional[str] = ..., key: _Optional[str] = ..., expected_version: _Optional[int] = ..., reason: _Optional[str] = ...) -> None: ...

class DeleteFlagResponse(_message.Message):
    __slots__ = ("config_version", "deleted_version")
    CONFIG_VERSION_FIELD_NUMBER: _ClassVar[int]
    DELETED_VERSION_FIELD_NUMBER: _ClassVar[int]
    config_version: int
    deleted_version: int
    def __init__(self, config_version: _Optional[int] = ..., deleted_version: _Optional[int] = ...) -> None: ...

class GetFlagRequest(_message.Message):
    __slots__ = ("environment", "key")
    ENVIRONMENT_FIELD_NUMBER: _ClassVar[int]
    KEY_FIELD_NUMBER: _ClassVar[int]
    environment: str
    key: str
    def __init__(self, environment: _Optional[str] = ..., key: _Optional[str] = ...) -> None: ...

class ListFlagsRequest(_message.Message):
    __slots__ = ("environment", "owner", "tag", "page_size", "page_token")
    ENVIRONMENT_FIELD_NUMBER: _ClassVar[int]
    OWNER_FIELD_NUMBER: _ClassVar[int]
    TAG_FIELD_NUMBER: _ClassVar[int]
    PAGE_SIZE_FIELD_NUMBER: _ClassVar[int]
    PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    environment: str
    owner: str
    tag: str
    page_size: int
    page_token: str
    def __init__(self, environment: _Optional[str] = ..., owner: _Optional[str] = ..., tag: _Optional[str] = ..., page_size: _Optional[int] = ..., page_token: _Optional[str] = ...) -> None: ...

class ListFlagsResponse(_message.Message):
    __slots__ = ("flags", "next_page_token")
    FLAGS_FIELD_NUMBER: _ClassVar[int]
    NEXT_PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    flags: _containers.RepeatedCompositeFieldContainer[_flag_pb2.Flag]
    next_page_token: str
    def __init__(self, flags: _Optional[_Iterable[_Union[_flag_pb2.Flag, _Mapping]]] = ..., next_page_token: _Optional[str] = ...) -> None: ...

class GetFlagHistoryRequest(_message.Message):
    __slots__ = ("environment", "key", "page_size", "page_token")
    ENVIRONMENT_FIELD_NUMBER: _ClassVar[int]
    KEY_FIELD_NUMBER: _ClassVar[int]
    PAGE_SIZE_FIELD_NUMBER: _ClassVar[int]
    PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    environment: str
    key: str
    page_size: int
    page_token: str
    def __init__(self, environment: _Optional[str] = ..., key: _Optional[str] = ..., page_size: _Optional[int] = ..., page_token: _Optional[str] = ...) -> None: ...

class GetFlagHistoryResponse(_message.Message):
    __slots__ = ("revisions", "next_page_token")
    REVISIONS_FIELD_NUMBER: _ClassVar[int]
    NEXT_PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    revisions: _containers.RepeatedCompositeFieldContainer[_flag_pb2.FlagRevision]
    next_page_token: str
    def __init__(self, revisions: _Optional[_Iterable[_Union[_flag_pb2.FlagRevision, _Mapping]]] = ..., next_page_token: _Optional[str] = ...) -> None: ...

class RollbackFlagRequest(_message.Message):
    __slots__ = ("environment", "key", "to_version", "expected_version", "reason")
    ENVIRONMENT_FIELD_NUMBER: _ClassVar[int]
    KEY_FIELD_NUMBER: _ClassVar[int]
    TO_VERSION_FIELD_NUMBER: _ClassVar[int]
    EXPECTED_VERSION_FIELD_NUMBER: _ClassVar[int]
    REASON_FIELD_NUMBER: _ClassVar[int]
    environment: str
    key: str
    to_version: int
    expected_version: int
    reason: str
    def __init__(self, environment: _Optional[str] = ..., key: _Optional[str] = ..., to_version: _Optional[int] = ..., expected_version: _Optional[int] = ..., reason: _Optional[str] = ...) -> None: ...

class SetKillSwitchRequest(_message.Message):
    __slots__ = ("environment", "flag_key", "killed", "reason")
    ENVIRONMENT_FIELD_NUMBER: _ClassVar[int]
    FLAG_KEY_FIELD_NUMBER: _ClassVar[int]
    KILLED_FIELD_NUMBER: _ClassVar[int]
    REASON_FIELD_NUMBER: _ClassVar[int]
    environment: str
    flag_key: str
    killed: bool
    reason: str
    def __init__(self, environment: _Optional[str] = ..., flag_key: _Optional[str] = ..., killed: _Optional[bool] = ..., reason: _Optional[str] = ...) -> None: ...

class SetKillSwitchResponse(_message.Message):
    __slots__ = ("config_version", "flag", "environment")
    CONFIG_VERSION_FIELD_NUMBER: _ClassVar[int]
    FLAG_FIELD_NUMBER: _ClassVar[int]
    ENVIRONMENT_FIELD_NUMBER: _ClassVar[int]
    config_version: int
    flag: _flag_pb2.Flag
    environment: _flag_pb2.Environment
    def __init__(self, config_version: _Optional[int] = ..., flag: _Optional[_Union[_flag_pb2.Flag, _Mapping]] = ..., environment: _Optional[_Union[_flag_pb2.Environment, _Mapping]] = ...) -> None: ...

class ListChangesRequest(_message.Message):
    __slots__ = ("environment", "since_version", "page_size", "flag_key")
    ENVIRONMENT_FIELD_NUMBER: _ClassVar[int]
    SINCE_VERSION_FIELD_NUMBER: _ClassVar[int]
    PAGE_SIZE_FIELD_NUMBER: _ClassVar[int]
    FLAG_KEY_FIELD_NUMBER: _ClassVar[int]
    environment: str
    since_version: int
    page_size: int
    flag_key: str
    def __init__(self, environment: _Optional[str] = ..., since_version: _Optional[int] = ..., page_size: _Optional[int] = ..., flag_key: _Optional[str] = ...) -> None: ...

class ListChangesResponse(_message.Message):
    __slots__ = ("changes", "next_since_version")
    CHANGES_FIELD_NUMBER: _ClassVar[int]
    NEXT_SINCE_VERSION_FIELD_NUMBER: _ClassVar[int]
    changes: _containers.RepeatedCompositeFieldContainer[_flag_pb2.Change]
    next_since_version: int
    def __init__(self, changes: _Optional[_Iterable[_Union[_flag_pb2.Change, _Mapping]]] = ..., next_since_version: _Optional[int] = ...) -> None: ...

class GetEnvironmentRequest(_message.Message):
    __slots__ = ("environment",)
    ENVIRONMENT_FIELD_NUMBER: _ClassVar[int]
    environment: str
    def __init__(self, environment: _Optional[str] = ...) -> None: ...

class UpdateEnvironmentRequest(_message.Message):
    __slots__ = ("environment", "evaluators", "metadata", "expected_config_version", "reason")
    ENVIRONMENT_FIELD_NUMBER: _ClassVar[int]
    EVALUATORS_FIELD_NUMBER: _ClassVar[int]
    METADATA_FIELD_NUMBER: _ClassVar[int]
    EXPECTED_CONFIG_VERSION_FIELD_NUMBER: _ClassVar[int]
    REASON_FIELD_NUMBER: _ClassVar[int]
    environment: str
    evaluators: _struct_pb2.Struct
    metadata: _struct_pb2.Struct
    expected_config_version: int
    reason: str
    def __init__(self, environment: _Optional[str] = ..., evaluators: _Optional[_Union[_struct_pb2.Struct, _Mapping]] = ..., metadata: _Optional[_Union[_struct_pb2.Struct, _Mapping]] = ..., expected_config_version: _Optional[int] = ..., reason: _Optional[str] = ...) -> None: ...

class GetStatusRequest(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class ServerStatus(_message.Message):
    __slots__ = ("state", "store", "environments", "version", "insecure", "insecure_reasons")
    class State(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
        __slots__ = ()
        STATE_UNSPECIFIED: _ClassVar[ServerStatus.State]
        STATE_SERVING: _ClassVar[ServerStatus.State]
        STATE_DEGRADED: _ClassVar[ServerStatus.State]
        STATE_LOADING: _ClassVar[ServerStatus.State]
    STATE_UNSPECIFIED: ServerStatus.State
    STATE_SERVING: ServerStatus.State
    STATE_DEGRADED: ServerStatus.State
    STATE_LOADING: ServerStatus.State
    STATE_FIELD_NUMBER: _ClassVar[int]
    STORE_FIELD_NUMBER: _ClassVar[int]
    ENVIRONMENTS_FIELD_NUMBER: _ClassVar[int]
    VERSION_FIELD_NUMBER: _ClassVar[int]
    INSECURE_FIELD_NUMBER: _ClassVar[int]
    INSECURE_REASONS_FIELD_NUMBER: _ClassVar[int]
    state: ServerStatus.State
    store: str
    environments: _containers.RepeatedCompositeFieldContainer[EnvironmentStatus]
    version: str
    insecure: bool
    insecure_reasons: _containers.RepeatedScalarFieldContainer[str]
    def __init__(self, state: _Optional[_Union[ServerStatus.State, str]] = ..., store: _Optional[str] = ..., environments: _Optional[_Iterable[_Union[EnvironmentStatus, _Mapping]]] = ..., version: _Optional[str] = ..., insecure: _Optional[bool] = ..., insecure_reasons: _Optional[_Iterable[str]] = ...) -> None: ...

class EnvironmentStatus(_message.Message):
    __slots__ = ("name", "config_version", "flags", "staleness_seconds", "healthy", "last_error", "subscribers", "replicas")
    NAME_FIELD_NUMBER: _ClassVar[int]
    CONFIG_VERSION_FIELD_NUMBER: _ClassVar[int]
    FLAGS_FIELD_NUMBER: _ClassVar[int]
    STALENESS_SECONDS_FIELD_NUMBER: _ClassVar[int]
    HEALTHY_FIELD_NUMBER: _ClassVar[int]
    LAST_ERROR_FIELD_NUMBER: _ClassVar[int]
    SUBSCRIBERS_FIELD_NUMBER: _ClassVar[int]
    REPLICAS_FIELD_NUMBER: _ClassVar[int]
    name: str
    config_version: int
    flags: int
    staleness_seconds: float
    healthy: bool
    last_error: str
    subscribers: int
    replicas: _containers.RepeatedCompositeFieldContainer[ReplicaStatus]
    def __init__(self, name: _Optional[str] = ..., config_version: _Optional[int] = ..., flags: _Optional[int] = ..., staleness_seconds: _Optional[float] = ..., healthy: _Optional[bool] = ..., last_error: _Optional[str] = ..., subscribers: _Optional[int] = ..., replicas: _Optional[_Iterable[_Union[ReplicaStatus, _Mapping]]] = ...) -> None: ...

class ReplicaStatus(_message.Message):
    __slots__ = ("id", "address", "config_version", "lag", "last_seen_seconds", "self")
    ID_FIELD_NUMBER: _ClassVar[int]
    ADDRESS_FIELD_NUMBER: _ClassVar[int]
    CONFIG_VERSION_FIELD_NUMBER: _ClassVar[int]
    LAG_FIELD_NUMBER: _ClassVar[int]
    LAST_SEEN_SECONDS_FIELD_NUMBER: _ClassVar[int]
    SELF_FIELD_NUMBER: _ClassVar[int]
    id: str
    address: str
    config_version: int
    lag: int
    last_seen_seconds: float
    self: bool
    def __init__(self_, id: _Optional[str] = ..., address: _Optional[str] = ..., config_version: _Optional[int] = ..., lag: _Optional[int] = ..., last_seen_seconds: _Optional[float] = ..., self: _Optional[bool] = ...) -> None: ...

class WaitForPropagationRequest(_message.Message):
    __slots__ = ("environment", "config_version", "timeout_seconds")
    ENVIRONMENT_FIELD_NUMBER: _ClassVar[int]
    CONFIG_VERSION_FIELD_NUMBER: _ClassVar[int]
    TIMEOUT_SECONDS_FIELD_NUMBER: _ClassVar[int]
    environment: str
    config_version: int
    timeout_seconds: float
    def __init__(self, environment: _Optional[str] = ..., config_version: _Optional[int] = ..., timeout_seconds: _Optional[float] = ...) -> None: ...

class WaitForPropagationResponse(_message.Message):
    __slots__ = ("environment", "config_version", "complete", "applied", "total", "replicas", "laggards", "elapsed_seconds")
    ENVIRONMENT_FIELD_NUMBER: _ClassVar[int]
    CONFIG_VERSION_FIELD_NUMBER: _ClassVar[int]
    COMPLETE_FIELD_NUMBER: _ClassVar[int]
    APPLIED_FIELD_NUMBER: _ClassVar[int]
    TOTAL_FIELD_NUMBER: _ClassVar[int]
    REPLICAS_FIELD_NUMBER: _ClassVar[int]
    LAGGARDS_FIELD_NUMBER: _ClassVar[int]
    ELAPSED_SECONDS_FIELD_NUMBER: _ClassVar[int]
    environment: str
    config_version: int
    complete: bool
    applied: int
    total: int
    replicas: _containers.RepeatedCompositeFieldContainer[ReplicaStatus]
    laggards: _containers.RepeatedScalarFieldContainer[str]
    elapsed_seconds: float
    def __init__(self, environment: _Optional[str] = ..., config_version: _Optional[int] = ..., complete: _Optional[bool] = ..., applied: _Optional[int] = ..., total: _Optional[int] = ..., replicas: _Optional[_Iterable[_Union[ReplicaStatus, _Mapping]]] = ..., laggards: _Optional[_Iterable[str]] = ..., elapsed_seconds: _Optional[float] = ...) -> None: ...
