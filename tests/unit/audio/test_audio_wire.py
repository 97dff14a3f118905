import itertools
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest

from voxdialog.audio.formats import (
    ALAW_8K,
    PCM16_24K,
    ULAW_8K,
    AudioChunk,
    Encoding,
    WireFormat,
)
from voxdialog.audio.g711 import alaw_encode, ulaw_decode, ulaw_encode
from voxdialog.audio.resample import resample
from voxdialog.audio.wav import read_wav
from voxdialog.audio.wire import (
    InputDecoder,
    OutputEncoder,
    bytes_to_ms,
    format_to_beta,
    format_to_ga,
    ms_to_bytes,
    parse_beta_format,
    parse_ga_format,
)

DATA = Path(__file__).resolve().parents[3] / ".." / "shared" / "data"
ALL_FORMATS = [PCM16_24K, ULAW_8K, ALAW_8K]


@pytest.fixture(scope="module")
def speech() -> AudioChunk:
    return read_wav((DATA / "speech" / "ljspeech" / "LJ001-0002.wav").read_bytes())


def samples(data: bytes) -> np.ndarray:
    return np.frombuffer(data, dtype="<i2").astype(np.float64)


def correlation(a: np.ndarray, b: np.ndarray) -> float:
    n = min(len(a), len(b))
    return float(np.corrcoef(a[:n], b[:n])[0, 1])


def pieces(data: bytes, sizes: list[int]) -> list[bytes]:
    """Cut data into pieces of the given sizes, cycling through them."""
    out: list[bytes] = []
    pos = 0
    for size in itertools.cycle(sizes):
        if pos >= len(data):
            return out
        out.append(data[pos : pos + size])
        pos += size
    raise AssertionError


def peak_frequency(pcm: bytes, rate: int) -> float:
    x = samples(pcm)
    spectrum = np.abs(np.fft.rfft(x * np.hanning(len(x))))
    return float(np.fft.rfftfreq(len(x), 1 / rate)[np.argmax(spectrum)])


@pytest.mark.parametrize(
    ("obj", "expected"),
    [
        ({"type": "audio/pcm", "rate": 24000}, PCM16_24K),
        ({"type": "audio/pcm"}, PCM16_24K),
        ({"type": "audio/pcmu"}, ULAW_8K),
        ({"type": "audio/pcma"}, ALAW_8K),
        ({"type": "audio/pcmu", "rate": 8000}, ULAW_8K),
    ],
)
def test_ga_format_objects_name_their_wire_format(
    obj: dict[str, object], expected: WireFormat
) -> None:
    assert parse_ga_format(obj) == expected


@pytest.mark.parametrize("rate", [16000, 44100, "24000", True, None])
def test_ga_pcm_at_any_rate_but_24000_is_refused_with_the_rate_named(rate: object) -> None:
    with pytest.raises(ValueError, match="rate 24000"):
        parse_ga_format({"type": "audio/pcm", "rate": rate})


@pytest.mark.parametrize("obj", [{"type": "audio/opus"}, {"type": None}, {}, {"type": "pcm16"}])
def test_unknown_ga_format_types_are_refused_listing_the_known_ones(obj: dict[str, object]) -> None:
    with pytest.raises(ValueError, match="audio/pcm, audio/pcmu, audio/pcma"):
        parse_ga_format(obj)


@pytest.mark.parametrize("fmt", ALL_FORMATS)
def test_ga_and_beta_spellings_round_trip(fmt: WireFormat) -> None:
    assert parse_ga_format(format_to_ga(fmt)) == fmt
    assert parse_beta_format(format_to_beta(fmt)) == fmt


def test_ga_objects_carry_a_rate_only_for_pcm() -> None:
    assert format_to_ga(PCM16_24K) == {"type": "audio/pcm", "rate": 24000}
    assert format_to_ga(ULAW_8K) == {"type": "audio/pcmu"}
    assert format_to_ga(ALAW_8K) == {"type": "audio/pcma"}


@pytest.mark.parametrize(
    ("name", "fmt"), [("pcm16", PCM16_24K), ("g711_ulaw", ULAW_8K), ("g711_alaw", ALAW_8K)]
)
def test_beta_format_names_are_read(name: str, fmt: WireFormat) -> None:
    assert parse_beta_format(name) == fmt


@pytest.mark.parametrize("name", ["pcm", "G711_ULAW", "", "audio/pcm"])
def test_unknown_beta_format_names_are_refused(name: str) -> None:
    with pytest.raises(ValueError, match="pcm16, g711_ulaw, g711_alaw"):
        parse_beta_format(name)


