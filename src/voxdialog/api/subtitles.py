"""SRT and WebVTT renderings of a transcript."""

from __future__ import annotations

from voxdialog.providers.base import Transcript, TranscriptSegment


def _stamp(seconds: float, sep: str) -> str:
    ms = round(seconds * 1000)
    h, rest = divmod(ms, 3_600_000)
    m, rest = divmod(rest, 60_000)
    s, ms = divmod(rest, 1000)
    return f"{h:02d}:{m:02d}:{s:02d}{sep}{ms:03d}"


def _segments(t: Transcript) -> tuple[TranscriptSegment, ...]:
    if t.segments:
        return t.segments
    return (TranscriptSegment(0.0, t.duration_s, t.text),) if t.text else ()


def to_srt(t: Transcript) -> str:
    """SubRip text."""
    blocks = [
        f"{n}\n{_stamp(s.start, ',')} --> {_stamp(s.end, ',')}\n{s.text.strip()}\n"
        for n, s in enumerate(_segments(t), start=1)
    ]
    return "\n".join(blocks)


def to_vtt(t: Transcript) -> str:
    """WebVTT text."""
    blocks = [
        f"{_stamp(s.start, '.')} --> {_stamp(s.end, '.')}\n{s.text.strip()}\n" for s in _segments(t)
    ]
    return "WEBVTT\n\n" + "\n".join(blocks)
