"""Audio files: uploads decoded (WAV here, allowlisted codecs by FFmpeg), speech encoded."""

from __future__ import annotations

import io
from collections.abc import Iterator
from dataclasses import dataclass

import av
import numpy as np

from voxdialog.audio.errors import AudioDecodeError, AudioError, AudioTooLarge
from voxdialog.audio.errors import UnsupportedAudioFormat as _Unsupported
from voxdialog.audio.formats import PIPELINE_RATE, SAMPLE_WIDTH, AudioChunk
from voxdialog.audio.resample import Resampler
from voxdialog.audio.wav import parse_wav, wav_header, wav_pieces

#: Media type of each output format of ``/v1/audio/speech``.
CONTENT_TYPES: dict[str, str] = {
    "mp3": "audio/mpeg",
    "opus": "audio/ogg",
    "aac": "audio/aac",
    "flac": "audio/flac",
    "wav": "audio/wav",
    "pcm": "audio/pcm",
}

#: Rate of the raw formats, as OpenAI sends them.
SPEECH_RATE = 24_000

#: The FFmpeg decoders uploads may reach: the codecs of the formats the transcription API
#: promises (MP3 and MPEG audio, AAC, Opus, Vorbis, FLAC) and plain PCM and G.711 inside
#: those containers. Everything else FFmpeg could decode (ADPCM, ALAC, AC-3, speech codecs,
#: video, ...) is refused before it runs: each decoder is attack surface run in-process.
ALLOWED_DECODERS = frozenset(
    {
        "mp3float",
        "mp3",
        "mp2float",
        "mp2",
        "aac",
        "aac_fixed",
        "opus",
        "libopus",
        "vorbis",
        "libvorbis",
        "flac",
        "pcm_mulaw",
        "pcm_alaw",
        "pcm_u8",
        "pcm_s8",
        *(
            f"pcm_{kind}{end}"
            for kind in ("s16", "s24", "s32", "f32", "f64")
            for end in ("le", "be")
        ),
    }
)
_WHITELIST = ",".join(sorted(ALLOWED_DECODERS))
# Raw MP3/ADTS and MPEG program streams have no duration field: FFmpeg estimates one from
# the bit rate, which a variable-rate file can make far off. Those are limited while decoding.
_GUESSED_DURATION = frozenset({"mp3", "aac", "mpeg"})
# Encoder delay and padding (MP4's AAC priming, Opus pre-skip) make a stated duration run a
# little past the samples actually decoded; a file at the limit must not be refused for it.
_DECLARED_SLACK_S = 0.5


@dataclass(frozen=True, slots=True)
class _Recipe:
    container: str
    encoders: tuple[str, ...]  # first one this FFmpeg build has wins
    rate: int
    bit_rate: int | None
    options: dict[str, str]
    # The muxer fills in its header only at the end, by seeking back (FLAC's STREAMINFO:
    # sample count, frame sizes): the file is written to memory and handed out whole.
    whole: bool = False


_RECIPES: dict[str, _Recipe] = {
    # No ID3 tag: it would only say "Lavf" and the FFmpeg version.
    "mp3": _Recipe("mp3", ("libmp3lame", "libshine"), SPEECH_RATE, 64_000, {"id3v2_version": "0"}),
    # Ogg pages close every 1 s by default; 200 ms keeps streamed speech starting promptly.
    "opus": _Recipe("ogg", ("libopus",), 48_000, 32_000, {"page_duration": "200000"}),
    "aac": _Recipe("adts", ("aac",), SPEECH_RATE, 64_000, {}),
    # Streamed, STREAMINFO would say 0 samples and 0 frame sizes, which libsndfile refuses.
    "flac": _Recipe("flac", ("flac",), SPEECH_RATE, None, {}, whole=True),
}


