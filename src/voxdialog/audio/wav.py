"""WAV (RIFF) reading and writing: PCM, float and G.711 WAV in, mono PCM16 WAV out.

Reading is in two steps so that an upload's size can be judged before any sample is touched:
``parse_wav`` reads the header alone (the duration follows from it), then ``wav_pieces``
converts the samples a bounded piece at a time.
"""

from __future__ import annotations

import struct
from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from voxdialog.audio.errors import AudioDecodeError, UnsupportedAudioFormat
from voxdialog.audio.formats import SAMPLE_WIDTH, AudioChunk
from voxdialog.audio.g711 import alaw_decode, ulaw_decode

_PCM = 0x0001
_FLOAT = 0x0003
_ALAW = 0x0006
_MULAW = 0x0007
_EXTENSIBLE = 0xFFFE
_UNKNOWN_SIZE = 0xFFFFFFFF  # what streaming writers put where the length goes
_MAX_CHANNELS = 16
_MAX_RATE = 768_000
# Every encoding read here and its sample sizes. Anything else (ADPCM, GSM, MP3-in-WAV, ...)
# is refused, never handed to another decoder: those are where WAV decoders had their
# overflows (CVE-2021-3246 and friends).
_BITS = {
    _PCM: frozenset({8, 16, 24, 32}),
    _FLOAT: frozenset({32, 64}),
    _ALAW: frozenset({8}),
    _MULAW: frozenset({8}),
}
# Real files hold a handful of chunks before the samples (fmt, fact, LIST, bext, JUNK); a file
# of millions of empty ones would only cost time.
_MAX_CHUNKS = 1_000
#: Sample bytes converted at a time: keeps the float temporaries of one piece near 2 MiB.
PIECE_BYTES = 256 * 1024


@dataclass(frozen=True, slots=True)
class _Fmt:
    tag: int
    channels: int
    rate: int
    block_align: int
    bits: int


@dataclass(frozen=True, slots=True)
class WavLayout:
    """What a WAV's header says: how its samples are stored and where they lie in the file.

    Attributes:
        tag: The format tag (1 PCM, 3 float, 6 A-law, 7 μ-law; an extensible header's sub-format).
        channels: Interleaved channels.
        sample_rate: Frames per second.
        block_align: Bytes per frame.
        bits: Bits per sample.
        data_offset: Where the samples start in the file.
        data_size: Bytes of whole frames from there (a partial last frame is left out).
    """

    tag: int
    channels: int
    sample_rate: int
    block_align: int
    bits: int
    data_offset: int
    data_size: int

    @property
    def frames(self) -> int:
        """Number of whole frames in the file."""
        return self.data_size // self.block_align

    @property
    def duration_s(self) -> float:
        """Length of the audio in seconds, from the header alone."""
        return self.frames / self.sample_rate


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


def parse_wav(data: bytes) -> WavLayout:
    """Read a WAV file's header, without converting any sample.

    A data size of 0xFFFFFFFF (or 0, as some streamers write) means "to the end of the file".

    Args:
        data: The whole file (only its header is looked at).

    Returns:
        The layout; ``duration_s`` is exact, so limits can be checked before decoding.

    Raises:
        UnsupportedAudioFormat: A well-formed WAV in an encoding we do not read (ADPCM, GSM, ...).
        AudioDecodeError: Not a WAV, or its header is malformed, inconsistent or truncated.
    """
    try:
        return _parse(data)
    except AudioDecodeError:
        raise
    except (struct.error, ValueError, IndexError, OverflowError) as e:
        # The checks in _parse should leave nothing for these, but a crafted file must never
        # escape as anything other than a decode error.
        raise AudioDecodeError("malformed WAV file") from e


