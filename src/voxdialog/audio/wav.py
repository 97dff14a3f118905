"""WAV (RIFF) reading and writing: any PCM or float WAV in, mono PCM16 WAV out."""

from __future__ import annotations

import struct
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from voxdialog.audio.errors import AudioDecodeError, UnsupportedAudioFormat
from voxdialog.audio.formats import SAMPLE_WIDTH, AudioChunk

_PCM = 0x0001
_FLOAT = 0x0003
_EXTENSIBLE = 0xFFFE
_UNKNOWN_SIZE = 0xFFFFFFFF  # what streaming writers put where the length goes
_MAX_CHANNELS = 16
_MAX_RATE = 768_000
_PCM_BITS = frozenset({8, 16, 24, 32})
_FLOAT_BITS = frozenset({32, 64})


@dataclass(frozen=True, slots=True)
class _Fmt:
    tag: int
    channels: int
    rate: int
    block_align: int
    bits: int


def wav_header(sample_rate: int, data_bytes: int | None = None) -> bytes:
    """Build the 44-byte header of a mono PCM16 WAV.

    Args:
        sample_rate: The rate in Hz.
        data_bytes: Length of the PCM that follows, or ``None`` when streaming: the sizes
            are then 0xFFFFFFFF, which players read as "until the end".

    Returns:
        The header bytes.
    """
    if data_bytes is None:
        riff_size = data_size = _UNKNOWN_SIZE
    else:
        data_size = data_bytes
        riff_size = min(36 + data_bytes, _UNKNOWN_SIZE)
    return struct.pack(
        "<4sI4s4sIHHIIHH4sI",
        b"RIFF",
        riff_size,
        b"WAVE",
        b"fmt ",
        16,
        _PCM,
        1,
        sample_rate,
        sample_rate * SAMPLE_WIDTH,
        SAMPLE_WIDTH,
        SAMPLE_WIDTH * 8,
        b"data",
        data_size,
    )


def write_wav(chunk: AudioChunk) -> bytes:
    """Wrap a chunk in a mono PCM16 WAV file."""
    return wav_header(chunk.sample_rate, len(chunk.pcm)) + chunk.pcm


def read_wav(data: bytes) -> AudioChunk:
    """Read a WAV file into mono PCM16 at its own rate.

    Reads integer PCM of 8, 16, 24 or 32 bits and float of 32 or 64 bits, with any channel
    count (averaged to mono). A data size of 0xFFFFFFFF (or 0, as some streamers write) means
    "to the end of the file"; a partial last frame is dropped.

    Args:
        data: The whole file.

    Returns:
        The audio, possibly empty.

    Raises:
        UnsupportedAudioFormat: A well-formed WAV in another encoding (ADPCM, G.711, ...).
        AudioDecodeError: Not a WAV, or its header is malformed, inconsistent or truncated.
    """
    try:
        fmt, payload = _parse(data)
        if fmt.tag == _PCM and fmt.bits == 16 and fmt.channels == 1:
            return AudioChunk(payload, fmt.rate)
        samples = _to_int16(payload, fmt)
    except AudioDecodeError:
        raise
    except (struct.error, ValueError, IndexError, OverflowError) as e:
        # The checks in _parse should leave nothing for these, but a crafted file must never
        # escape as anything other than a decode error.
        raise AudioDecodeError("malformed WAV file") from e
    return AudioChunk(samples.astype("<i2").tobytes(), fmt.rate)


def _parse(data: bytes) -> tuple[_Fmt, bytes]:
    if len(data) < 12 or data[:4] != b"RIFF" or data[8:12] != b"WAVE":
        raise AudioDecodeError("not a WAV file")
    fmt: _Fmt | None = None
    pos = 12
    while pos + 8 <= len(data):
        chunk_id = data[pos : pos + 4]
        (size,) = struct.unpack_from("<I", data, pos + 4)
        body = pos + 8
        if chunk_id == b"fmt ":
            if size < 16 or body + size > len(data):
                raise AudioDecodeError("malformed WAV format chunk")
            fmt = _parse_fmt(data[body : body + size])
        elif chunk_id == b"data":
            if fmt is None:
                raise AudioDecodeError("malformed WAV file: data before format")
            return fmt, _data_payload(data, body, size, fmt)
        pos = body + size + (size & 1)  # chunks are padded to even length
    raise AudioDecodeError("WAV file has no audio data")


def _parse_fmt(body: bytes) -> _Fmt:
    tag, channels, rate, _byte_rate, block_align, bits = struct.unpack_from("<HHIIHH", body)
    if tag == _EXTENSIBLE:
        # cbSize, valid bits and channel mask precede the sub-format GUID, whose first two
        # bytes are the real format tag.
        if len(body) < 26:
            raise AudioDecodeError("malformed WAV format chunk")
        (tag,) = struct.unpack_from("<H", body, 24)
    if tag == _PCM:
        ok_bits = bits in _PCM_BITS
    elif tag == _FLOAT:
        ok_bits = bits in _FLOAT_BITS
    else:
        raise UnsupportedAudioFormat("unsupported WAV encoding")
    if not ok_bits:
        raise UnsupportedAudioFormat("unsupported WAV sample size")
    if not 1 <= channels <= _MAX_CHANNELS or not 1 <= rate <= _MAX_RATE:
        raise AudioDecodeError("malformed WAV format chunk")
    # byte_rate is not checked: players ignore it, and some writers get it wrong.
    if block_align != channels * bits // 8:
        raise AudioDecodeError("malformed WAV format chunk")
    return _Fmt(tag, channels, rate, block_align, bits)


def _data_payload(data: bytes, body: int, size: int, fmt: _Fmt) -> bytes:
    available = len(data) - body
    if size in (0, _UNKNOWN_SIZE):
        size = available
    elif size > available:
        raise AudioDecodeError("truncated WAV file")
    size -= size % fmt.block_align
    return data[body : body + size]


def _to_int16(payload: bytes, fmt: _Fmt) -> npt.NDArray[np.int16]:
    width = fmt.bits // 8
    if fmt.tag == _FLOAT:
        floats = np.frombuffer(payload, dtype=f"<f{width}").astype(np.float64)
        scaled = np.nan_to_num(floats, nan=0.0, posinf=1.0, neginf=-1.0) * 32768.0
    elif width == 1:  # 8-bit WAV is unsigned
        scaled = (np.frombuffer(payload, dtype=np.uint8).astype(np.float64) - 128.0) * 256.0
    elif width == 3:
        raw = np.frombuffer(payload, dtype=np.uint8).reshape(-1, 3).astype(np.int32)
        value = raw[:, 0] | (raw[:, 1] << 8) | (raw[:, 2] << 16)
        value = np.where(value & 0x800000, value - 0x1000000, value)
        scaled = value.astype(np.float64) / 256.0
    else:
        ints = np.frombuffer(payload, dtype=f"<i{width}").astype(np.float64)
        scaled = ints / float(1 << (8 * width - 16))
    if fmt.channels > 1:
        scaled = scaled.reshape(-1, fmt.channels).mean(axis=1)
    return np.clip(np.round(scaled), -32768, 32767).astype(np.int16)
