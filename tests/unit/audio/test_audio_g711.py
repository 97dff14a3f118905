import importlib
import warnings
from pathlib import Path
from types import ModuleType

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from voxdialog.audio.g711 import alaw_decode, alaw_encode, ulaw_decode, ulaw_encode
from voxdialog.audio.wav import read_wav

DATA = Path(__file__).resolve().parents[3] / ".." / "shared" / "data"
ALL_SAMPLES = np.arange(-32768, 32768, dtype="<i2")
ALL_CODES = bytes(range(256))
CODECS = {
    "ulaw": (ulaw_encode, ulaw_decode),
    "alaw": (alaw_encode, alaw_decode),
}


def pcm(*values: int) -> bytes:
    return np.array(values, dtype="<i2").tobytes()


def samples(data: bytes) -> np.ndarray:
    return np.frombuffer(data, dtype="<i2").astype(np.int64)


def audioop_or_skip() -> ModuleType:
    # audioop is the C reference many systems were built on; it left the stdlib in 3.13.
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        try:
            return importlib.import_module("audioop")
        except ImportError:
            pytest.skip("audioop is not in this Python")


@pytest.mark.parametrize(
    ("code", "value"), [(0xFF, 0), (0x7F, 0), (0xFE, 8), (0x7E, -8), (0x00, -32124), (0x80, 32124)]
)
def test_ulaw_decodes_the_itu_reference_values(code: int, value: int) -> None:
    assert samples(ulaw_decode(bytes([code]))).tolist() == [value]


@pytest.mark.parametrize(("code", "value"), [(0xD5, 8), (0x55, -8), (0xAA, 32256), (0x2A, -32256)])
def test_alaw_decodes_the_itu_reference_values(code: int, value: int) -> None:
    assert samples(alaw_decode(bytes([code]))).tolist() == [value]


def test_silence_and_full_scale_encode_to_the_reference_codes() -> None:
    assert ulaw_encode(pcm(0, 32767, -32768)) == bytes([0xFF, 0x80, 0x00])
    assert alaw_encode(pcm(0, 32767, -32768)) == bytes([0xD5, 0xAA, 0x2A])


def test_ulaw_matches_audioop_on_every_sample_and_code() -> None:
    audioop = audioop_or_skip()
    everything = ALL_SAMPLES.tobytes()
    assert ulaw_encode(everything) == audioop.lin2ulaw(everything, 2)
    assert ulaw_decode(ALL_CODES) == audioop.ulaw2lin(ALL_CODES, 2)


def test_alaw_matches_audioop_on_every_sample_and_code() -> None:
    audioop = audioop_or_skip()
    everything = ALL_SAMPLES.tobytes()
    assert alaw_encode(everything) == audioop.lin2alaw(everything, 2)
    assert alaw_decode(ALL_CODES) == audioop.alaw2lin(ALL_CODES, 2)


def test_every_alaw_code_survives_decode_then_encode() -> None:
    assert alaw_encode(alaw_decode(ALL_CODES)) == ALL_CODES


def test_every_ulaw_code_but_negative_zero_survives_decode_then_encode() -> None:
    expected = bytearray(ALL_CODES)
    expected[0x7F] = 0xFF  # -0 and +0 both decode to 0, which encodes as +0
    assert ulaw_encode(ulaw_decode(ALL_CODES)) == bytes(expected)


@pytest.mark.parametrize(("name", "levels"), [("ulaw", 255), ("alaw", 256)])
def test_each_code_has_its_own_level_except_the_two_ulaw_zeros(name: str, levels: int) -> None:
    _, decode = CODECS[name]
    assert len(set(samples(decode(ALL_CODES)).tolist())) == levels


@pytest.mark.parametrize("name", CODECS)
def test_round_trip_error_stays_within_the_companding_step(name: str) -> None:
    encode, decode = CODECS[name]
    x = ALL_SAMPLES.astype(np.int64)
    peak = int(np.abs(samples(decode(ALL_CODES))).max())
    error = np.abs(samples(decode(encode(ALL_SAMPLES.tobytes()))) - x)
    # A step is 1/16 of the level at most, so half a step is |x|/32; 8 is the finest step;
    # above the codec's peak the signal is clipped.
    bound = np.abs(x) / 32 + 8 + np.maximum(np.abs(x) - peak, 0)
    assert np.all(error <= bound)


@pytest.mark.parametrize("name", CODECS)
def test_round_trip_of_real_speech_keeps_snr_above_30_db(name: str) -> None:
    encode, decode = CODECS[name]
    clip = read_wav((DATA / "speech" / "misc" / "jfk.wav").read_bytes())
    x = samples(clip.pcm).astype(np.float64)
    y = samples(decode(encode(clip.pcm))).astype(np.float64)
    snr = 10 * np.log10(np.sum(x**2) / np.sum((x - y) ** 2))
    assert snr > 30


@pytest.mark.parametrize("name", CODECS)
def test_odd_length_pcm_is_refused(name: str) -> None:
    encode, _ = CODECS[name]
    with pytest.raises(ValueError, match="even"):
        encode(b"\x00\x01\x02")


@pytest.mark.parametrize("name", CODECS)
def test_empty_input_gives_empty_output(name: str) -> None:
    encode, decode = CODECS[name]
    assert encode(b"") == b""
    assert decode(b"") == b""


@given(st.lists(st.integers(-32768, 32767), max_size=300), st.sampled_from(sorted(CODECS)))
def test_encoding_makes_one_code_per_sample_and_decoding_is_stable(
    values: list[int], name: str
) -> None:
    encode, decode = CODECS[name]
    codes = encode(pcm(*values))
    assert len(codes) == len(values)
    decoded = decode(codes)
    assert len(decoded) == 2 * len(values)
    # Decoded levels are fixed points: companding them again changes nothing.
    assert decode(encode(decoded)) == decoded


@given(st.binary(max_size=300), st.sampled_from(sorted(CODECS)))
def test_any_bytes_decode_to_two_bytes_per_code(data: bytes, name: str) -> None:
    _, decode = CODECS[name]
    assert len(decode(data)) == 2 * len(data)
