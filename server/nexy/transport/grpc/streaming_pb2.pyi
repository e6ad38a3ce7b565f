from google.protobuf.internal import containers as _containers
from google.protobuf.internal import enum_type_wrapper as _enum_type_wrapper
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class RequestPhase(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    REQUEST_PHASE_UNSPECIFIED: _ClassVar[RequestPhase]
    REQUEST_PHASE_COLLECT: _ClassVar[RequestPhase]
    REQUEST_PHASE_COMMIT: _ClassVar[RequestPhase]

class BrowserEventType(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    BROWSER_TASK_STARTED: _ClassVar[BrowserEventType]
    BROWSER_STEP_STARTED: _ClassVar[BrowserEventType]
    BROWSER_STEP_COMPLETED: _ClassVar[BrowserEventType]
    BROWSER_ACTION_EXECUTED: _ClassVar[BrowserEventType]
    BROWSER_TASK_COMPLETED: _ClassVar[BrowserEventType]
    BROWSER_TASK_FAILED: _ClassVar[BrowserEventType]
    BROWSER_TASK_CANCELLED: _ClassVar[BrowserEventType]
REQUEST_PHASE_UNSPECIFIED: RequestPhase
REQUEST_PHASE_COLLECT: RequestPhase
REQUEST_PHASE_COMMIT: RequestPhase
BROWSER_TASK_STARTED: BrowserEventType
BROWSER_STEP_STARTED: BrowserEventType
BROWSER_STEP_COMPLETED: BrowserEventType
BROWSER_ACTION_EXECUTED: BrowserEventType
BROWSER_TASK_COMPLETED: BrowserEventType
BROWSER_TASK_FAILED: BrowserEventType
BROWSER_TASK_CANCELLED: BrowserEventType

class StreamRequest(_message.Message):
    __slots__ = ("prompt", "screenshot", "screen_width", "screen_height", "hardware_id", "session_id", "phase", "chunk_seq", "chunk_text")
    PROMPT_FIELD_NUMBER: _ClassVar[int]
    SCREENSHOT_FIELD_NUMBER: _ClassVar[int]
    SCREEN_WIDTH_FIELD_NUMBER: _ClassVar[int]
    SCREEN_HEIGHT_FIELD_NUMBER: _ClassVar[int]
    HARDWARE_ID_FIELD_NUMBER: _ClassVar[int]
    SESSION_ID_FIELD_NUMBER: _ClassVar[int]
    PHASE_FIELD_NUMBER: _ClassVar[int]
    CHUNK_SEQ_FIELD_NUMBER: _ClassVar[int]
    CHUNK_TEXT_FIELD_NUMBER: _ClassVar[int]
    prompt: str
    screenshot: str
    screen_width: int
    screen_height: int
    hardware_id: str
    session_id: str
    phase: RequestPhase
    chunk_seq: int
    chunk_text: str
    def __init__(self, prompt: _Optional[str] = ..., screenshot: _Optional[str] = ..., screen_width: _Optional[int] = ..., screen_height: _Optional[int] = ..., hardware_id: _Optional[str] = ..., session_id: _Optional[str] = ..., phase: _Optional[_Union[RequestPhase, str]] = ..., chunk_seq: _Optional[int] = ..., chunk_text: _Optional[str] = ...) -> None: ...

class StreamResponse(_message.Message):
    __slots__ = ("text_chunk", "audio_chunk", "end_message", "error_message", "action_message", "browser_progress")
    TEXT_CHUNK_FIELD_NUMBER: _ClassVar[int]
    AUDIO_CHUNK_FIELD_NUMBER: _ClassVar[int]
    END_MESSAGE_FIELD_NUMBER: _ClassVar[int]
    ERROR_MESSAGE_FIELD_NUMBER: _ClassVar[int]
    ACTION_MESSAGE_FIELD_NUMBER: _ClassVar[int]
    BROWSER_PROGRESS_FIELD_NUMBER: _ClassVar[int]
    text_chunk: str
    audio_chunk: AudioChunk
    end_message: str
    error_message: str
    action_message: ActionMessage
    browser_progress: BrowserProgressMessage
    def __init__(self, text_chunk: _Optional[str] = ..., audio_chunk: _Optional[_Union[AudioChunk, _Mapping]] = ..., end_message: _Optional[str] = ..., error_message: _Optional[str] = ..., action_message: _Optional[_Union[ActionMessage, _Mapping]] = ..., browser_progress: _Optional[_Union[BrowserProgressMessage, _Mapping]] = ...) -> None: ...

class AudioChunk(_message.Message):
    __slots__ = ("audio_data", "dtype", "shape", "sample_rate", "channels")
    AUDIO_DATA_FIELD_NUMBER: _ClassVar[int]
    DTYPE_FIELD_NUMBER: _ClassVar[int]
    SHAPE_FIELD_NUMBER: _ClassVar[int]
    SAMPLE_RATE_FIELD_NUMBER: _ClassVar[int]
    CHANNELS_FIELD_NUMBER: _ClassVar[int]
    audio_data: bytes
    dtype: str
    shape: _containers.RepeatedScalarFieldContainer[int]
    sample_rate: int
    channels: int
    def __init__(self, audio_data: _Optional[bytes] = ..., dtype: _Optional[str] = ..., shape: _Optional[_Iterable[int]] = ..., sample_rate: _Optional[int] = ..., channels: _Optional[int] = ...) -> None: ...

class InterruptRequest(_message.Message):
    __slots__ = ("hardware_id",)
    HARDWARE_ID_FIELD_NUMBER: _ClassVar[int]
    hardware_id: str
    def __init__(self, hardware_id: _Optional[str] = ...) -> None: ...

class InterruptResponse(_message.Message):
    __slots__ = ("success", "interrupted_sessions", "message")
    SUCCESS_FIELD_NUMBER: _ClassVar[int]
    INTERRUPTED_SESSIONS_FIELD_NUMBER: _ClassVar[int]
    MESSAGE_FIELD_NUMBER: _ClassVar[int]
    success: bool
    interrupted_sessions: _containers.RepeatedScalarFieldContainer[str]
    message: str
    def __init__(self, success: _Optional[bool] = ..., interrupted_sessions: _Optional[_Iterable[str]] = ..., message: _Optional[str] = ...) -> None: ...

class WelcomeRequest(_message.Message):
    __slots__ = ("text", "session_id", "voice", "language")
    TEXT_FIELD_NUMBER: _ClassVar[int]
    SESSION_ID_FIELD_NUMBER: _ClassVar[int]
    VOICE_FIELD_NUMBER: _ClassVar[int]
    LANGUAGE_FIELD_NUMBER: _ClassVar[int]
    text: str
    session_id: str
    voice: str
    language: str
    def __init__(self, text: _Optional[str] = ..., session_id: _Optional[str] = ..., voice: _Optional[str] = ..., language: _Optional[str] = ...) -> None: ...

class WelcomeMetadata(_message.Message):
    __slots__ = ("method", "duration_sec", "sample_rate", "channels", "dtype")
    METHOD_FIELD_NUMBER: _ClassVar[int]
    DURATION_SEC_FIELD_NUMBER: _ClassVar[int]
    SAMPLE_RATE_FIELD_NUMBER: _ClassVar[int]
    CHANNELS_FIELD_NUMBER: _ClassVar[int]
    DTYPE_FIELD_NUMBER: _ClassVar[int]
    method: str
    duration_sec: float
    sample_rate: int
    channels: int
    dtype: str
    def __init__(self, method: _Optional[str] = ..., duration_sec: _Optional[float] = ..., sample_rate: _Optional[int] = ..., channels: _Optional[int] = ..., dtype: _Optional[str] = ...) -> None: ...

class WelcomeResponse(_message.Message):
    __slots__ = ("audio_chunk", "metadata", "end_message", "error_message")
    AUDIO_CHUNK_FIELD_NUMBER: _ClassVar[int]
    METADATA_FIELD_NUMBER: _ClassVar[int]
    END_MESSAGE_FIELD_NUMBER: _ClassVar[int]
    ERROR_MESSAGE_FIELD_NUMBER: _ClassVar[int]
    audio_chunk: AudioChunk
    metadata: WelcomeMetadata
    end_message: str
    error_message: str
    def __init__(self, audio_chunk: _Optional[_Union[AudioChunk, _Mapping]] = ..., metadata: _Optional[_Union[WelcomeMetadata, _Mapping]] = ..., end_message: _Optional[str] = ..., error_message: _Optional[str] = ...) -> None: ...

class ActionMessage(_message.Message):
    __slots__ = ("action_json", "session_id", "feature_id")
    ACTION_JSON_FIELD_NUMBER: _ClassVar[int]
    SESSION_ID_FIELD_NUMBER: _ClassVar[int]
    FEATURE_ID_FIELD_NUMBER: _ClassVar[int]
    action_json: str
    session_id: str
    feature_id: str
    def __init__(self, action_json: _Optional[str] = ..., session_id: _Optional[str] = ..., feature_id: _Optional[str] = ...) -> None: ...

class BrowserProgressMessage(_message.Message):
    __slots__ = ("type", "task_id", "step_number", "description", "url", "action", "timestamp", "error", "details")
    TYPE_FIELD_NUMBER: _ClassVar[int]
    TASK_ID_FIELD_NUMBER: _ClassVar[int]
    STEP_NUMBER_FIELD_NUMBER: _ClassVar[int]
    DESCRIPTION_FIELD_NUMBER: _ClassVar[int]
    URL_FIELD_NUMBER: _ClassVar[int]
    ACTION_FIELD_NUMBER: _ClassVar[int]
    TIMESTAMP_FIELD_NUMBER: _ClassVar[int]
    ERROR_FIELD_NUMBER: _ClassVar[int]
    DETAILS_FIELD_NUMBER: _ClassVar[int]
    type: BrowserEventType
    task_id: str
    step_number: int
    description: str
    url: str
    action: str
    timestamp: str
    error: str
    details: BrowserProgressDetails
    def __init__(self, type: _Optional[_Union[BrowserEventType, str]] = ..., task_id: _Optional[str] = ..., step_number: _Optional[int] = ..., description: _Optional[str] = ..., url: _Optional[str] = ..., action: _Optional[str] = ..., timestamp: _Optional[str] = ..., error: _Optional[str] = ..., details: _Optional[_Union[BrowserProgressDetails, _Mapping]] = ...) -> None: ...

class BrowserProgressDetails(_message.Message):
    __slots__ = ("duration_sec", "actions", "metadata")
    class MetadataEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: str
        def __init__(self, key: _Optional[str] = ..., value: _Optional[str] = ...) -> None: ...
    DURATION_SEC_FIELD_NUMBER: _ClassVar[int]
    ACTIONS_FIELD_NUMBER: _ClassVar[int]
    METADATA_FIELD_NUMBER: _ClassVar[int]
    duration_sec: float
    actions: _containers.RepeatedScalarFieldContainer[str]
    metadata: _containers.ScalarMap[str, str]
    def __init__(self, duration_sec: _Optional[float] = ..., actions: _Optional[_Iterable[str]] = ..., metadata: _Optional[_Mapping[str, str]] = ...) -> None: ...

class UsageRequest(_message.Message):
    __slots__ = ("hardware_id", "session_id", "source", "input_tokens", "output_tokens", "model")
    HARDWARE_ID_FIELD_NUMBER: _ClassVar[int]
    SESSION_ID_FIELD_NUMBER: _ClassVar[int]
    SOURCE_FIELD_NUMBER: _ClassVar[int]
    INPUT_TOKENS_FIELD_NUMBER: _ClassVar[int]
    OUTPUT_TOKENS_FIELD_NUMBER: _ClassVar[int]
    MODEL_FIELD_NUMBER: _ClassVar[int]
    hardware_id: str
    session_id: str
    source: str
    input_tokens: int
    output_tokens: int
    model: str
    def __init__(self, hardware_id: _Optional[str] = ..., session_id: _Optional[str] = ..., source: _Optional[str] = ..., input_tokens: _Optional[int] = ..., output_tokens: _Optional[int] = ..., model: _Optional[str] = ...) -> None: ...

class UsageResponse(_message.Message):
    __slots__ = ("success", "message")
    SUCCESS_FIELD_NUMBER: _ClassVar[int]
    MESSAGE_FIELD_NUMBER: _ClassVar[int]
    success: bool
    message: str
    def __init__(self, success: _Optional[bool] = ..., message: _Optional[str] = ...) -> None: ...
