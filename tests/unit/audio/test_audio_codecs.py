import io
import struct
from pathlib import Path
from typing import Any

import av
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from voxdialog.audio.codecs import CONTENT_TYPES, StreamEncoder, decode_file, encode_file
from voxdialog.audio.errors import AudioDecodeError, AudioError, AudioTooLarge
from voxdialog.audio.formats import AudioChunk
from voxdialog.audio.g711 import ulaw_encode
from voxdialog.audio.resample import resample
from voxdialog.audio.wav import read_wav, wav_header, write_wav

DATA = Path(__file__).resolve().parents[3] / ".." / "shared" / "data"
SPEECH = DATA / "speech" / "librispeech_test_other" / "367-130732-0001.wav"  # 4.4 s
LONG_SPEECH = DATA / "speech" / "misc" / "jfk.wav"  # 11 s
COMPRESSED = ["mp3", "opus", "aac", "flac"]
BIG = 100_000_000


@pytest.fixture(scope="module")
def speech() -> AudioChunk:
    return read_wav(SPEECH.read_bytes())


@pytest.fixture(scope="module")
def long_mp3() -> bytes:
    return encode_file(read_wav(LONG_SPEECH.read_bytes()), "mp3")


def samples(data: bytes) -> np.ndarray:
    return np.frombuffer(data, dtype="<i2").astype(np.float64)


def aligned_correlation(
    reference: np.ndarray, decoded: np.ndarray, *, max_lag: int = 4_000
) -> float:
    """Correlation after undoing the codec's delay (MP3 and AAC prepend encoder padding)."""
    size = 1 << (len(reference) + len(decoded)).bit_length()
    cross = np.fft.irfft(np.fft.rfft(decoded, size) * np.conj(np.fft.rfft(reference, size)), size)
    lag = int(np.argmax(cross[:max_lag]))
    shifted = decoded[lag:]
    n = min(len(shifted), len(reference))
    return float(np.corrcoef(reference[:n], shifted[:n])[0, 1])


def stereo_flac(seconds: float, rate: int = 44_100) -> bytes:
    """A stereo FLAC written by PyAV directly, unlike anything StreamEncoder makes."""
    out = io.BytesIO()
    t = np.arange(int(seconds * rate)) / rate
    left = np.sin(2 * np.pi * 440 * t) * 8_000
    frames = np.stack([left, left]).astype(np.int16)
    with av.open(out, "w", format="flac") as container:
        stream = container.add_stream("flac", rate=rate, layout="stereo")
        frame = av.AudioFrame.from_ndarray(
            frames.T.reshape(1, -1).copy(), format="s16", layout="stereo"
        )
        frame.sample_rate = rate
        container.mux(stream.encode(frame))
        container.mux(stream.encode(None))
    return out.getvalue()


@pytest.mark.parametrize("fmt", [*COMPRESSED, "wav"])
def test_each_format_survives_encode_then_decode(speech: AudioChunk, fmt: str) -> None:
    decoded = decode_file(encode_file(speech, fmt), max_bytes=BIG, max_seconds=60)
    assert decoded.sample_rate == 16_000
    assert decoded.duration_ms == pytest.approx(speech.duration_ms, rel=0.05)
    # MP3 and AAC at 64 kbit/s reach 0.94 on this noisy recording and above 0.98 on clean speech.
    assert aligned_correlation(samples(speech.pcm), samples(decoded.pcm)) > 0.9


@pytest.mark.parametrize(
    ("fmt", "magic"),
    [
        ("opus", b"OggS"),
        ("flac", b"fLaC"),
        ("wav", b"RIFF"),
        ("aac", b"\xff\xf1"),
        ("mp3", b"\xff\xf3"),
    ],
)
def test_each_format_is_the_container_its_content_type_promises(
    speech: AudioChunk, fmt: str, magic: bytes
) -> None:
    data = encode_file(speech, fmt)
    assert data.startswith(magic)
    if fmt == "opus":
        assert b"OpusHead" in data[:100]
    assert StreamEncoder(fmt, sample_rate=16_000).content_type == CONTENT_TYPES[fmt]


# FLAC is handed out whole at the end, its header filled in (test_audio_flac_header.py).
@pytest.mark.parametrize("fmt", ["mp3", "opus", "aac"])
def test_streamed_encoding_hands_out_bytes_before_the_end(speech: AudioChunk, fmt: str) -> None:
    encoder = StreamEncoder(fmt, sample_rate=16_000)
    step = 3_200  # 100 ms
    early = [
        encoder.encode(AudioChunk(speech.pcm[i : i + step], 16_000))
        for i in range(0, len(speech.pcm), step)
    ]
    tail = encoder.finish()
    assert sum(map(len, early)) > len(tail)
    assert encoder.finish() == b""
    decoded = decode_file(b"".join(early) + tail, max_bytes=BIG, max_seconds=60)
    assert decoded.duration_ms == pytest.approx(speech.duration_ms, rel=0.05)