def _sniff(data: bytes) -> str | None:
    """Name the FFmpeg demuxer for ``data`` from its magic bytes, or None if we do not take it.

    Naming the demuxer, instead of letting FFmpeg probe, keeps uploads away from demuxers
    that open other files or URLs (HLS, concat, ...).
    """
    head = data[:12]
    if head[:4] == b"RIFF" and head[8:12] == b"WAVE":
        return "wav"
    if head[:4] == b"fLaC":
        return "flac"
    if head[:4] == b"OggS":
        return "ogg"
    if head[:4] == b"\x1a\x45\xdf\xa3":
        return "matroska"  # also WebM
    if head[4:8] in (b"ftyp", b"moov"):
        return "mp4"  # also M4A, MOV, 3GP
    if head[:4] == b"FORM" and head[8:12] in (b"AIFF", b"AIFC"):
        return "aiff"
    if head[:4] == b"\x00\x00\x01\xba":
        return "mpeg"
    start = 0
    if head[:3] == b"ID3" and len(head) >= 10:
        # An ID3v2 tag may precede MP3 or ADTS frames; its size is four 7-bit bytes.
        start = 10 + sum((b & 0x7F) << (7 * (3 - i)) for i, b in enumerate(head[6:10]))
    sync = data[start : start + 2]
    if len(sync) == 2 and sync[0] == 0xFF and sync[1] & 0xE0 == 0xE0:
        return "aac" if sync[1] & 0x06 == 0 else "mp3"  # layer bits 00 mean ADTS
    return None


def decode_file(
    data: bytes, *, max_bytes: int, max_seconds: float, target_rate: int = PIPELINE_RATE
) -> AudioChunk:
    """Decode an uploaded audio file to mono PCM16.

    Takes WAV (PCM, float, μ-law, A-law; read here, never by FFmpeg), MP3, FLAC, Ogg (Opus,
    Vorbis, FLAC), WebM/Matroska, MP4/M4A, ADTS AAC, AIFF and MPEG program streams; the first
    audio stream is used. Only the codecs in ``ALLOWED_DECODERS`` are decoded: a container
    holding any other (ADPCM, ALAC, AC-3, ...) is refused before a packet is decoded. A
    duration the header states (WAV always; FLAC, Ogg, Matroska, MP4 when they say it) is
    checked before decoding, and decoding stops as soon as the limit is passed, so memory
    stays bounded by the limit rather than by the file. Blocking: call it through
    ``asyncio.to_thread``.

    Args:
        data: The whole file.
        max_bytes: Largest file accepted; checked before any decoding.
        max_seconds: Longest audio accepted.
        target_rate: Rate of the returned audio.

    Returns:
        The audio at ``target_rate``.

    Raises:
        AudioTooLarge: The file or its audio is over a limit.
        UnsupportedAudioFormat: A file we recognise, in an encoding we do not decode.
        AudioDecodeError: The file is empty, not audio, malformed, or holds no samples.
    """
    if len(data) > max_bytes:
        raise AudioTooLarge(limit=max_bytes, exceeded="bytes")
    container = _sniff(data)
    if container is None:
        raise AudioDecodeError("unsupported or unrecognised audio file")
    if container == "wav":
        return _decode_wav(data, max_seconds=max_seconds, target_rate=target_rate)
    return _decode_av(data, container, max_seconds=max_seconds, target_rate=target_rate)


def _decode_wav(data: bytes, *, max_seconds: float, target_rate: int) -> AudioChunk:
    layout = parse_wav(data)
    if layout.duration_s > max_seconds:
        raise AudioTooLarge(limit=max_seconds, exceeded="seconds")
    if layout.frames == 0:
        raise AudioDecodeError("audio file contains no audio")
    resampler = Resampler(layout.sample_rate, target_rate)
    pcm = bytearray()
    for piece in wav_pieces(data, layout):
        pcm += resampler.process(piece)
    pcm += resampler.flush()
    if not pcm:  # a few frames at a high rate resample to nothing
        raise AudioDecodeError("audio file contains no audio")
    return AudioChunk(bytes(pcm), target_rate)


