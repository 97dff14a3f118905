"""The pieces behind the remote providers: presets, error mapping, SSE and chunk parsing, PCM."""

from __future__ import annotations

import struct
from collections.abc import Iterable

import pytest

from voxdialog.audio.wav import wav_header
from voxdialog.providers.base import (
    ChatDelta,
    ProviderError,
)
from voxdialog.providers.http import bearer_headers
from voxdialog.providers.openai_compat.llm import ChatUsage, ChunkParser
from voxdialog.providers.openai_compat.presets import resolve_base_url
from voxdialog.providers.openai_compat.tts import PcmChunker
from voxdialog.settings import ProviderSettings

# --- presets and auth ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("kind", "url"),
    [
        ("openai", "https://api.openai.com/v1"),
        ("xai", "https://api.x.ai/v1"),
        ("openrouter", "https://openrouter.ai/api/v1"),
        ("groq", "https://api.groq.com/openai/v1"),
        ("ollama", "http://127.0.0.1:11434/v1"),
        ("vllm", "http://127.0.0.1:8000/v1"),
        ("lmstudio", "http://127.0.0.1:1234/v1"),
        ("speaches", "http://127.0.0.1:8000/v1"),
    ],
)
def test_each_kind_resolves_to_its_preset_base_url(kind: str, url: str) -> None:
    assert resolve_base_url(ProviderSettings.model_validate({"kind": kind})) == url


def test_a_configured_base_url_wins_without_its_trailing_slash() -> None:
    settings = ProviderSettings(kind="ollama", base_url="http://gpu-box:11434/v1/")
    assert resolve_base_url(settings) == "http://gpu-box:11434/v1"


def test_openai_compatible_without_a_base_url_is_refused() -> None:
    with pytest.raises(ValueError, match="needs a base_url"):
        resolve_base_url(ProviderSettings(kind="openai_compatible"))