def wav_pieces(
    data: bytes, layout: WavLayout, *, piece_bytes: int = PIECE_BYTES
) -> Iterator[bytes]:
    """The samples of a parsed WAV as mono PCM16 at its own rate, one bounded piece at a time.

    Memory stays bounded by ``piece_bytes`` (times the float conversion's factor), whatever
    the size of the file.

    Args:
        data: The file ``layout`` was parsed from.
        layout: What ``parse_wav`` returned for it.
        piece_bytes: About how many sample bytes to convert at a time.

    Yields:
        PCM16 little-endian pieces, channels averaged to mono.

    Raises:
        AudioDecodeError: The samples cannot be converted (never expected after ``parse_wav``).
    """
    step = max(1, piece_bytes // layout.block_align) * layout.block_align
    end = layout.data_offset + layout.data_size
    view = memoryview(data)
    for start in range(layout.data_offset, end, step):
        try:
            yield _to_pcm16(view[start : min(start + step, end)], layout)
        except (ValueError, IndexError, OverflowError) as e:
            raise AudioDecodeError("malformed WAV file") from e


def read_wav(data: bytes) -> AudioChunk:
    """Read a WAV file into mono PCM16 at its own rate.

    Reads integer PCM of 8, 16, 24 or 32 bits, float of 32 or 64 bits and 8-bit G.711 (μ-law,
    A-law), with any channel count (averaged to mono). A data size of 0xFFFFFFFF (or 0, as
    some streamers write) means "to the end of the file"; a partial last frame is dropped.

    Args:
        data: The whole file.

    Returns:
        The audio, possibly empty.

    Raises:
        UnsupportedAudioFormat: A well-formed WAV in another encoding (ADPCM, GSM, ...).
        AudioDecodeError: Not a WAV, or its header is malformed, inconsistent or truncated.
    """
    layout = parse_wav(data)
    return AudioChunk(b"".join(wav_pieces(data, layout)), layout.sample_rate)


def _parse(data: bytes) -> WavLayout:
    if len(data) < 12 or data[:4] != b"RIFF" or data[8:12] != b"WAVE":
        raise AudioDecodeError("not a WAV file")
    fmt: _Fmt | None = None
    pos = 12
    for _ in range(_MAX_CHUNKS):
        if pos + 8 > len(data):
            break
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
            return _layout(fmt, body, _data_size(data, body, size, fmt))
        pos = body + size + (size & 1)  # chunks are padded to even length
    else:
        raise AudioDecodeError("malformed WAV file: too many chunks before the data")
    raise AudioDecodeError("WAV file has no audio data")


def _parse_fmt(body: bytes) -> _Fmt:
    tag, channels, rate, _byte_rate, block_align, bits = struct.unpack_from("<HHIIHH", body)
    if tag == _EXTENSIBLE:
        # cbSize, valid bits and channel mask precede the sub-format GUID, whose first two
        # bytes are the real format tag.
        if len(body) < 26:
            raise AudioDecodeError("malformed WAV format chunk")
        (tag,) = struct.unpack_from("<H", body, 24)
    if tag not in _BITS:
        raise UnsupportedAudioFormat(f"unsupported WAV encoding (format tag 0x{tag:04x})")
    if bits not in _BITS[tag]:
        raise UnsupportedAudioFormat("unsupported WAV sample size")
    if not 1 <= channels <= _MAX_CHANNELS or not 1 <= rate <= _MAX_RATE:
        raise AudioDecodeError("malformed WAV format chunk")
    # byte_rate is not checked: players ignore it, and some writers get it wrong.
    if block_align != channels * bits // 8:
        raise AudioDecodeError("malformed WAV format chunk")
    return _Fmt(tag, channels, rate, block_align, bits)


def _data_size(data: bytes, body: int, size: int, fmt: _Fmt) -> int:
    available = len(data) - body
    if size in (0, _UNKNOWN_SIZE):
        size = available
    elif size > available:
        raise AudioDecodeError("truncated WAV file")
    return size - size % fmt.block_align


def _layout(fmt: _Fmt, offset: int, size: int) -> WavLayout:
    return WavLayout(
        tag=fmt.tag,
        channels=fmt.channels,
        sample_rate=fmt.rate,
        block_align=fmt.block_align,
        bits=fmt.bits,
        data_offset=offset,
        data_size=size,
    )


def _to_pcm16(payload: memoryview, layout: WavLayout) -> bytes:
    if layout.tag == _PCM and layout.bits == 16 and layout.channels == 1:
        return bytes(payload)
    if layout.tag in (_ALAW, _MULAW):
        expand = alaw_decode if layout.tag == _ALAW else ulaw_decode
        pcm = expand(bytes(payload))
        if layout.channels == 1:
            return pcm
        scaled = np.frombuffer(pcm, dtype="<i2").astype(np.float64)
    else:
        scaled = _scaled(payload, layout)
    if layout.channels > 1:
        scaled = scaled.reshape(-1, layout.channels).mean(axis=1)
    samples: npt.NDArray[np.int16] = np.clip(np.round(scaled), -32768, 32767).astype("<i2")
    return samples.tobytes()


def _scaled(payload: memoryview, layout: WavLayout) -> npt.NDArray[np.float64]:
    """Integer or float samples as float64 on the int16 scale."""
    width = layout.bits // 8
    if layout.tag == _FLOAT:
        floats = np.frombuffer(payload, dtype=f"<f{width}").astype(np.float64)
        return np.nan_to_num(floats, nan=0.0, posinf=1.0, neginf=-1.0) * 32768.0
    if width == 1:  # 8-bit WAV is unsigned
        return (np.frombuffer(payload, dtype=np.uint8).astype(np.float64) - 128.0) * 256.0
    if width == 3:
        raw = np.frombuffer(payload, dtype=np.uint8).reshape(-1, 3).astype(np.int32)
        value = raw[:, 0] | (raw[:, 1] << 8) | (raw[:, 2] << 16)
        value = np.where(value & 0x800000, value - 0x1000000, value)
        return value.astype(np.float64) / 256.0
    ints = np.frombuffer(payload, dtype=f"<i{width}").astype(np.float64)
    return ints / float(1 << (8 * width - 16))
