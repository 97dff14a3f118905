"""G.711 μ-law and A-law companding of PCM16, bit-exact with ITU-T G.711 (and the old audioop)."""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

_Int16 = npt.NDArray[np.int16]
_UInt8 = npt.NDArray[np.uint8]
_Int32 = npt.NDArray[np.int32]

# Segment ends of the 8-segment piecewise-linear curves (Sun Microsystems' public-domain g711.c,
# the reference audioop and FFmpeg follow).
_ULAW_SEG_END = np.array([0x3F, 0x7F, 0xFF, 0x1FF, 0x3FF, 0x7FF, 0xFFF, 0x1FFF], dtype=np.int32)
_ALAW_SEG_END = np.array([0x1F, 0x3F, 0x7F, 0xFF, 0x1FF, 0x3FF, 0x7FF, 0xFFF], dtype=np.int32)
_ULAW_BIAS = 0x21  # the 0x84 bias of the 16-bit formulation, at 14-bit resolution
_ULAW_CLIP = 8159


def _ulaw_decode_table() -> _Int16:
    u = ~np.arange(256, dtype=np.int32) & 0xFF
    t = (((u & 0x0F) << 3) + 0x84) << ((u & 0x70) >> 4)
    return np.where(u & 0x80, 0x84 - t, t - 0x84).astype(np.int16)


def _alaw_decode_table() -> _Int16:
    a = np.arange(256, dtype=np.int32) ^ 0x55
    seg = (a & 0x70) >> 4
    t = (a & 0x0F) << 4
    t = np.where(seg == 0, t + 8, (t + 0x108) << np.maximum(seg - 1, 0))
    return np.where(a & 0x80, t, -t).astype(np.int16)


def _ulaw_encode_table() -> _UInt8:
    # Indexed by the int16 sample reinterpreted as uint16, so encoding is a single gather.
    pcm: _Int32 = np.arange(65536, dtype=np.uint16).view(np.int16).astype(np.int32) >> 2
    mask = np.where(pcm < 0, 0x7F, 0xFF)
    mag = np.minimum(np.abs(pcm), _ULAW_CLIP) + _ULAW_BIAS
    seg = np.searchsorted(_ULAW_SEG_END, mag)  # first segment whose end is >= mag
    code = (seg << 4) | ((mag >> (seg + 1)) & 0x0F)
    return ((np.where(seg >= 8, 0x7F, code) ^ mask) & 0xFF).astype(np.uint8)


def _alaw_encode_table() -> _UInt8:
    pcm: _Int32 = np.arange(65536, dtype=np.uint16).view(np.int16).astype(np.int32) >> 3
    mask = np.where(pcm >= 0, 0xD5, 0x55)
    mag = np.where(pcm >= 0, pcm, -pcm - 1)
    seg = np.searchsorted(_ALAW_SEG_END, mag)
    code = (seg << 4) | ((mag >> np.where(seg < 2, 1, seg)) & 0x0F)
    return ((np.where(seg >= 8, 0x7F, code) ^ mask) & 0xFF).astype(np.uint8)


_ULAW_DECODE: _Int16 = _ulaw_decode_table()
_ALAW_DECODE: _Int16 = _alaw_decode_table()
_ULAW_ENCODE: _UInt8 = _ulaw_encode_table()
_ALAW_ENCODE: _UInt8 = _alaw_encode_table()


def _encode(pcm: bytes, table: _UInt8) -> bytes:
    if len(pcm) % 2:
        raise ValueError("PCM16 input must have an even number of bytes")
    codes: _UInt8 = table[np.frombuffer(pcm, dtype="<u2")]
    return codes.tobytes()


def _decode(data: bytes, table: _Int16) -> bytes:
    codes = np.frombuffer(data, dtype=np.uint8)
    return table[codes].astype("<i2").tobytes()


def ulaw_encode(pcm: bytes) -> bytes:
    """Compand PCM16 to μ-law, one byte per sample.

    Args:
        pcm: Mono signed 16-bit little-endian samples; the length must be even.

    Returns:
        The μ-law codes.

    Raises:
        ValueError: The input has an odd number of bytes.
    """
    return _encode(pcm, _ULAW_ENCODE)


def ulaw_decode(data: bytes) -> bytes:
    """Expand μ-law codes to PCM16 little-endian, two bytes per code."""
    return _decode(data, _ULAW_DECODE)


def alaw_encode(pcm: bytes) -> bytes:
    """Compand PCM16 to A-law, one byte per sample.

    Args:
        pcm: Mono signed 16-bit little-endian samples; the length must be even.

    Returns:
        The A-law codes.

    Raises:
        ValueError: The input has an odd number of bytes.
    """
    return _encode(pcm, _ALAW_ENCODE)


def alaw_decode(data: bytes) -> bytes:
    """Expand A-law codes to PCM16 little-endian, two bytes per code."""
    return _decode(data, _ALAW_DECODE)
