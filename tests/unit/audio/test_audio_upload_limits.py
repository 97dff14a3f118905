"""Uploads are judged before they are decoded, decoded in bounded memory, and only by our codecs.

- A WAV's duration comes from its header and is checked before any sample is converted; the
  samples are then converted a bounded piece at a time (issue 12, item 5).
- WAV is read here (PCM, float, μ-law, A-law) and never handed to FFmpeg; other WAV encodings
  and container codecs off the allowlist are refused before a packet is decoded (item 11).
- The WAV header parser and the WAV decode path hold up under Hypothesis (R6: ≥ 500 examples).
"""

from __future__ import annotations

import io
import struct
import time
import tracemalloc
from collections.abc import Iterator
from typing import Any
from unittest import mock

import av
import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from voxdialog.audio import codecs
from voxdialog.audio.codecs import ALLOWED_DECODERS, decode_file
from voxdialog.audio.errors import (
    AudioDecodeError,
    AudioError,
    AudioTooLarge,
    UnsupportedAudioFormat,
)
from voxdialog.audio.g711 import alaw_decode, alaw_encode, ulaw_decode, ulaw_encode
from voxdialog.audio.wav import WavLayout, parse_wav, read_wav, wav_pieces

MiB = 1024 * 1024
BIG = 100 * MiB
GUID_TAIL = b"\x00\x00\x00\x00\x10\x00\x80\x00\x00\xaa\x00\x38\x9b\x71"


def riff(fmt_body: bytes, payload: bytes, *, data_size: int | None = None) -> bytes:
    """A WAV built by hand, so the header can say anything."""
    size = len(payload) if data_size is None else data_size
    chunks = b"fmt " + struct.pack("<I", len(fmt_body)) + fmt_body
    chunks += b"data" + struct.pack("<I", size) + payload
    return b"RIFF" + struct.pack("<I", 4 + len(chunks)) + b"WAVE" + chunks


def fmt(tag: int, channels: int, rate: int, bits: int) -> bytes:
    align = channels * bits // 8
    return struct.pack("<HHIIHH", tag, channels, rate, rate * align, align, bits)


def extensible(sub_format: int, channels: int, rate: int, bits: int) -> bytes:
    base = fmt(0xFFFE, channels, rate, bits)
    return base + struct.pack("<HHIH", 22, bits, 4, sub_format) + GUID_TAIL


def tone(seconds: float, rate: int) -> bytes:
    t = np.arange(int(seconds * rate)) / rate
    return (np.sin(2 * np.pi * 440 * t) * 8_000).astype("<i2").tobytes()


def container_file(container: str, codec: str, seconds: float, rate: int = 16_000) -> bytes:
    """A file FFmpeg writes itself (to a seekable buffer, so its header states the length)."""
    out = io.BytesIO()
    samples = np.frombuffer(tone(seconds, rate), dtype="<i2").reshape(1, -1)
    with av.open(out, "w", format=container) as muxer:
        stream = muxer.add_stream(codec, rate=rate, layout="mono")
        formats = stream.codec_context.codec.audio_formats
        frame = av.AudioFrame.from_ndarray(samples, format="s16", layout="mono")
        frame.sample_rate = rate
        to_codec = av.AudioResampler(format=formats[0].name if formats else "s16", rate=rate)
        for piece in to_codec.resample(frame):
            muxer.mux(stream.encode(piece))
        muxer.mux(stream.encode(None))
    return out.getvalue()


@pytest.fixture
def no_ffmpeg(monkeypatch: pytest.MonkeyPatch) -> None:
    """Fail the test if anything is handed to FFmpeg."""

    def refuse(*args: Any, **kwargs: Any) -> None:
        raise AssertionError("FFmpeg was asked to open the upload")

    monkeypatch.setattr(av, "open", refuse)


