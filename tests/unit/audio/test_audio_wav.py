import io
import struct
import wave
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from voxdialog.audio.errors import AudioDecodeError, UnsupportedAudioFormat
from voxdialog.audio.formats import AudioChunk
from voxdialog.audio.wav import read_wav, wav_header, write_wav

DATA = Path(__file__).resolve().parents[3] / ".." / "shared" / "data"
JFK = DATA / "speech" / "misc" / "jfk.wav"
SIGNAL = np.array([0, 1, -1, 255, -256, 12_345, -12_345, 32_767, -32_768], dtype=np.int16)


def riff(
    fmt_body: bytes, data: bytes, *, data_size: int | None = None, extra: bytes = b""
) -> bytes:
    """A WAV built by hand, so the header can say anything."""
    size = len(data) if data_size is None else data_size
    chunks = b"fmt " + struct.pack("<I", len(fmt_body)) + fmt_body + extra
    chunks += b"data" + struct.pack("<I", size) + data
    return b"RIFF" + struct.pack("<I", 4 + len(chunks)) + b"WAVE" + chunks


def fmt_chunk(
    tag: int, channels: int, rate: int, bits: int, *, block_align: int | None = None
) -> bytes:
    align = channels * bits // 8 if block_align is None else block_align
    return struct.pack("<HHIIHH", tag, channels, rate, rate * align, align, bits)


def stdlib_wav(frames: bytes, *, channels: int, width: int, rate: int = 16_000) -> bytes:
    out = io.BytesIO()
    with wave.open(out, "wb") as w:
        w.setnchannels(channels)
        w.setsampwidth(width)
        w.setframerate(rate)
        w.writeframes(frames)
    return out.getvalue()


def test_a_real_16k_recording_reads_as_its_data_chunk() -> None:
    data = JFK.read_bytes()
    clip = read_wav(data)
    assert clip.sample_rate == 16_000
    assert clip.pcm == data[44:]  # the shared set has plain 44-byte headers
    assert clip.duration_ms == pytest.approx(11_000, abs=1)


def test_write_then_read_gives_back_the_same_chunk() -> None:
    chunk = AudioChunk(SIGNAL.astype("<i2").tobytes(), 22_050)
    assert read_wav(write_wav(chunk)) == chunk


def test_written_wavs_are_readable_by_the_stdlib() -> None:
    chunk = AudioChunk(SIGNAL.astype("<i2").tobytes(), 8_000)
    with wave.open(io.BytesIO(write_wav(chunk))) as w:
        assert (w.getnchannels(), w.getsampwidth(), w.getframerate()) == (1, 2, 8_000)
        assert w.readframes(100) == chunk.pcm


def test_a_streaming_header_has_unknown_sizes_and_reads_to_the_end() -> None:
    header = wav_header(24_000)
    assert len(header) == 44
    assert struct.unpack_from("<I", header, 4)[0] == 0xFFFFFFFF
    assert struct.unpack_from("<I", header, 40)[0] == 0xFFFFFFFF
    pcm = SIGNAL.astype("<i2").tobytes()
    assert read_wav(header + pcm + b"\x01") == AudioChunk(pcm, 24_000)  # half a sample dropped


def test_a_known_length_header_states_it() -> None:
    header = wav_header(16_000, 3_200)
    assert struct.unpack_from("<I", header, 4)[0] == 36 + 3_200
    assert struct.unpack_from("<I", header, 40)[0] == 3_200


def test_stereo_is_averaged_to_mono() -> None:
    left = SIGNAL.astype(np.int32)
    right = np.roll(left, 1)
    frames = np.stack([left, right], axis=1).astype("<i2").tobytes()
    clip = read_wav(stdlib_wav(frames, channels=2, width=2))
    expected = np.round((left + right) / 2)
    np.testing.assert_array_equal(np.frombuffer(clip.pcm, dtype="<i2"), expected)


@pytest.mark.parametrize(
    ("width", "encode"),
    [
        (3, lambda x: (x.astype("<i4") << 8).astype("<i4").view(np.uint8).reshape(-1, 4)[:, :3]),
        (4, lambda x: x.astype("<i4") << 16),
    ],
)
def test_wider_integer_pcm_is_scaled_down_exactly(
    width: int, encode: Callable[[np.ndarray], np.ndarray]
) -> None:
    frames = np.ascontiguousarray(encode(SIGNAL)).tobytes()
    clip = read_wav(stdlib_wav(frames, channels=1, width=width))
    np.testing.assert_array_equal(np.frombuffer(clip.pcm, dtype="<i2"), SIGNAL)


