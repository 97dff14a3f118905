"""FLAC from ``/v1/audio/speech`` carries a filled-in STREAMINFO, which libsndfile needs."""

import io
from dataclasses import dataclass
from pathlib import Path

import av
import pytest

from voxdialog.audio.codecs import StreamEncoder, encode_file
from voxdialog.audio.formats import AudioChunk
from voxdialog.audio.wav import read_wav

DATA = Path(__file__).resolve().parents[3] / ".." / "shared" / "data"
SPEECH = DATA / "speech" / "librispeech_test_other" / "367-130732-0001.wav"  # 4.4 s


@dataclass(frozen=True)
class StreamInfo:
    min_block: int
    max_block: int
    min_frame: int
    max_frame: int
    sample_rate: int
    channels: int
    bits_per_sample: int
    total_samples: int


def stream_info(data: bytes) -> StreamInfo:
    """Read the STREAMINFO block, which the FLAC format puts first, right after ``fLaC``."""
    assert data[:4] == b"fLaC"
    block_type, length = data[4] & 0x7F, int.from_bytes(data[5:8], "big")
    assert (block_type, length) == (0, 34)
    body = data[8:42]
    packed = int.from_bytes(body[10:18], "big")  # rate 20, channels-1 3, bps-1 5, samples 36
    return StreamInfo(
        min_block=int.from_bytes(body[0:2], "big"),
        max_block=int.from_bytes(body[2:4], "big"),
        min_frame=int.from_bytes(body[4:7], "big"),
        max_frame=int.from_bytes(body[7:10], "big"),
        sample_rate=packed >> 44,
        channels=((packed >> 41) & 0x7) + 1,
        bits_per_sample=((packed >> 36) & 0x1F) + 1,
        total_samples=packed & ((1 << 36) - 1),
    )


def decoded_samples(data: bytes) -> int:
    with av.open(io.BytesIO(data), "r", format="flac") as inp:
        return sum(frame.samples for frame in inp.decode(audio=0))


@pytest.fixture(scope="module")
def speech() -> AudioChunk:
    return read_wav(SPEECH.read_bytes())


def streamed_like_the_speech_route(speech: AudioChunk) -> bytes:
    """Feed the encoder 100 ms at a time, as synthesis hands the route its audio."""
    encoder = StreamEncoder("flac", sample_rate=speech.sample_rate)
    step = speech.sample_rate // 10 * 2
    pieces = [
        encoder.encode(AudioChunk(speech.pcm[i : i + step], speech.sample_rate))
        for i in range(0, len(speech.pcm), step)
    ]
    return b"".join(pieces) + encoder.finish()


@pytest.mark.parametrize("how", ["streamed", "whole"])
def test_flac_streaminfo_states_the_sample_count_and_frame_sizes(
    speech: AudioChunk, how: str
) -> None:
    data = (
        streamed_like_the_speech_route(speech) if how == "streamed" else encode_file(speech, "flac")
    )
    info = stream_info(data)
    assert (info.sample_rate, info.channels, info.bits_per_sample) == (24_000, 1, 16)
    decoded = decoded_samples(data)
    assert decoded == pytest.approx(speech.samples * 24_000 / speech.sample_rate, abs=24)
    assert info.total_samples == decoded
    assert 0 < info.min_frame <= info.max_frame < len(data)
    assert 0 < info.min_block <= info.max_block


def test_flac_comes_out_whole_at_the_end(speech: AudioChunk) -> None:
    # The header is only right once every frame is written, so nothing goes out before.
    encoder = StreamEncoder("flac", sample_rate=speech.sample_rate)
    assert encoder.encode(speech) == b""
    data = encoder.finish()
    assert stream_info(data).total_samples == decoded_samples(data)
    assert encoder.finish() == b""
