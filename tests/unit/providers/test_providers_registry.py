"""ProviderRegistry: names, aliases, one instance per provider, clear errors."""

from __future__ import annotations

import threading
import time
from concurrent.futures import ThreadPoolExecutor

import pytest

from voxdialog.providers.base import STT, ProviderUnavailable
from voxdialog.providers.registry import (
    ModelEntry,
    ProviderRegistry,
    Stage,
    UnknownProvider,
    default_registry,
)
from voxdialog.settings import ModelSettings
from voxdialog.testing.fakes import FakeSTT, FakeTTS, FakeVAD


def test_a_provider_is_built_once_and_shared_by_its_aliases() -> None:
    registry = ProviderRegistry()
    built: list[FakeSTT] = []

    def build() -> STT:
        built.append(FakeSTT())
        return built[-1]

    registry.register_stt("whisper", build, aliases=("whisper-1", "tiny.en"))

    assert registry.stt("whisper") is registry.stt("whisper-1") is registry.stt("tiny.en")
    assert len(built) == 1


def test_concurrent_first_lookups_build_the_provider_once() -> None:
    registry = ProviderRegistry()
    calls = 0
    calls_lock = threading.Lock()

    def slow_build() -> STT:
        nonlocal calls
        with calls_lock:
            calls += 1
        time.sleep(0.05)  # widen the race window a real model load would have
        return FakeSTT()

    registry.register_stt("whisper", slow_build)
    with ThreadPoolExecutor(max_workers=8) as pool:
        instances = list(pool.map(lambda _: registry.stt("whisper"), range(8)))

    assert calls == 1
    assert all(instance is instances[0] for instance in instances)


def test_an_unknown_name_raises_a_key_error_that_lists_the_known_ones() -> None:
    registry = ProviderRegistry()
    registry.register_tts("piper", FakeTTS, aliases=("tts-1",))

    with pytest.raises(UnknownProvider) as excinfo:
        registry.tts("elevenlabs")

    assert isinstance(excinfo.value, KeyError)
    assert str(excinfo.value) == "unknown tts provider 'elevenlabs'; known: piper, tts-1"


def test_stages_are_separate_namespaces() -> None:
    registry = ProviderRegistry()
    registry.register_vad("silero", FakeVAD)

    with pytest.raises(UnknownProvider):
        registry.stt("silero")


def test_a_failed_build_is_not_cached() -> None:
    registry = ProviderRegistry()
    attempts = 0

    def flaky() -> STT:
        nonlocal attempts
        attempts += 1
        if attempts == 1:
            raise ProviderUnavailable("model not there yet")
        return FakeSTT()

    registry.register_stt("whisper", flaky)

    with pytest.raises(ProviderUnavailable):
        registry.stt("whisper")
    assert isinstance(registry.stt("whisper"), FakeSTT)


def test_registering_a_name_again_replaces_the_provider() -> None:
    registry = ProviderRegistry()
    registry.register_stt("whisper", FakeSTT, aliases=("whisper-1",))
    first = registry.stt("whisper-1")

    registry.register_stt("whisper", FakeSTT)

    assert registry.stt("whisper-1") is not first


def test_an_alias_cannot_take_another_providers_name() -> None:
    registry = ProviderRegistry()
    registry.register_stt("whisper", FakeSTT, aliases=("whisper-1",))

    with pytest.raises(ValueError, match="already belongs to 'whisper'"):
        registry.register_stt("remote", FakeSTT, aliases=("whisper-1",))


def test_default_registry_lists_local_models_and_openai_aliases_without_loading_them() -> None:
    registry = default_registry(ModelSettings())

    models = registry.list_models()

    assert ModelEntry("silero", Stage.VAD) in models
    assert {"whisper", "whisper-1", "gpt-4o-transcribe", "gpt-4o-mini-transcribe", "tiny.en"} == {
        m.id for m in models if m.stage is Stage.STT
    }
    assert {"piper", "tts-1", "tts-1-hd", "gpt-4o-mini-tts"} == {
        m.id for m in models if m.stage is Stage.TTS
    }


def test_default_registry_reports_a_bad_model_path_when_the_model_is_first_used() -> None:
    registry = default_registry(ModelSettings(vad_model="/nonexistent/silero.onnx"))

    with pytest.raises(ProviderUnavailable, match="not found"):
        registry.vad("silero")


@pytest.mark.models
def test_default_registry_builds_the_local_vad() -> None:
    registry = default_registry(ModelSettings())

    vad = registry.vad("silero")

    assert vad.info.name == "silero"
    assert vad is registry.vad("silero")