@pytest.mark.parametrize(
    ("fmt", "ms", "size"),
    [(PCM16_24K, 20, 960), (ULAW_8K, 20, 160), (ALAW_8K, 100, 800), (PCM16_24K, 0.5, 24)],
)
def test_milliseconds_convert_to_whole_samples_of_bytes(
    fmt: WireFormat, ms: float, size: int
) -> None:
    assert ms_to_bytes(fmt, ms) == size
    assert bytes_to_ms(fmt, size) == pytest.approx(ms)


def test_pcm16_input_at_24k_reaches_the_pipeline_at_16k_whatever_the_splits(
    speech: AudioChunk,
) -> None:
    wire = resample(speech.pcm, 16_000, 24_000)
    decoder = InputDecoder(PCM16_24K)
    out = b"".join(decoder.decode(p) for p in pieces(wire, [481, 3, 960, 1])) + decoder.flush()
    assert abs(len(out) - len(speech.pcm)) <= 4
    assert correlation(samples(out), samples(speech.pcm)) > 0.99


@pytest.mark.parametrize(("fmt", "encode"), [(ULAW_8K, ulaw_encode), (ALAW_8K, alaw_encode)])
def test_g711_input_is_expanded_and_upsampled_to_16k(
    speech: AudioChunk, fmt: WireFormat, encode: Callable[[bytes], bytes]
) -> None:
    narrow = resample(speech.pcm, 16_000, 8_000)
    decoder = InputDecoder(fmt)
    out = b"".join(decoder.decode(p) for p in pieces(encode(narrow), [160, 7])) + decoder.flush()
    assert abs(len(out) - 2 * len(narrow)) <= 4
    # Against the same speech band-limited to 4 kHz, so only companding noise differs.
    reference = samples(resample(narrow, 8_000, 16_000))
    assert correlation(samples(out), reference) > 0.99


def test_input_decoder_can_target_another_rate() -> None:
    decoder = InputDecoder(ULAW_8K, target_rate=8_000)
    codes = ulaw_encode(np.full(80, 1000, dtype="<i2").tobytes())
    assert decoder.decode(codes) == ulaw_decode(codes)


@pytest.mark.parametrize("fmt", ALL_FORMATS)
def test_tts_audio_at_22050_leaves_at_the_wire_rate_and_comes_back_intact(
    speech: AudioChunk, fmt: WireFormat
) -> None:
    tts = AudioChunk(resample(speech.pcm, 16_000, 22_050), 22_050)
    encoder = OutputEncoder(fmt, source_rate=22_050)
    parts = [encoder.encode(AudioChunk(p, 22_050)) for p in pieces(tts.pcm, [4410, 882])]
    wire = b"".join(parts) + encoder.flush()
    width = 2 if fmt.encoding is Encoding.PCM16 else 1
    assert abs(len(wire) / width - tts.samples * fmt.sample_rate / 22_050) <= 3
    decoder = InputDecoder(fmt)
    back = decoder.decode(wire) + decoder.flush()
    reference = samples(resample(resample(speech.pcm, 16_000, 8_000), 8_000, 16_000))
    if fmt.encoding is Encoding.PCM16:
        reference = samples(speech.pcm)
    assert correlation(samples(back), reference) > 0.98


@pytest.mark.parametrize("fmt", [ULAW_8K, ALAW_8K])
def test_a_tone_keeps_its_pitch_through_g711_out_and_back(fmt: WireFormat) -> None:
    t = np.arange(22_050) / 22_050
    pcm = (np.sin(2 * np.pi * 1_000 * t) * 8_000).astype("<i2").tobytes()
    encoder = OutputEncoder(fmt, source_rate=22_050)
    wire = encoder.encode(AudioChunk(pcm, 22_050)) + encoder.flush()
    decoder = InputDecoder(fmt)
    back = decoder.decode(wire) + decoder.flush()
    assert peak_frequency(back, 16_000) == pytest.approx(1_000, abs=2)


def test_output_encoder_flush_readies_it_for_the_next_reply(speech: AudioChunk) -> None:
    encoder = OutputEncoder(ULAW_8K, source_rate=16_000)
    first = encoder.encode(speech) + encoder.flush()
    assert encoder.encode(speech) + encoder.flush() == first


def test_output_encoder_refuses_a_chunk_at_another_rate(speech: AudioChunk) -> None:
    encoder = OutputEncoder(PCM16_24K, source_rate=22_050)
    with pytest.raises(ValueError, match="22050"):
        encoder.encode(speech)