def test_bearer_key_comes_from_the_environment_and_extra_headers_ride_along(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("TEST_GROQ_KEY", "gsk-123")
    settings = ProviderSettings(kind="groq", api_key_env="TEST_GROQ_KEY", headers={"X-Title": "v"})
    assert bearer_headers(settings) == {"Authorization": "Bearer gsk-123", "X-Title": "v"}
    assert bearer_headers(ProviderSettings(kind="ollama"))["Authorization"] == "Bearer none"


# --- retry-after and error mapping -----------------------------------------------------------


def feed_all(parser: ChunkParser, chunks: Iterable[str]) -> list[ChatDelta]:
    return [delta for chunk in chunks for delta in parser.feed(chunk)]


def test_empty_or_null_content_and_the_role_chunk_yield_nothing() -> None:
    parser = ChunkParser(provider="p")
    got = feed_all(
        parser,
        [
            '{"choices":[{"index":0,"delta":{"role":"assistant","content":""}}]}',
            '{"choices":[{"index":0,"delta":{"content":null,"reasoning":"hmm"}}]}',
            '{"choices":[{"index":1,"delta":{"content":"other candidate"}}]}',
            '{"choices":[{"index":0,"delta":{"content":"Hi"},"finish_reason":null}]}',
            '{"choices":[],"x_groq":{"usage":{"prompt_tokens":3,"completion_tokens":1}}}',
        ],
    )
    assert got == [ChatDelta(text="Hi")]
    assert parser.usage == ChatUsage(3, 1, 4)


def test_whole_tool_calls_without_index_get_one_each_like_ollama_sends_them() -> None:
    call = '{"id":"%s","function":{"name":"%s","arguments":{"city":"Oslo"}}}'
    got = feed_all(
        ChunkParser(provider="p"),
        [
            '{"choices":[{"delta":{"tool_calls":[%s]}}]}' % (call % ("c1", "weather")),
            '{"choices":[{"delta":{"tool_calls":[%s]}}]}' % (call % ("c2", "time")),
        ],
    )
    assert got == [
        ChatDelta(
            tool_call_index=0,
            tool_call_id="c1",
            tool_name="weather",
            tool_arguments='{"city": "Oslo"}',
        ),
        ChatDelta(
            tool_call_index=1,
            tool_call_id="c2",
            tool_name="time",
            tool_arguments='{"city": "Oslo"}',
        ),
    ]


def test_a_repeated_call_id_and_name_are_passed_on_once() -> None:
    fragment = (
        '{"choices":[{"delta":{"tool_calls":[{"index":0,"id":"c1","type":"function",'
        '"function":{"name":"weather","arguments":"%s"}}]}}]}'
    )
    got = feed_all(ChunkParser(provider="p"), [fragment % "", fragment % "{}"])
    assert got == [
        ChatDelta(tool_call_index=0, tool_call_id="c1", tool_name="weather"),
        ChatDelta(tool_call_index=0, tool_arguments="{}"),
    ]


@pytest.mark.parametrize(
    ("chunk", "retryable"),
    [
        ('{"error":{"message":"boom","code":null}}', True),
        ('{"error":{"message":"bad","code":400}}', False),
        ('{"object":"error","message":"overloaded","code":503}', True),
        ('{"choices":[{"index":0,"delta":{},"finish_reason":"error"}]}', True),
        ('{"id": "x", "choices": [', True),
        ("[1, 2]", True),
    ],
)
def test_errors_and_garbage_in_the_stream_raise(chunk: str, retryable: bool) -> None:
    with pytest.raises(ProviderError) as excinfo:
        ChunkParser(provider="p").feed(chunk)
    assert excinfo.value.retryable is retryable


def test_a_whole_completion_from_a_server_that_ignores_stream_is_read() -> None:
    parser = ChunkParser(provider="p")
    body = (
        b'{"choices":[{"index":0,"message":{"role":"assistant","content":"Hi",'
        b'"tool_calls":[{"id":"c","type":"function","function":{"name":"f","arguments":"{}"}}]}}],'
        b'"usage":{"prompt_tokens":1,"completion_tokens":2,"total_tokens":3}}'
    )
    assert parser.completion(body) == [
        ChatDelta(text="Hi"),
        ChatDelta(tool_call_index=0, tool_call_id="c", tool_name="f", tool_arguments="{}"),
    ]
    assert parser.usage == ChatUsage(1, 2, 3)


# --- PCM chunking --------------------------------------------------------------------------


def test_pcm_chunker_carries_odd_bytes_and_cuts_pieces_of_at_most_100_ms() -> None:
    pcm = bytes(range(256)) * 40  # 10,240 bytes = 213 ms at 24 kHz
    chunker = PcmChunker(24_000)
    pieces = [p for i in range(0, len(pcm), 333) for p in chunker.feed(pcm[i : i + 333])]
    pieces += chunker.flush()
    assert b"".join(p.pcm for p in pieces) == pcm
    assert all(len(p.pcm) % 2 == 0 and p.duration_ms <= 100.0 for p in pieces)
    assert all(p.duration_ms >= 20.0 for p in pieces[:-1])


def test_pcm_chunker_drops_a_wav_header_fed_byte_by_byte_and_takes_its_rate() -> None:
    header = wav_header(16_000)
    extra = b"LIST" + struct.pack("<I", 5) + b"abcde" + b"\x00"  # odd-sized chunk, padded
    stream = header[:36] + extra + header[36:] + b"\x01\x02" * 800
    chunker = PcmChunker(24_000)
    pieces = [p for b in stream for p in chunker.feed(bytes([b]))] + chunker.flush()
    assert b"".join(p.pcm for p in pieces) == b"\x01\x02" * 800
    assert {p.sample_rate for p in pieces} == {16_000}


def test_pcm_chunker_refuses_a_stereo_wav() -> None:
    header = bytearray(wav_header(24_000))
    header[22:24] = struct.pack("<H", 2)
    with pytest.raises(ProviderError) as excinfo:
        PcmChunker().feed(bytes(header))
    assert not excinfo.value.retryable
