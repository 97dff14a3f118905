"""Output audio on the wire: one track per response, owning its encoder.

The encoder (resampler, G.711) is fixed for the response's lifetime, even if the client
changes the output format meanwhile; its audio goes out in deltas of at most half a second.
"""

from __future__ import annotations

from voxdialog.audio.formats import AudioChunk, WireFormat
from voxdialog.audio.wire import OutputEncoder

_DELTA_MS = 500


class OutputTrack:
    """One response's audio: encoded to the wire format, cut into deltas."""

    def __init__(self, fmt: WireFormat, *, source_rate: int, delta_ms: int = _DELTA_MS) -> None:
        self._encoder = OutputEncoder(fmt, source_rate=source_rate)
        size = fmt.bytes_per_ms * delta_ms
        self._delta_bytes = max(2, size - size % 2)

    def deltas(self, chunk: AudioChunk) -> list[bytes]:
        """The chunk, encoded, as the deltas to send (at least one, maybe empty)."""
        data = self._encoder.encode(chunk)
        step = self._delta_bytes
        return [data[i : i + step] for i in range(0, len(data), step)] or [b""]

    def flush(self) -> bytes:
        """The few milliseconds the resampler still holds (sent before the response ends)."""
        return self._encoder.flush()


class OutputTracks:
    """The tracks of a connection's responses, by response id."""

    def __init__(self) -> None:
        self._tracks: dict[str, OutputTrack] = {}

    def deltas(self, response_id: str, chunk: AudioChunk, fmt: WireFormat) -> list[bytes]:
        """Encode a response's chunk (its first chunk opens the track in ``fmt``)."""
        track = self._tracks.get(response_id)
        if track is None:
            track = self._tracks[response_id] = OutputTrack(fmt, source_rate=chunk.sample_rate)
        return track.deltas(chunk)

    def close(self, response_id: str) -> bytes:
        """End a response's track; returns what its encoder still held."""
        track = self._tracks.pop(response_id, None)
        return track.flush() if track is not None else b""