def test_an_abandoned_encoder_can_be_closed_and_then_gives_nothing(speech: AudioChunk) -> None:
    encoder = StreamEncoder("opus", sample_rate=16_000)
    encoder.encode(speech)
    encoder.close()
    assert encoder.finish() == b""
    with pytest.raises(ValueError, match="finished"):
        encoder.encode(speech)


def test_pcm_output_is_raw_24k_samples(speech: AudioChunk) -> None:
    data = encode_file(speech, "pcm")
    assert abs(len(data) // 2 - speech.samples * 24_000 / 16_000) <= 2
    expected = samples(resample(speech.pcm, 16_000, 24_000))
    assert aligned_correlation(expected, samples(data), max_lag=10) > 0.999


def test_wav_output_is_24k_behind_a_streaming_header(speech: AudioChunk) -> None:
    data = encode_file(speech, "wav")
    assert data.startswith(wav_header(24_000))
    clip = read_wav(data)
    assert clip.sample_rate == 24_000
    assert clip.duration_ms == pytest.approx(speech.duration_ms, abs=1)


def test_encoding_refuses_unknown_formats_and_wrong_rates(speech: AudioChunk) -> None:
    with pytest.raises(ValueError, match="ogg"):
        StreamEncoder("ogg", sample_rate=16_000)
    encoder = StreamEncoder("mp3", sample_rate=22_050)
    with pytest.raises(ValueError, match="22050"):
        encoder.encode(speech)


def test_encoding_after_finish_is_refused(speech: AudioChunk) -> None:
    encoder = StreamEncoder("flac", sample_rate=16_000)
    encoder.finish()
    with pytest.raises(ValueError, match="finished"):
        encoder.encode(speech)


def test_stereo_44k_is_mixed_down_to_mono_at_the_target_rate() -> None:
    decoded = decode_file(stereo_flac(1.5), max_bytes=BIG, max_seconds=60, target_rate=24_000)
    assert decoded.sample_rate == 24_000
    assert decoded.duration_ms == pytest.approx(1_500, abs=5)
    spectrum = np.abs(np.fft.rfft(samples(decoded.pcm)))
    assert np.fft.rfftfreq(decoded.samples, 1 / 24_000)[np.argmax(spectrum)] == pytest.approx(
        440, abs=2
    )


def test_a_g711_wav_decodes_to_the_same_audio(speech: AudioChunk) -> None:
    narrow = resample(speech.pcm, 16_000, 8_000)
    codes = ulaw_encode(narrow)
    fmt = struct.pack("<HHIIHH", 7, 1, 8_000, 8_000, 1, 8)
    body = b"fmt " + struct.pack("<I", 16) + fmt + b"data" + struct.pack("<I", len(codes)) + codes
    data = b"RIFF" + struct.pack("<I", 4 + len(body)) + b"WAVE" + body
    decoded = decode_file(data, max_bytes=BIG, max_seconds=60)
    assert decoded.duration_ms == pytest.approx(speech.duration_ms, abs=5)
    assert (
        aligned_correlation(samples(resample(narrow, 8_000, 16_000)), samples(decoded.pcm)) > 0.99
    )


def test_a_file_over_the_byte_limit_is_refused_before_decoding() -> None:
    with pytest.raises(AudioTooLarge) as caught:
        decode_file(b"\x00" * 1_001, max_bytes=1_000, max_seconds=60)  # garbage: never decoded
    assert (caught.value.exceeded, caught.value.limit) == ("bytes", 1_000)


def test_a_file_at_the_byte_limit_is_accepted(speech: AudioChunk) -> None:
    data = write_wav(speech)
    assert decode_file(data, max_bytes=len(data), max_seconds=60).samples == speech.samples


def test_a_wav_over_the_duration_limit_is_refused() -> None:
    with pytest.raises(AudioTooLarge) as caught:
        decode_file(LONG_SPEECH.read_bytes(), max_bytes=BIG, max_seconds=10)
    assert (caught.value.exceeded, caught.value.limit) == ("seconds", 10)


def test_a_compressed_file_over_the_duration_limit_stops_decoding_early(
    long_mp3: bytes, monkeypatch: pytest.MonkeyPatch
) -> None:
    resampled: list[int] = []
    real = av.AudioResampler

    class CountingResampler:
        def __init__(self, **kwargs: Any) -> None:
            self._inner = real(**kwargs)

        def resample(self, frame: Any) -> list[Any]:
            out = self._inner.resample(frame)
            resampled.extend(f.samples for f in out)
            return out

    monkeypatch.setattr(av, "AudioResampler", CountingResampler)
    with pytest.raises(AudioTooLarge) as caught:
        decode_file(long_mp3, max_bytes=BIG, max_seconds=2)
    assert caught.value.exceeded == "seconds"
    assert 2 * 16_000 < sum(resampled) < 3 * 16_000  # of 11 s in the file


def test_a_compressed_file_under_the_duration_limit_is_whole(long_mp3: bytes) -> None:
    decoded = decode_file(long_mp3, max_bytes=BIG, max_seconds=12)
    assert decoded.duration_ms == pytest.approx(11_000, rel=0.05)


@pytest.mark.parametrize("fmt", COMPRESSED)
@pytest.mark.parametrize("fill", [0x00, 0xFF])
def test_a_file_damaged_in_the_middle_still_decodes_nearly_whole(
    speech: AudioChunk, fmt: str, fill: int
) -> None:
    data = bytearray(encode_file(speech, fmt))
    middle = len(data) // 2
    data[middle : middle + 300] = bytes([fill]) * 300
    decoded = decode_file(bytes(data), max_bytes=BIG, max_seconds=60)
    assert decoded.duration_ms == pytest.approx(speech.duration_ms, rel=0.1)


@pytest.mark.parametrize(
    "data",
    [
        pytest.param(b"", id="empty"),
        pytest.param(bytes(range(256)) * 8, id="garbage"),
        pytest.param(b"#EXTM3U\n#EXTINF:1,\nfile:///etc/passwd\n", id="hls-playlist"),
        pytest.param(b"ffconcat version 1.0\nfile /etc/passwd\n", id="concat-list"),
        pytest.param(b"OggS" + b"\x00" * 100, id="ogg-header-only"),
        pytest.param(b"fLaC" + b"\xff" * 100, id="flac-garbage"),
        pytest.param(b"ID3\x04\x00\x00\x00\x00\x00\x10" + b"\x00" * 16, id="id3-tag-only"),
        pytest.param(b"\x00\x00\x00\x18ftypM4A " + b"\x00" * 40, id="mp4-without-boxes"),
        pytest.param(b"\x1a\x45\xdf\xa3" + b"\x00" * 64, id="webm-garbage"),
        pytest.param(wav_header(16_000, 0), id="wav-without-samples"),
        pytest.param(wav_header(16_000, 32_000) + b"\x00" * 100, id="wav-lying-length"),
    ],
)
def test_undecodable_input_raises_a_decode_error(data: bytes) -> None:
    with pytest.raises(AudioDecodeError):
        decode_file(data, max_bytes=BIG, max_seconds=60)


@pytest.mark.parametrize("fmt", [*COMPRESSED, "wav"])
def test_a_file_cut_inside_its_header_raises_a_decode_error(speech: AudioChunk, fmt: str) -> None:
    data = encode_file(AudioChunk(speech.pcm[:32_000], 16_000), fmt)
    with pytest.raises(AudioDecodeError):
        decode_file(data[:30], max_bytes=BIG, max_seconds=60)


@pytest.fixture(scope="module")
def seeds(speech: AudioChunk) -> list[bytes]:
    one_second = AudioChunk(speech.pcm[:32_000], 16_000)
    return [encode_file(one_second, fmt) for fmt in [*COMPRESSED, "wav"]]


MAGICS = [
    b"",
    b"RIFF\x00\x00\x00\x00WAVE",
    b"OggS",
    b"fLaC",
    b"ID3",
    b"\xff\xfb",
    b"\xff\xf1",
    b"\x1a\x45\xdf\xa3",
    b"\x00\x00\x00\x18ftypmp42",
]


@settings(max_examples=200, deadline=None)
@given(data=st.data())
def test_random_and_mutated_files_only_ever_raise_audio_errors(
    seeds: list[bytes], data: st.DataObject
) -> None:
    if data.draw(st.booleans(), label="mutate a real file"):
        blob = bytearray(data.draw(st.sampled_from(seeds)))
        header_edits = st.tuples(st.integers(0, 120), st.integers(0, 255))
        body_edits = st.tuples(st.integers(0, len(blob) - 1), st.integers(0, 255))
        for pos, value in data.draw(st.lists(header_edits | body_edits, max_size=8)):
            blob[pos] = value
        blob = blob[: data.draw(st.integers(0, len(blob)))]
    else:
        blob = bytearray(data.draw(st.sampled_from(MAGICS)) + data.draw(st.binary(max_size=3_000)))
    try:
        decoded = decode_file(bytes(blob), max_bytes=BIG, max_seconds=5)
    except AudioError:
        return
    assert decoded.sample_rate == 16_000
    assert decoded.samples > 0