def _decode_av(data: bytes, container: str, *, max_seconds: float, target_rate: int) -> AudioChunk:
    limit = int(max_seconds * target_rate) * SAMPLE_WIDTH
    pcm = bytearray()
    try:
        with av.open(
            io.BytesIO(data),
            "r",
            format=container,
            # Probing the streams opens their decoders: only ours may be opened, even there.
            container_options={"codec_whitelist": _WHITELIST},
            metadata_errors="replace",
        ) as inp:
            if not inp.streams.audio:
                raise AudioDecodeError("file has no audio stream")
            stream = inp.streams.audio[0]
            if stream.codec_context.name not in ALLOWED_DECODERS:
                raise _Unsupported(f"unsupported audio codec in {container} file")
            declared = _declared_seconds(inp, stream, container)
            if declared is not None and declared > max_seconds + _DECLARED_SLACK_S:
                raise AudioTooLarge(limit=max_seconds, exceeded="seconds")
            for frame in _mono(_decoded(inp, stream), rate=target_rate):
                pcm += frame.to_ndarray().tobytes()
                if len(pcm) > limit:
                    raise AudioTooLarge(limit=max_seconds, exceeded="seconds")
    except AudioError:
        raise
    except Exception as e:
        # FFmpeg's failures surface as av.error.FFmpegError subclasses but also as ValueError,
        # OSError, UnicodeError and friends; for an untrusted upload each one means the same.
        raise AudioDecodeError("could not decode audio file") from e
    if not pcm:
        raise AudioDecodeError("audio file contains no audio")
    return AudioChunk(bytes(pcm), target_rate)


def _declared_seconds(
    inp: av.container.InputContainer, stream: av.AudioStream, container: str
) -> float | None:
    """The duration the file's header states, or None where FFmpeg would only be guessing."""
    if container in _GUESSED_DURATION:
        return None
    if stream.duration is not None and stream.time_base is not None:
        return float(stream.duration * stream.time_base)
    if inp.duration is not None:
        return float(inp.duration) / av.time_base
    return None


def _decoded(inp: av.container.InputContainer, stream: av.AudioStream) -> Iterator[av.AudioFrame]:
    """Decode a stream, skipping packets FFmpeg cannot decode, as its command line does."""
    for packet in inp.demux(stream):
        try:
            frames = packet.decode()
        except av.error.FFmpegError:
            continue  # a damaged packet; a file with no good ones ends up with no samples
        for frame in frames:
            if isinstance(frame, av.AudioFrame):
                yield frame


def _mono(frames: Iterator[av.AudioFrame], *, rate: int) -> Iterator[av.AudioFrame]:
    """Convert frames to mono s16 at ``rate``, following any mid-stream change of input shape."""
    resampler: av.AudioResampler | None = None
    shape: tuple[str, str, int] | None = None
    for frame in frames:
        frame_shape = (frame.format.name, frame.layout.name, frame.sample_rate)
        if resampler is None or frame_shape != shape:
            if resampler is not None:
                yield from resampler.resample(None)
            resampler = av.AudioResampler(format="s16", layout="mono", rate=rate)
            shape = frame_shape
        yield from resampler.resample(frame)
    if resampler is not None:
        yield from resampler.resample(None)


class _Sink:
    """A write-only file for PyAV that hands back what was written since the last drain.

    Having no ``seek`` tells the muxers to stream (no header rewrite at the end).
    """

    def __init__(self) -> None:
        self._buf = bytearray()

    def write(self, data: bytes) -> int:
        self._buf += data
        return len(data)

    def drain(self) -> bytes:
        out = bytes(self._buf)
        self._buf.clear()
        return out


