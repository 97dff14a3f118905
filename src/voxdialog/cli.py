"""The ``voxdialog`` command: serve, converse, transcribe, say, config, migrate."""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import time
from pathlib import Path
from typing import Any

from pydantic import SecretStr

from voxdialog.observability.logging import configure_logging
from voxdialog.settings import Settings


def _settings(args: argparse.Namespace) -> Settings:
    overrides: dict[str, Any] = {}
    for name in ("host", "port", "data_dir"):
        value = getattr(args, name, None)
        if value is not None:
            overrides[name] = value
    return Settings(**overrides)


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="voxdialog", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    serve = sub.add_parser("serve", help="run the server")
    serve.add_argument("--host")
    serve.add_argument("--port", type=int)
    serve.add_argument("--data-dir", type=Path)
    converse = sub.add_parser("converse", help="one spoken turn from a file")
    converse.add_argument("input", type=Path)
    converse.add_argument("--out", type=Path, required=True)
    converse.add_argument("--data-dir", type=Path)
    converse.add_argument("--agent", help="a stored agent's id or name (default: yours)")
    transcribe = sub.add_parser("transcribe", help="speech to text for a file")
    transcribe.add_argument("input", type=Path)
    say = sub.add_parser("say", help="text to speech into a file")
    say.add_argument("text")
    say.add_argument("--out", type=Path, required=True)
    say.add_argument("--speed", type=float, default=1.0)
    sub.add_parser("config", help="print the effective settings (secrets masked)")
    migrate = sub.add_parser("migrate", help="bring the database schema up to date")
    migrate.add_argument("--data-dir", type=Path)
    rotate = sub.add_parser(
        "rotate-key", help="re-encrypt stored conversations with the first configured key"
    )
    rotate.add_argument("--data-dir", type=Path)
    sub.add_parser("generate-key", help="print a new encryption key for VOXDIALOG_ENCRYPTION_KEY")
    return parser


def main(argv: list[str] | None = None) -> int:
    """Entry point."""
    args = _parser().parse_args(argv)
    settings = _settings(args)
    configure_logging(
        settings.log_level if args.command == "serve" else "WARNING", json_lines=settings.log_json
    )
    try:
        match args.command:
            case "serve":
                return _serve(settings)
            case "converse":
                from voxdialog.converse import converse

                return asyncio.run(converse(settings, args.input, args.out, agent=args.agent))
            case "transcribe":
                return asyncio.run(_transcribe(settings, args.input))
            case "say":
                return asyncio.run(_say(settings, args.text, args.out, args.speed))
            case "config":
                print(
                    json.dumps(_masked(settings.model_dump(mode="python")), indent=2, default=str)
                )
                return 0
            case "migrate":
                from voxdialog.db.migrate import migrate
                from voxdialog.security.files import private_dir

                private_dir(settings.data_dir)
                asyncio.run(migrate(settings.effective_database_url))
                print("database is up to date")
                return 0
            case "rotate-key":
                return asyncio.run(_rotate_key(settings))
            case "generate-key":
                from voxdialog.security.crypto import generate_key

                print(f"k1:{generate_key()}")
                return 0
    except (FileNotFoundError, ValueError) as e:
        print(f"voxdialog: {e}", file=sys.stderr)
        return 2
    return 1


async def _rotate_key(settings: Settings) -> int:
    from voxdialog.db.engine import Database
    from voxdialog.db.migrate import migrate
    from voxdialog.db.rotate import rotate_content
    from voxdialog.security.crypto import FieldCipher, parse_keyring

    if settings.encryption_key is None:
        raise ValueError("set VOXDIALOG_ENCRYPTION_KEY ('new:KEY,old:KEY') first")
    await migrate(settings.effective_database_url)
    db = Database(settings.effective_database_url)
    db.cipher = FieldCipher(parse_keyring(settings.encryption_key.get_secret_value()))
    try:
        report = await rotate_content(db)
    finally:
        await db.close()
    print(
        f"re-encrypted {report.messages} messages, {report.commands} voice commands"
        f" and {report.tasks} task titles"
    )
    return 0


def _masked(value: Any) -> Any:
    if isinstance(value, SecretStr):
        return "**********" if value.get_secret_value() else ""
    if isinstance(value, dict):
        return {k: _masked(v) for k, v in value.items()}
    return value


def _serve(settings: Settings) -> int:
    import uvicorn

    from voxdialog.app import create_app
    from voxdialog.observability.access_log import AccessLog

    print(
        f"VoxDialog on http://{settings.host}:{settings.port}/ (data in {settings.data_dir})",
        file=sys.stderr,
    )
    uvicorn.run(
        # Our access log (secret query values replaced) instead of uvicorn's raw one.
        AccessLog(create_app(settings)),
        host=settings.host,
        port=settings.port,
        ws_max_size=settings.limits.ws_frame_limit_bytes,
        ws_per_message_deflate=False,
        log_config=None,
        access_log=False,
    )
    return 0


async def _transcribe(settings: Settings, path: Path) -> int:
    from voxdialog.audio.codecs import decode_file
    from voxdialog.providers.registry import default_registry

    data = await asyncio.to_thread(path.read_bytes)
    clip = decode_file(
        data,
        max_bytes=settings.limits.max_upload_bytes,
        max_seconds=settings.limits.max_upload_seconds,
    )
    stt = default_registry(settings.models).stt("whisper")
    started = time.perf_counter()
    transcript = await stt.transcribe(clip)
    print(transcript.text)
    print(
        f"({clip.duration_ms / 1000:.1f} s of audio in "
        f"{(time.perf_counter() - started) * 1000:.0f} ms)",
        file=sys.stderr,
    )
    return 0


async def _say(settings: Settings, text: str, out: Path, speed: float) -> int:
    from voxdialog.audio.codecs import encode_file
    from voxdialog.audio.formats import AudioChunk
    from voxdialog.providers.base import VoiceSettings
    from voxdialog.providers.registry import default_registry

    fmt = out.suffix.lstrip(".").lower() or "wav"
    tts = default_registry(settings.models).tts("piper")
    pcm = bytearray()
    rate = 22050
    async for chunk in tts.synthesize(text, voice=VoiceSettings(speed=speed)):
        pcm += chunk.pcm
        rate = chunk.sample_rate
    if not pcm:
        print("voxdialog: nothing to say", file=sys.stderr)
        return 2
    await asyncio.to_thread(out.write_bytes, encode_file(AudioChunk(bytes(pcm), rate), fmt))
    print(f"wrote {out} ({len(pcm) / 2 / rate:.1f} s)", file=sys.stderr)
    return 0
