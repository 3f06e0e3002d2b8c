from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from typing import ClassVar as _ClassVar, Optional as _Optional

DESCRIPTOR: _descriptor.FileDescriptor

class PokeRequest(_message.Message):
    __slots__ = ("environment", "config_version", "replica_id")
    ENVIRONMENT_FIELD_NUMBER: _ClassVar[int]
    CONFIG_VERSION_FIELD_NUMBER: _ClassVar[int]
    REPLICA_ID_FIELD_NUMBER: _ClassVar[int]
    environment: str
    config_version: int
    replica_id: str
    def __init__(self, environment: _Optional[str] = ..., config_version: _Optional[int] = ..., replica_id: _Optional[str] = ...) -> None: ...

class PokeResponse(_message.Message):
    __slots__ = ("read",)
    READ_FIELD_NUMBER: _ClassVar[int]
    read: bool
    def __init__(self, read: _Optional[bool] = ...) -> None: ...
