"""Barge-in latency: speech onset while the agent is answering -> response.done "cancelled".

Starts the server in-process, asks for a long answer (typed, so the reply starts at once),
then streams a spoken interruption in real time from the moment the response is created.
Speech onset is located in the interruption clip with Silero itself, so the figure is
"first voiced frame reached the server" -> "cancelled response.done received".
Writes bench/results/barge_in.{json,md}.

    .venv/bin/python bench/barge_in.py [--runs 10]
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import json
import os
import platform
import socket
import statistics
import tempfile
import time
from pathlib import Path

import httpx
import websockets

from bench.turn_latency import pct, serve
from voxdialog.providers.local.silero_vad import SileroVAD
from voxdialog.settings import Settings

ROOT = Path(__file__).resolve().parents[1]
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
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--runs", type=int, default=10)
    args = parser.parse_args()
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    data_dir = Path(tempfile.mkdtemp(prefix="vox-bench-"))
    settings = Settings(data_dir=data_dir, port=port)
    server = serve(settings)
    key = (data_dir / "local-api-key").read_text().strip()
    interruption = httpx.post(
        f"http://127.0.0.1:{port}/v1/audio/speech",
        timeout=60,
        headers={"Authorization": f"Bearer {key}"},
        json={
            "model": "tts-1",
            "voice": "alloy",
            "input": "Wait, stop, add a task to buy milk.",
            "response_format": "pcm",
        },
    ).content
    onset = onset_ms(interruption)
    runs = [
        asyncio.run(one_run(f"ws://127.0.0.1:{port}", key, interruption, onset))
        for _ in range(args.runs)
    ]
    server.should_exit = True
    stages: dict[str, list[float]] = {}
    for run in runs:
        for k, v in run.items():
            stages.setdefault(k, []).append(v)
    summary = {
        k: {
            "n": len(v),
            "p50": pct(v, 0.5),
            "p95": pct(v, 0.95),
            "median": round(statistics.median(v), 2),
        }
        for k, v in stages.items()
    }
    report = {
        "benchmark": "barge_in",
        "runs": args.runs,
        "onset_in_clip_ms": onset,
        "machine": {"platform": platform.platform(), "cpus": os.cpu_count()},
        "when": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "stages": summary,
    }
    out = ROOT / "bench" / "results"
    (out / "barge_in.json").write_text(json.dumps(report, indent=2) + "\n")
    lines = [
        f"# barge_in ({report['when']}, {os.cpu_count()} CPUs, {args.runs} runs)",
        "",
        "| measure | n | p50 | p95 |",
        "|---|---|---|---|",
    ]
    lines += [f"| {k} | {v['n']} | {v['p50']} | {v['p95']} |" for k, v in summary.items()]
    (out / "barge_in.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
