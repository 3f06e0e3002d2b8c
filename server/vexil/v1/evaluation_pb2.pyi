from google.protobuf import struct_pb2 as _struct_pb2
from vexil.v1 import flag_pb2 as _flag_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf.internal import enum_type_wrapper as _enum_type_wrapper
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class ValueType(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    VALUE_TYPE_UNSPECIFIED: _ClassVar[ValueType]
    VALUE_TYPE_BOOL: _ClassVar[ValueType]
    VALUE_TYPE_STRING: _ClassVar[ValueType]
    VALUE_TYPE_INT: _ClassVar[ValueType]
    VALUE_TYPE_DOUBLE: _ClassVar[ValueType]
    VALUE_TYPE_OBJECT: _ClassVar[ValueType]

class Reason(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    REASON_UNSPECIFIED: _ClassVar[Reason]
    REASON_STATIC: _ClassVar[Reason]
    REASON_TARGETING_MATCH: _ClassVar[Reason]
    REASON_DEFAULT: _ClassVar[Reason]
    REASON_DISABLED: _ClassVar[Reason]
    REASON_ERROR: _ClassVar[Reason]

class ErrorCode(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    ERROR_CODE_UNSPECIFIED: _ClassVar[ErrorCode]
    ERROR_CODE_FLAG_NOT_FOUND: _ClassVar[ErrorCode]
    ERROR_CODE_TYPE_MISMATCH: _ClassVar[ErrorCode]
    ERROR_CODE_PARSE_ERROR: _ClassVar[ErrorCode]
    ERROR_CODE_GENERAL: _ClassVar[ErrorCode]
VALUE_TYPE_UNSPECIFIED: ValueType
VALUE_TYPE_BOOL: ValueType
VALUE_TYPE_STRING: ValueType
VALUE_TYPE_INT: ValueType
VALUE_TYPE_DOUBLE: ValueType
VALUE_TYPE_OBJECT: ValueType
REASON_UNSPECIFIED: Reason
REASON_STATIC: Reason
REASON_TARGETING_MATCH: Reason
REASON_DEFAULT: Reason
REASON_DISABLED: Reason
REASON_ERROR: Reason
ERROR_CODE_UNSPECIFIED: ErrorCode
ERROR_CODE_FLAG_NOT_FOUND: ErrorCode
ERROR_CODE_TYPE_MISMATCH: ErrorCode
ERROR_CODE_PARSE_ERROR: ErrorCode
ERROR_CODE_GENERAL: ErrorCode

class EvaluateRequest(_message.Message):
    __slots__ = ("flag_key", "context", "environment", "value_type")
    FLAG_KEY_FIELD_NUMBER: _ClassVar[int]
    CONTEXT_FIELD_NUMBER: _ClassVar[int]
    ENVIRONMENT_FIELD_NUMBER: _ClassVar[int]
    VALUE_TYPE_FIELD_NUMBER: _ClassVar[int]
    flag_key: str
    context: _struct_pb2.Struct
    environment: str
    value_type: ValueType
    def __init__(self, flag_key: _Optional[str] = ..., context: _Optional[_Union[_struct_pb2.Struct, _Mapping]] = ..., environment: _Optional[str] = ..., value_type: _Optional[_Union[ValueType, str]] = ...) -> None: ...

class EvaluateResponse(_message.Message):
    __slots__ = ("flag_key", "bool_value", "string_value", "int_value", "double_value", "object_value", "variant", "reason", "error_code", "error_message", "flag_version", "config_version", "metadata")
    FLAG_KEY_FIELD_NUMBER: _ClassVar[int]
    BOOL_VALUE_FIELD_NUMBER: _ClassVar[int]
    STRING_VALUE_FIELD_NUMBER: _ClassVar[int]
    INT_VALUE_FIELD_NUMBER: _ClassVar[int]
    DOUBLE_VALUE_FIELD_NUMBER: _ClassVar[int]
    OBJECT_VALUE_FIELD_NUMBER: _ClassVar[int]
    VARIANT_FIELD_NUMBER: _ClassVar[int]
    REASON_FIELD_NUMBER: _ClassVar[int]
    ERROR_CODE_FIELD_NUMBER: _ClassVar[int]
    ERROR_MESSAGE_FIELD_NUMBER: _ClassVar[int]
    FLAG_VERSION_FIELD_NUMBER: _ClassVar[int]
    CONFIG_VERSION_FIELD_NUMBER: _ClassVar[int]
    METADATA_FIELD_NUMBER: _ClassVar[int]
    flag_key: str
    bool_value: bool
    string_value: str
    int_value: int
    double_value: float
    object_value: _struct_pb2.Value
    variant: str
    reason: Reason
    error_code: ErrorCode
    error_message: str
    flag_version: int
    config_version: int
    metadata: _struct_pb2.Struct
    def __init__(self, flag_key: _Optional[str] = ..., bool_value: _Optional[bool] = ..., string_value: _Optional[str] = ..., int_value: _Optional[int] = ..., double_value: _Optional[float] = ..., object_value: _Optional[_Union[_struct_pb2.Value, _Mapping]] = ..., variant: _Optional[str] = ..., reason: _Optional[_Union[Reason, str]] = ..., error_code: _Optional[_Union[ErrorCode, str]] = ..., error_message: _Optional[str] = ..., flag_version: _Optional[int] = ..., config_version: _Optional[int] = ..., metadata: _Optional[_Union[_struct_pb2.Struct, _Mapping]] = ...) -> None: ...

class EvaluateAllRequest(_message.Message):
    __slots__ = ("context", "environment", "flag_keys")
    CONTEXT_FIELD_NUMBER: _ClassVar[int]
    ENVIRONMENT_FIELD_NUMBER: _ClassVar[int]
    FLAG_KEYS_FIELD_NUMBER: _ClassVar[int]
    context: _struct_pb2.Struct
    environment: str
    flag_keys: _containers.RepeatedScalarFieldContainer[str]
    def __init__(self, context: _Optional[_Union[_struct_pb2.Struct, _Mapping]] = ..., environment: _Optional[str] = ..., flag_keys: _Optional[_Iterable[str]] = ...) -> None: ...

class EvaluateAllResponse(_message.Message):
    __slots__ = ("results", "config_version")
    RESULTS_FIELD_NUMBER: _ClassVar[int]
    CONFIG_VERSION_FIELD_NUMBER: _ClassVar[int]
    results: _containers.RepeatedCompositeFieldContainer[EvaluateResponse]
    config_version: int
    def __init__(self, results: _Optional[_Iterable[_Union[EvaluateResponse, _Mapping]]] = ..., config_version: _Optional[int] = ...) -> None: ...

class WatchRequest(_message.Message):
    __slots__ = ("environment", "since_version", "flag_keys")
    ENVIRONMENT_FIELD_NUMBER: _ClassVar[int]
    SINCE_VERSION_FIELD_NUMBER: _ClassVar[int]
    FLAG_KEYS_FIELD_NUMBER: _ClassVar[int]
    environment: str
    since_version: int
    flag_keys: _containers.RepeatedScalarFieldContainer[str]
    def __init__(self, environment: _Optional[str] = ..., since_version: _Optional[int] = ..., flag_keys: _Optional[_Iterable[str]] = ...) -> None: ...

class WatchEvent(_message.Message):
    __slots__ = ("type", "config_version", "flags", "flag", "flag_key", "environment", "reason", "change", "heartbeat_ms")
    class Type(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
        __slots__ = ()
        TYPE_UNSPECIFIED: _ClassVar[WatchEvent.Type]
        TYPE_SNAPSHOT: _ClassVar[WatchEvent.Type]
        TYPE_UPSERT: _ClassVar[WatchEvent.Type]
        TYPE_DELETE: _ClassVar[WatchEvent.Type]
        TYPE_ENVIRONMENT: _ClassVar[WatchEvent.Type]
        TYPE_HEARTBEAT: _ClassVar[WatchEvent.Type]
    TYPE_UNSPECIFIED: WatchEvent.Type
    TYPE_SNAPSHOT: WatchEvent.Type
    TYPE_UPSERT: WatchEvent.Type
    TYPE_DELETE: WatchEvent.Type
    TYPE_ENVIRONMENT: WatchEvent.Type
    TYPE_HEARTBEAT: WatchEvent.Type
    TYPE_FIELD_NUMBER: _ClassVar[int]
    CONFIG_VERSION_FIELD_NUMBER: _ClassVar[int]
    FLAGS_FIELD_NUMBER: _ClassVar[int]
    FLAG_FIELD_NUMBER: _ClassVar[int]
    FLAG_KEY_FIELD_NUMBER: _ClassVar[int]
    ENVIRONMENT_FIELD_NUMBER: _ClassVar[int]
    REASON_FIELD_NUMBER: _ClassVar[int]
    CHANGE_FIELD_NUMBER: _ClassVar[int]
    HEARTBEAT_MS_FIELD_NUMBER: _ClassVar[int]
    type: WatchEvent.Type
    config_version: int
    flags: _containers.RepeatedCompositeFieldContainer[_flag_pb2.Flag]
    flag: _flag_pb2.Flag
    flag_key: str
    environment: _flag_pb2.Environment
    reason: str
    change: _flag_pb2.Change
    heartbeat_ms: int
    def __init__(self, type: _Optional[_Union[WatchEvent.Type, str]] = ..., config_version: _Optional[int] = ..., flags: _Optional[_Iterable[_Union[_flag_pb2.Flag, _Mapping]]] = ..., flag: _Optional[_Union[_flag_pb2.Flag, _Mapping]] = ..., flag_key: _Optional[str] = ..., environment: _Optional[_Union[_flag_pb2.Environment, _Mapping]] = ..., reason: _Optional[str] = ..., change: _Optional[_Union[_flag_pb2.Change, _Mapping]] = ..., heartbeat_ms: _Optional[int] = ...) -> None: ...