@pytest.fixture
def no_decoding(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Record (and refuse) any packet decoding through FFmpeg."""
    calls: list[str] = []

    def refuse(inp: Any, stream: Any) -> Iterator[Any]:
        calls.append(stream.codec_context.name)
        raise AssertionError("a packet was decoded")

    monkeypatch.setattr(codecs, "_decoded", refuse)
    return calls


# --- item 5: the duration from the header, then bounded pieces ----------------------------------


def test_a_52_minute_8_bit_wav_is_refused_from_its_header_without_converting_a_sample(
    no_ffmpeg: None,
) -> None:
    # The colleague's file: 25 MiB of 8-bit 8 kHz mono is 54 minutes. The old path converted
    # all of it to float64 first (655 MB traced, 1.7 s) and only then saw the length.
    payload = np.random.default_rng(12).integers(0, 256, 25 * MiB, dtype=np.uint8).tobytes()
    data = riff(fmt(1, 1, 8_000, 8), payload)
    tracemalloc.start()
    started = time.perf_counter()
    try:
        with pytest.raises(AudioTooLarge) as caught:
            decode_file(data, max_bytes=26 * MiB, max_seconds=600)
        elapsed = time.perf_counter() - started
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert (caught.value.exceeded, caught.value.limit) == ("seconds", 600)
    assert peak < 64 * 1024
    assert elapsed < 0.1


def test_a_wav_within_the_limits_decodes_in_memory_bounded_by_the_limit_not_the_file() -> None:
    # 60 s of 8-bit 48 kHz stereo: 5.8 MB in, 1.9 MB out at 16 kHz. Converting it whole took
    # 75 MB; piece by piece it takes the output (grown, then copied) and one piece's temporaries.
    frames = np.random.default_rng(5).integers(0, 256, 48_000 * 60 * 2, dtype=np.uint8)
    data = riff(fmt(1, 2, 48_000, 8), frames.tobytes())
    tracemalloc.start()
    try:
        clip = decode_file(data, max_bytes=26 * MiB, max_seconds=60)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert clip.sample_rate == 16_000
    assert clip.duration_ms == pytest.approx(60_000, abs=5)
    assert peak < 3 * len(clip.pcm) + 3 * MiB


def test_a_wav_exactly_at_the_duration_limit_is_accepted(no_ffmpeg: None) -> None:
    data = riff(fmt(1, 1, 16_000, 16), tone(2.0, 16_000))
    assert decode_file(data, max_bytes=BIG, max_seconds=2.0).duration_ms == 2_000
    with pytest.raises(AudioTooLarge):
        decode_file(data, max_bytes=BIG, max_seconds=1.999)


def test_pieces_are_bounded_and_join_to_the_whole_file() -> None:
    data = riff(fmt(1, 3, 44_100, 24), np.arange(44_100 * 9, dtype="<u4").tobytes()[: 44_100 * 9])
    layout = parse_wav(data)
    pieces = list(wav_pieces(data, layout, piece_bytes=9_000))
    assert len(pieces) > 10
    assert max(len(p) for p in pieces) <= 9_000 // 9 * 2
    assert b"".join(pieces) == read_wav(data).pcm


def test_a_header_that_states_more_samples_than_the_file_holds_is_refused(
    no_ffmpeg: None,
) -> None:
    # A lying length is a malformed file (400), whatever duration it claims.
    data = riff(fmt(1, 1, 8_000, 8), b"\x80" * 1_000, data_size=8_000 * 3_600)
    with pytest.raises(AudioDecodeError, match="truncated"):
        decode_file(data, max_bytes=BIG, max_seconds=600)


def test_a_wav_of_a_million_empty_chunks_is_refused_quickly() -> None:
    data = b"RIFF\xff\xff\xff\xffWAVE" + b"JUNK\x00\x00\x00\x00" * 1_000_000
    started = time.perf_counter()
    with pytest.raises(AudioDecodeError, match="too many chunks"):
        decode_file(data, max_bytes=BIG, max_seconds=600)
    assert time.perf_counter() - started < 0.1


@pytest.mark.parametrize(
    ("container", "codec"),
    [
        ("flac", "flac"),
        ("ogg", "libopus"),
        ("webm", "libopus"),
        ("ipod", "aac"),  # M4A
        ("aiff", "pcm_s16be"),
        ("matroska", "pcm_s16le"),
    ],
)
def test_a_compressed_file_whose_header_states_too_long_is_refused_before_decoding(
    container: str, codec: str, no_decoding: list[str]
) -> None:
    data = container_file(container, codec, 3.0)
    with pytest.raises(AudioTooLarge) as caught:
        decode_file(data, max_bytes=BIG, max_seconds=2.0)
    assert caught.value.exceeded == "seconds"
    assert no_decoding == []


# --- item 11: WAV read here, an allowlist for everything else ---------------------------------


@pytest.mark.parametrize(
    ("tag", "companding", "expand"),
    [(7, ulaw_encode, ulaw_decode), (6, alaw_encode, alaw_decode)],
    ids=["mu-law", "a-law"],
)
@pytest.mark.parametrize("header", [fmt, extensible], ids=["plain", "extensible"])
def test_g711_wavs_are_read_here_and_never_reach_ffmpeg(
    tag: int, companding: Any, expand: Any, header: Any, no_ffmpeg: None
) -> None:
    codes = companding(tone(1.0, 8_000))
    clip = decode_file(riff(header(tag, 1, 8_000, 8), codes), max_bytes=BIG, max_seconds=5)
    assert clip.duration_ms == pytest.approx(1_000, abs=2)
    assert read_wav(riff(header(tag, 1, 8_000, 8), codes)).pcm == expand(codes)


def test_stereo_g711_is_averaged_to_mono(no_ffmpeg: None) -> None:
    left, right = ulaw_encode(tone(0.1, 8_000)), ulaw_encode(bytes(1_600))
    frames = bytes(b for pair in zip(left, right, strict=True) for b in pair)
    clip = read_wav(riff(fmt(7, 2, 8_000, 8), frames))
    expected = np.round(np.frombuffer(ulaw_decode(left), dtype="<i2") / 2)
    np.testing.assert_array_equal(np.frombuffer(clip.pcm, dtype="<i2"), expected)


@pytest.mark.parametrize(
    ("tag", "bits"),
    [(0x0002, 4), (0x0011, 4), (0x0031, 0), (0x0055, 0), (0x0161, 16), (0x0022, 8)],
    ids=["ms-adpcm", "ima-adpcm", "gsm610", "mp3-in-wav", "wma", "truespeech"],
)
@pytest.mark.parametrize("header", [fmt, extensible], ids=["plain", "extensible"])
def test_other_wav_encodings_are_refused_before_decoding(
    tag: int, bits: int, header: Any, no_ffmpeg: None
) -> None:
    data = riff(header(tag, 1, 8_000, bits), b"\x00" * 4_000)
    with pytest.raises(UnsupportedAudioFormat, match=f"0x{tag:04x}"):
        decode_file(data, max_bytes=BIG, max_seconds=60)


@pytest.mark.parametrize(
    ("container", "codec"),
    [
        ("wav", "adpcm_ima_wav"),
        ("wav", "adpcm_ms"),
        ("mov", "adpcm_ima_qt"),
        ("ipod", "alac"),
        ("aiff", "adpcm_ima_qt"),
    ],
)
def test_codecs_off_the_allowlist_are_refused_before_a_packet_is_decoded(
    container: str, codec: str, no_decoding: list[str]
) -> None:
    data = container_file(container, codec, 1.0)
    with pytest.raises(UnsupportedAudioFormat):
        decode_file(data, max_bytes=BIG, max_seconds=60)
    assert no_decoding == []


def test_probing_a_file_opens_no_decoder_off_the_allowlist(monkeypatch: pytest.MonkeyPatch) -> None:
    # FFmpeg decodes a few packets while it probes a file's streams; the whitelist passed to
    # the demuxer keeps even that to our decoders.
    data = container_file("ipod", "alac", 0.5)
    opened: list[dict[str, str]] = []
    real_open = av.open

    def spy(*args: Any, **kwargs: Any) -> Any:
        opened.append(kwargs.get("container_options") or {})
        return real_open(*args, **kwargs)

    monkeypatch.setattr(av, "open", spy)
    with pytest.raises(UnsupportedAudioFormat):
        decode_file(data, max_bytes=BIG, max_seconds=60)
    whitelist = set(opened[0]["codec_whitelist"].split(","))
    assert whitelist == ALLOWED_DECODERS
    assert "alac" not in whitelist


def test_pcm_inside_a_container_is_allowed() -> None:
    clip = decode_file(container_file("matroska", "pcm_s16le", 1.0), max_bytes=BIG, max_seconds=5)
    assert clip.duration_ms == pytest.approx(1_000, abs=25)


def test_the_allowlist_holds_only_codecs_the_api_promises() -> None:
    promised = {"mp3float", "mp3", "mp2float", "mp2", "aac", "aac_fixed", "flac"}
    promised |= {"opus", "libopus", "vorbis", "libvorbis"}
    pcm = {name for name in ALLOWED_DECODERS if name.startswith("pcm_")}
    assert ALLOWED_DECODERS - pcm == promised
    assert not any("adpcm" in name for name in ALLOWED_DECODERS)


# --- Hypothesis: the WAV header parser and the WAV decode path (R6) ---------------------------

VALID_BITS = {1: (8, 16, 24, 32), 3: (32, 64), 6: (8,), 7: (8,)}
ANY_U16 = st.integers(0, 0xFFFF)
ANY_U32 = st.integers(0, 0xFFFFFFFF)


@st.composite
def wav_files(draw: st.DrawFn) -> bytes:
    """WAV files, mostly well formed, with any field, size or chunk sometimes made a lie."""

    def usually(value: int, wild: st.SearchStrategy[int]) -> int:
        return value if draw(st.integers(0, 9)) else draw(wild)

    tag = draw(st.sampled_from(sorted(VALID_BITS)))
    channels = usually(draw(st.integers(1, 3)), st.integers(0, 20))
    bits = usually(draw(st.sampled_from(VALID_BITS[tag])), st.sampled_from([0, 4, 12]) | ANY_U16)
    rate = usually(draw(st.sampled_from([8_000, 16_000, 44_100])), ANY_U32)
    align = usually(channels * bits // 8 & 0xFFFF, ANY_U16)
    byte_rate = rate * align & 0xFFFFFFFF
    if draw(st.booleans()):  # extensible: cbSize, valid bits, mask, sub-format, GUID tail
        head = struct.pack("<HHIIHH", 0xFFFE, channels, rate, byte_rate, align, bits)
        sub = usually(tag, st.sampled_from([2, 0x11, 0x55]) | ANY_U16)
        fmt_body = head + struct.pack("<HHIH", 22, bits, 4, sub) + GUID_TAIL
    else:
        fmt_tag = usually(tag, st.sampled_from([2, 0x11, 0x31, 0x55, 0xFFFE]) | ANY_U16)
        fmt_body = struct.pack("<HHIIHH", fmt_tag, channels, rate, byte_rate, align, bits)
    fmt_body = fmt_body[: usually(len(fmt_body), st.integers(0, len(fmt_body)))]
    chunks = [(b"fmt ", fmt_body), (b"data", draw(st.binary(max_size=400)))]
    for _ in range(draw(st.integers(0, 2))):  # LIST, odd-sized and unknown chunks anywhere
        extra = (draw(st.sampled_from([b"LIST", b"fact", b"JUNK", b"data", b"fmt "])), b"abc")
        chunks.insert(draw(st.integers(0, len(chunks))), extra)
    if not draw(st.integers(0, 9)):
        chunks.reverse()
    body = b""
    for chunk_id, content in chunks:
        size = usually(len(content), st.sampled_from([0, 1, 0xFFFFFFFF]) | ANY_U32)
        body += chunk_id + struct.pack("<I", size) + content + b"\x00" * (len(content) & 1)
    data = b"RIFF" + struct.pack("<I", usually(4 + len(body), ANY_U32)) + b"WAVE" + body
    return data[: usually(len(data), st.integers(0, len(data)))]


@settings(max_examples=500, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=wav_files())
def test_the_wav_header_parser_says_something_true_or_refuses(data: bytes) -> None:
    try:
        layout = parse_wav(data)
    except AudioDecodeError:  # UnsupportedAudioFormat included
        return
    assert isinstance(layout, WavLayout)
    assert 12 < layout.data_offset <= len(data)
    assert layout.data_offset + layout.data_size <= len(data)
    assert layout.block_align == layout.channels * layout.bits // 8 > 0
    assert layout.data_size % layout.block_align == 0
    assert 1 <= layout.channels <= 16
    assert 1 <= layout.sample_rate <= 768_000
    assert layout.duration_s == layout.frames / layout.sample_rate
    # Converted in pieces of any size, the samples are the same, one PCM16 sample per frame.
    whole = b"".join(wav_pieces(data, layout))
    assert len(whole) == 2 * layout.frames
    assert b"".join(wav_pieces(data, layout, piece_bytes=50)) == whole


@settings(max_examples=500, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=wav_files(), max_seconds=st.sampled_from([0.01, 0.05, 1.0]))
def test_wav_uploads_decode_or_raise_an_audio_error_and_never_reach_ffmpeg(
    data: bytes, max_seconds: float
) -> None:
    started = time.perf_counter()
    try:
        with mock.patch.object(av, "open", side_effect=AssertionError("FFmpeg opened a WAV")):
            clip = decode_file(data, max_bytes=BIG, max_seconds=max_seconds)
    except AudioTooLarge:
        assert parse_wav(data).duration_s > max_seconds  # only ever for a header over the limit
        return
    except AudioError:
        return
    finally:
        assert time.perf_counter() - started < 1.0
    layout = parse_wav(data)
    assert clip.sample_rate == 16_000
    assert 0 < layout.duration_s <= max_seconds
    assert clip.samples > 0
    # The resampler's filter may add or drop a few samples at the ends.
    assert abs(clip.samples - layout.duration_s * 16_000) <= 64