class StreamEncoder:
    """Encodes one reply's PCM into an audio file, chunk by chunk, as it is synthesised.

    Blocking: call ``encode`` and ``finish`` through ``asyncio.to_thread`` for the lossy formats.
    FLAC is the exception to "as it is synthesised": its header needs the whole reply, so
    ``encode`` returns nothing and ``finish`` returns the complete file.
    """

    def __init__(self, fmt: str, *, sample_rate: int) -> None:
        """Create the encoder.

        Args:
            fmt: One of ``CONTENT_TYPES``: mp3, opus, aac, flac, wav or pcm.
            sample_rate: Rate of the PCM that will be passed in.

        Raises:
            ValueError: The format is unknown, or this FFmpeg build cannot encode it.
        """
        if fmt not in CONTENT_TYPES:
            raise ValueError(f"unsupported audio format {fmt!r}")
        self.fmt = fmt
        self.sample_rate = sample_rate
        self.content_type = CONTENT_TYPES[fmt]
        recipe = _RECIPES.get(fmt)
        self.output_rate = recipe.rate if recipe else SPEECH_RATE
        self._resampler = Resampler(sample_rate, self.output_rate)
        self._pending = wav_header(self.output_rate) if fmt == "wav" else b""
        self._finished = False
        self._sink = _Sink()
        self._whole: io.BytesIO | None = None
        self._out: av.container.OutputContainer | None = None
        self._stream: av.AudioStream | None = None
        if recipe is not None:
            self._open(recipe)

    def _open(self, recipe: _Recipe) -> None:
        codec = next((c for c in recipe.encoders if c in av.codecs_available), None)
        if codec is None:
            raise ValueError(f"this FFmpeg build cannot encode {self.fmt}")
        if recipe.whole:
            self._whole = io.BytesIO()  # seekable: the muxer rewrites the header at the end
        target = self._whole if self._whole is not None else self._sink
        out = av.open(target, "w", format=recipe.container, options=recipe.options)
        stream = out.add_stream(codec, rate=recipe.rate, layout="mono")
        if not isinstance(stream, av.AudioStream):
            raise TypeError(f"{codec} is not an audio encoder")
        if recipe.bit_rate is not None:
            stream.bit_rate = recipe.bit_rate
        self._out, self._stream = out, stream

    def encode(self, chunk: AudioChunk) -> bytes:
        """Add audio; return the container bytes that are ready (possibly none yet).

        Raises:
            ValueError: The chunk is not at ``sample_rate``, or ``finish`` was called.
        """
        if chunk.sample_rate != self.sample_rate:
            raise ValueError(f"chunk is at {chunk.sample_rate} Hz, expected {self.sample_rate}")
        if self._finished:
            raise ValueError("encoder is finished")
        return self._emit(self._resampler.process(chunk.pcm), last=False)

    def finish(self) -> bytes:
        """End the file and return its last bytes; later calls return nothing."""
        if self._finished:
            return b""
        self._finished = True
        return self._emit(self._resampler.flush(), last=True)

    def close(self) -> None:
        """Abandon the file (e.g. the client went away), releasing FFmpeg's resources."""
        if not self._finished:
            self._finished = True
            if self._out is not None:
                self._out.close()

    def _emit(self, pcm: bytes, *, last: bool) -> bytes:
        head, self._pending = self._pending, b""
        if self._out is None or self._stream is None:
            return head + pcm
        if pcm:
            samples = np.frombuffer(pcm, dtype="<i2").reshape(1, -1)
            frame = av.AudioFrame.from_ndarray(samples, format="s16", layout="mono")
            frame.sample_rate = self.output_rate
            self._out.mux(self._stream.encode(frame))
        if last:
            self._out.mux(self._stream.encode(None))
            self._out.close()
            if self._whole is not None:
                return head + self._whole.getvalue()
        return head + self._sink.drain()


def encode_file(chunk: AudioChunk, fmt: str) -> bytes:
    """Encode a whole clip in one of ``CONTENT_TYPES``' formats (see ``StreamEncoder``)."""
    encoder = StreamEncoder(fmt, sample_rate=chunk.sample_rate)
    return encoder.encode(chunk) + encoder.finish()
