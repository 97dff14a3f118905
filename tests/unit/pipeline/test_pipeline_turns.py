from voxdialog.pipeline.turns import (
    SilenceBegan,
    SpeechResumed,
    SpeechStarted,
    TurnConfig,
    TurnDetector,
    TurnEnded,
)

FRAME_MS = 32
FRAME = b"\x01\x00" * 512


def feed(detector: TurnDetector, pattern: list[tuple[float, int]]) -> list[tuple[int, object]]:
    """Feed (probability, milliseconds) runs; return (audio time, event) pairs."""
    out: list[tuple[int, object]] = []
    for probability, ms in pattern:
        for _ in range(ms // FRAME_MS):
            for event in detector.push(FRAME, probability):
                out.append((detector.now_ms, event))
    return out


def make(**changes: int) -> TurnDetector:
    return TurnDetector(TurnConfig(**changes), frame_ms=FRAME_MS, bytes_per_ms=32)


def test_a_turn_starts_after_min_speech_and_ends_after_the_silence_window() -> None:
    events = feed(make(), [(0.0, 1024), (0.9, 1600), (0.0, 800)])
    kinds = [type(e).__name__ for _, e in events]
    assert kinds == ["SpeechStarted", "SilenceBegan", "TurnEnded"]
    started = events[0][1]
    assert isinstance(started, SpeechStarted)
    assert started.audio_start_ms == 1024 - 300  # onset minus prefix padding
    end_time, ended = events[-1]
    assert isinstance(ended, TurnEnded)
    assert ended.audio_end_ms == 1024 + 1600
    assert end_time - ended.audio_end_ms >= 500
    # The clip holds padding + speech + a short tail: about 300 + 1600 + 150 ms of PCM16.
    assert abs(len(ended.clip) / 32 - (300 + 1600 + 150)) <= FRAME_MS * 2


def test_a_short_noise_is_not_a_turn() -> None:
    events = feed(make(), [(0.0, 640), (0.9, 96), (0.0, 1000)])
    assert events == []


def test_the_cough_guard_needs_longer_speech_while_the_agent_is_audible() -> None:
    detector = make(min_speech_ms=100, interrupt_min_speech_ms=250)
    detector.agent_audible = True
    assert feed(detector, [(0.0, 320), (0.9, 192), (0.0, 640)]) == []
    events = feed(detector, [(0.9, 320)])
    assert [type(e) for _, e in events] == [SpeechStarted]


def test_speech_resuming_inside_the_window_voids_speculation_and_continues_the_turn() -> None:
    events = feed(make(), [(0.9, 640), (0.0, 320), (0.9, 640), (0.0, 700)])
    kinds = [type(e) for _, e in events]
    assert kinds == [SpeechStarted, SilenceBegan, SpeechResumed, SilenceBegan, TurnEnded]
    ended = events[-1][1]
    assert isinstance(ended, TurnEnded)
    assert ended.audio_end_ms == 640 + 320 + 640


def test_the_silence_window_is_settable() -> None:
    detector = make(silence_duration_ms=1000)
    events = feed(detector, [(0.9, 640), (0.0, 800)])
    assert TurnEnded not in [type(e) for _, e in events]
    events = feed(detector, [(0.0, 320)])
    assert [type(e) for _, e in events] == [TurnEnded]


def test_a_turn_is_cut_at_the_maximum_utterance() -> None:
    events = feed(make(max_utterance_ms=2000), [(0.9, 3200)])
    ended = [e for _, e in events if isinstance(e, TurnEnded)]
    assert len(ended) == 1
    assert ended[0].forced


def test_hysteresis_keeps_a_turn_through_probabilities_just_under_the_threshold() -> None:
    events = feed(make(), [(0.9, 640), (0.42, 1000), (0.0, 700)])
    ended = [e for _, e in events if isinstance(e, TurnEnded)]
    assert len(ended) == 1
    assert ended[0].audio_end_ms == 1632
