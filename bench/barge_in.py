"""Barge-in latency: speech onset while the agent is answering -> response.done "cancelled".

Starts the server in-process, asks for a long answer (typed, so the reply starts at once),
then streams a recorded interruption (LibriSpeech test-clean) in real time from the moment
the response is created.
Speech onset is located in the interruption clip with Silero itself, so the figure is
"first voiced frame reached the server" -> "cancelled response.done received".
Writes bench/results/barge_in.{json,md}.

    .venv/bin/python -m bench.barge_in [--runs 10]
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import json
import tempfile
import time
from pathlib import Path

import websockets

from bench.report import write_report
from voxdialog.audio.resample import resample
from voxdialog.providers.local.silero_vad import SileroVAD
from voxdialog.settings import Settings
from voxdialog.testing.server import BackgroundServer, free_port
from voxdialog.testing.signals import load_wav_pcm16

ROOT = Path(__file__).resolve().parents[1]
INTERRUPTION = (
    ROOT.parent / "shared" / "data" / "speech" / "librispeech_test_clean" / "1089-134691-0001.wav"
)
CHUNK_MS = 20


def onset_ms(pcm24: bytes) -> float:
    """Where speech starts in a 24 kHz clip, by Silero at 16 kHz."""
    from voxdialog.audio.resample import resample

    pcm = resample(pcm24, 24_000, 16_000)
    stream = SileroVAD().open_stream(16_000)
    for n, off in enumerate(range(0, len(pcm) - 1024, 1024)):
        if stream.speech_probability(pcm[off : off + 1024]) >= 0.5:
            return n * 32.0
    return 0.0


async def one_run(ws_url: str, key: str, interruption: bytes, onset: float) -> dict[str, float]:
    async with websockets.connect(
        f"{ws_url}/v1/realtime?model=local-voice",
        additional_headers={"Authorization": f"Bearer {key}"},
        max_size=None,
    ) as ws:
        await ws.send(
            json.dumps(
                {
                    "type": "conversation.item.create",
                    "item": {
                        "type": "message",
                        "role": "user",
                        "content": [{"type": "input_text", "text": "What can you do?"}],
                    },
                }
            )
        )
        await ws.send(json.dumps({"type": "response.create"}))
        started: float | None = None
        sender: asyncio.Task[None] | None = None

        async def talk() -> None:
            audio = interruption + b"\x00\x00" * 24 * 800
            loop = asyncio.get_running_loop()
            t0 = loop.time()
            for n, off in enumerate(range(0, len(audio), 48 * CHUNK_MS)):
                await ws.send(
                    json.dumps(
                        {
                            "type": "input_audio_buffer.append",
                            "audio": base64.b64encode(audio[off : off + 48 * CHUNK_MS]).decode(),
                        }
                    )
                )
                await asyncio.sleep(max(0.0, t0 + (n + 1) * CHUNK_MS / 1000 - loop.time()))

        result: dict[str, float] = {}
        async with asyncio.timeout(60):
            async for raw in ws:
                event = json.loads(raw)
                now = time.perf_counter()
                if event["type"] == "response.created" and started is None:
                    started = now
                    sender = asyncio.create_task(talk())
                elif event["type"] == "input_audio_buffer.speech_started" and started:
                    result["onset_to_speech_started_ms"] = (now - started) * 1000 - onset
                elif event["type"] == "response.done" and started:
                    status = event["response"]["status"]
                    if status == "cancelled":
                        result["onset_to_cancelled_ms"] = (now - started) * 1000 - onset
                    result["cancelled"] = 1.0 if status == "cancelled" else 0.0
                    break
        if sender is not None:
            sender.cancel()
        return result


def main() -> int:
    """Run the benchmark and write its report."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--runs", type=int, default=10)
    args = parser.parse_args()
    settings = Settings(data_dir=Path(tempfile.mkdtemp(prefix="vox-bench-")), port=free_port())
    server = BackgroundServer(settings)
    server.start()
    samples: dict[str, list[float]] = {}
    try:
        # Real recorded speech, so every run interrupts with the same audio.
        recording = load_wav_pcm16(INTERRUPTION)
        interruption = resample(recording.pcm, recording.sample_rate, 24_000)
        onset = onset_ms(interruption)
        for _ in range(args.runs):
            run = asyncio.run(one_run(server.ws_url, server.api_key, interruption, onset))
            for name, value in run.items():
                samples.setdefault(name, []).append(value)
    finally:
        server.stop()
    print(
        write_report(
            "barge_in", samples, runs=args.runs, onset_in_clip_ms=onset, title=f"{args.runs} runs"
        )
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
