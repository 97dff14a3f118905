"""Turn latency: recorded speech streamed in real time through a live server.

Starts the server in-process on a free port (temporary data dir), streams WAVs from
../shared/data/speech at real-time pace over /v1/realtime with server VAD, and reports p50/p95
of: VAD cost per frame, end of speech -> transcript, brain first text, TTS first audio,
end of speech -> first reply audio. Writes JSON and Markdown to bench/results/.

    .venv/bin/python -m bench.turn_latency [--clips 12] [--silence-ms 500]
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import csv
import json
import sys
import tempfile
import time
from pathlib import Path

import websockets

from bench.report import write_report
from voxdialog.audio.resample import resample
from voxdialog.db.repos.sessions import list_messages, list_sessions
from voxdialog.providers.local.silero_vad import SileroVAD
from voxdialog.settings import Settings
from voxdialog.testing.server import BackgroundServer, free_port
from voxdialog.testing.signals import load_wav_pcm16

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT.parent / "shared" / "data" / "speech"
CHUNK_MS = 20


def vad_cost_ms(frames: int = 2000) -> list[float]:
    """Per-frame Silero cost over real speech."""
    vad = SileroVAD()
    stream = vad.open_stream(16_000)
    clip = load_wav_pcm16(DATA / "misc" / "jfk.wav").pcm
    frame = 512 * 2
    costs = []
    for n in range(frames):
        offset = (n * frame) % (len(clip) - frame)
        chunk = clip[offset - offset % 2 : offset - offset % 2 + frame]
        t = time.perf_counter()
        stream.speech_probability(chunk)
        costs.append((time.perf_counter() - t) * 1000)
    return costs


def pick_clips(count: int) -> list[Path]:
    """Clear speech of 2-7 s: LibriSpeech test-clean, LJ Speech, JFK."""
    with (DATA / "manifest.csv").open(newline="") as f:
        rows = [
            r
            for r in csv.DictReader(f)
            if r["corpus"].split()[0] in ("LibriSpeech", "LJ", "JFK")
            and 1.5 <= float(r["duration_s"]) <= 11.5
        ]
    rows.sort(key=lambda r: ("test-other" in r["corpus"], r["path"]))
    return [DATA.parent / r["path"] for r in rows[:count]]


async def one_turn(
    ws_url: str, key: str, clip: Path, silence_ms: int, *, partials: bool = False
) -> dict[str, float]:
    """Stream one clip in real time; client-side timings of the turn."""
    pcm = resample(load_wav_pcm16(clip).pcm, 16_000, 24_000)
    marks: dict[str, float] = {}
    async with websockets.connect(
        f"{ws_url}/v1/realtime?model=local-voice",
        additional_headers={"Authorization": f"Bearer {key}"},
        max_size=None,
    ) as ws:
        await ws.send(
            json.dumps(
                {
                    "type": "session.update",
                    "session": {
                        "type": "realtime",
                        "audio": {
                            "input": {
                                "transcription": {"model": "whisper-1"},
                                "turn_detection": {
                                    "type": "server_vad",
                                    "silence_duration_ms": silence_ms,
                                },
                            }
                        },
                        "voxdialog": {"partial_transcripts": partials},
                    },
                }
            )
        )
        step = 24 * 2 * CHUNK_MS
        audio = b"\x00\x00" * 24 * 300 + pcm
        tail = b"\x00\x00" * 24 * (silence_ms + 3000)

        async def send() -> None:
            loop = asyncio.get_running_loop()
            start = loop.time()
            for n, off in enumerate(range(0, len(audio) + len(tail), step)):
                piece = (audio + tail)[off : off + step]
                if off >= len(audio) and "speech_end" not in marks:
                    marks["speech_end"] = time.perf_counter()
                await ws.send(
                    json.dumps(
                        {
                            "type": "input_audio_buffer.append",
                            "audio": base64.b64encode(piece).decode(),
                        }
                    )
                )
                await asyncio.sleep(max(0.0, start + (n + 1) * CHUNK_MS / 1000 - loop.time()))
                if "done" in marks:
                    return

        sender = asyncio.create_task(send())
        async with asyncio.timeout(60):
            async for raw in ws:
                event = json.loads(raw)
                now = time.perf_counter()
                kind = event["type"]
                if kind == "input_audio_buffer.speech_stopped":
                    marks.setdefault("stopped", now)
                elif kind == "conversation.item.input_audio_transcription.completed":
                    marks.setdefault("transcript", now)
                elif kind == "response.output_audio.delta":
                    marks.setdefault("first_audio", now)
                elif kind == "response.done":
                    marks["done"] = now
                    break
        await sender
    end = marks["speech_end"]
    return {
        "speech_stopped_event_ms": (marks["stopped"] - end) * 1000,
        "end_of_speech_to_transcript_ms": (marks["transcript"] - end) * 1000,
        "end_of_speech_to_first_audio_ms": (marks["first_audio"] - end) * 1000,
    }


async def server_timings(settings: Settings) -> dict[str, list[float]]:
    """Per-stage timings the server stored with each assistant message."""
    from voxdialog.db.engine import Database
    from voxdialog.db.repos.accounts import ensure_local_admin

    db = Database(settings.effective_database_url)
    scope = (await ensure_local_admin(db)).scope
    out: dict[str, list[float]] = {}
    for session in await list_sessions(db, scope, limit=1000):
        for message in await list_messages(db, scope, session.id):
            for key, value in (message.timings or {}).items():
                if key != "speculative":
                    out.setdefault(f"{message.role}.{key}", []).append(float(value))
    await db.close()
    return out


def main() -> int:
    """Run the benchmark and write its report."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--clips", type=int, default=12)
    parser.add_argument("--silence-ms", type=int, default=500)
    parser.add_argument(
        "--partials",
        action="store_true",
        help="ask for partial transcripts, as the talk page does (report: turn_latency_partials)",
    )
    args = parser.parse_args()
    settings = Settings(data_dir=Path(tempfile.mkdtemp(prefix="vox-bench-")), port=free_port())
    server = BackgroundServer(settings)
    server.start()
    clips = pick_clips(args.clips)
    samples: dict[str, list[float]] = {}
    try:
        for clip in clips:
            row = asyncio.run(
                one_turn(
                    server.ws_url, server.api_key, clip, args.silence_ms, partials=args.partials
                )
            )
            print(clip.name, {k: round(v) for k, v in row.items()}, file=sys.stderr)
            for name, value in row.items():
                samples.setdefault(name, []).append(value)
    finally:
        server.stop()
    samples["vad_frame_ms"] = vad_cost_ms()
    samples |= asyncio.run(server_timings(settings))
    print(
        write_report(
            "turn_latency_partials" if args.partials else "turn_latency",
            samples,
            silence_ms=args.silence_ms,
            clips=len(clips),
            partial_transcripts=args.partials,
            title=f"silence window {args.silence_ms} ms, {len(clips)} clips"
            + (", partial transcripts on" if args.partials else ""),
        )
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