def test_8_bit_pcm_is_unsigned_and_scaled_up() -> None:
    frames = ((SIGNAL.astype(np.int32) >> 8) + 128).astype(np.uint8).tobytes()
    clip = read_wav(stdlib_wav(frames, channels=1, width=1))
    np.testing.assert_array_equal(
        np.frombuffer(clip.pcm, dtype="<i2"), (SIGNAL.astype(np.int32) >> 8) << 8
    )


@pytest.mark.parametrize("dtype", ["<f4", "<f8"])
def test_float_pcm_is_scaled_and_clipped(dtype: str) -> None:
    floats = np.concatenate([SIGNAL / 32_768.0, [1.5, -2.0, np.nan]]).astype(dtype)
    bits = np.dtype(dtype).itemsize * 8
    clip = read_wav(riff(fmt_chunk(3, 1, 16_000, bits), floats.tobytes()))
    expected = np.concatenate([SIGNAL, [32_767, -32_768, 0]])
    np.testing.assert_array_equal(np.frombuffer(clip.pcm, dtype="<i2"), expected)


def test_extensible_format_is_read_by_its_sub_format() -> None:
    base = fmt_chunk(0xFFFE, 1, 16_000, 16)
    guid_tail = b"\x00\x00\x00\x00\x10\x00\x80\x00\x00\xaa\x00\x38\x9b\x71"
    ext = base + struct.pack("<HHI", 22, 16, 4) + struct.pack("<H", 1) + guid_tail
    pcm = SIGNAL.astype("<i2").tobytes()
    assert read_wav(riff(ext, pcm)) == AudioChunk(pcm, 16_000)


def test_chunks_before_and_after_the_data_are_skipped() -> None:
    pcm = SIGNAL.astype("<i2").tobytes()
    odd_chunk = b"LIST" + struct.pack("<I", 3) + b"abc\x00"  # odd size, padded
    data = riff(fmt_chunk(1, 1, 16_000, 16), pcm, extra=odd_chunk) + b"id3 " + b"\x00" * 8
    assert read_wav(data) == AudioChunk(pcm, 16_000)


# G.711 (6 A-law, 7 μ-law) is read: see tests/unit/audio/test_audio_upload_limits.py.
@pytest.mark.parametrize("tag", [2, 0x11, 0x31, 0x55])  # MS/IMA ADPCM, GSM 6.10, MP3-in-WAV
def test_other_encodings_are_reported_as_unsupported(tag: int) -> None:
    with pytest.raises(UnsupportedAudioFormat):
        read_wav(riff(fmt_chunk(tag, 1, 8_000, 8), b"\x00" * 100))


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (b"", "not a WAV"),
        (b"RIFF\x00\x00\x00\x00WAVX", "not a WAV"),
        (b"OggS" + b"\x00" * 60, "not a WAV"),
        (b"RIFF\x24\x00\x00\x00WAVE", "no audio data"),
        (riff(fmt_chunk(1, 1, 16_000, 16), b"\x00" * 100, data_size=1_000), "truncated"),
        (riff(fmt_chunk(1, 0, 16_000, 16), b"\x00" * 100), "malformed"),
        (riff(fmt_chunk(1, 1, 0, 16), b"\x00" * 100), "malformed"),
        (riff(fmt_chunk(1, 2, 16_000, 16, block_align=2), b"\x00" * 100), "malformed"),
        (riff(fmt_chunk(1, 1, 16_000, 16)[:12], b"\x00" * 100), "malformed"),
        (riff(fmt_chunk(1, 1, 16_000, 12), b"\x00" * 100), "sample size"),
        (b"RIFF\x10\x00\x00\x00WAVEdata\x04\x00\x00\x00\x00\x00\x00\x00", "data before format"),
        (b"RIFF\x10\x00\x00\x00WAVEfmt \xff\x00\x00\x00\x01\x00", "malformed"),
    ],
)
def test_malformed_or_lying_headers_raise_a_decode_error(data: bytes, message: str) -> None:
    with pytest.raises(AudioDecodeError, match=message):
        read_wav(data)


@settings(max_examples=200, deadline=None)
@given(
    edits=st.lists(st.tuples(st.integers(0, 80), st.integers(0, 255)), max_size=6),
    cut=st.integers(0, 200),
)
def test_mutated_wav_headers_only_ever_raise_decode_errors(
    edits: list[tuple[int, int]], cut: int
) -> None:
    original = riff(fmt_chunk(1, 2, 16_000, 16), SIGNAL.astype("<i2").tobytes() * 4)
    data = bytearray(original[: len(original) - cut])
    for pos, value in edits:
        if pos < len(data):
            data[pos] = value
    try:
        clip = read_wav(bytes(data))
    except AudioDecodeError:
        return
    assert len(clip.pcm) % 2 == 0
    assert clip.sample_rate > 0
