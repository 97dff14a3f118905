"""What the admin page shows of a live Realtime session, kept current from its events."""

from __future__ import annotations

from voxdialog.live import LiveSession
from voxdialog.pipeline.events import (
    ResponseAudio,
    ResponseEnded,
    ResponseStarted,
    SessionEvent,
    SpeechStarted,
)


def track(live: LiveSession, event: SessionEvent) -> bool:
    """Update state, turn count and last turn latency from one pipeline event.

    Returns:
        Whether the state or the turn count changed (what other workers are told of).
    """
    before = (live.state, live.turns)
    match event:
        case SpeechStarted():
            live.state = "hearing"
        case ResponseStarted():
            live.state = "thinking"
        case ResponseAudio():
            live.state = "speaking"
        case ResponseEnded(item=item):
            live.state = "listening"
            live.turns += 1
            latency = item.timings.get("end_of_speech_to_first_audio_ms")
            if latency is not None:
                live.last_turn_ms = latency
    return (live.state, live.turns) != before
