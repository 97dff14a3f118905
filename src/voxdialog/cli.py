"""The ``voxdialog`` command: serve, converse, transcribe, say, config, migrate."""

from __future__ import annotations

import argparse
import asyncio
import errno
import json
import socket
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any, NoReturn

from pydantic import SecretStr

from voxdialog import __version__
from voxdialog.cli_checks import (
    UsageError,
    audio_input,
    audio_output,
    config_path,
    existing_file,
    load_settings,
    output_format,
    port,
    read_audio,
    speed,
    workers,
)
from voxdialog.observability.logging import configure_logging
from voxdialog.settings import Settings


class _Parser(argparse.ArgumentParser):
    """argparse, but a mistake is one line (no usage block) and no ``SystemExit`` mid-way."""

    def error(self, message: str) -> NoReturn:
        raise UsageError(f"{message} (see {self.prog} --help)")


def _settings(args: argparse.Namespace) -> Settings:
    options: dict[str, Any] = {}
    for name in ("host", "port", "data_dir", "config", "workers", "ssl_certfile", "ssl_keyfile"):
        value = getattr(args, name, None)
        if value is not None:
            options[name] = value
    return load_settings(options)


def _parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="voxdialog", description=__doc__)
    parser.add_argument("--version", action="version", version=f"voxdialog {__version__}")
    _config_option(parser, default=None)
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    def command(name: str, help: str) -> argparse.ArgumentParser:
        cmd = sub.add_parser(name, help=help, description=help)
        # Also after the command; SUPPRESS keeps an earlier --config from being overwritten.
        _config_option(cmd, default=argparse.SUPPRESS)
        return cmd

    def data_dir(cmd: argparse.ArgumentParser) -> None:
        cmd.add_argument(
            "--data-dir", type=Path, help="database, keys and audio (default: setting)"
        )

    serve = command("serve", "run the server")
    serve.add_argument("--host", help="address to listen on (default: VOXDIALOG_HOST, 127.0.0.1)")
    serve.add_argument("--port", type=port, help="port to listen on, 1-65535 (default: 8000)")
    serve.add_argument(
        "--workers",
        type=workers,
        help="worker processes, 1-64 (default: VOXDIALOG_WORKERS, else the CPU count)",
    )
    serve.add_argument(
        "--ssl-certfile", type=existing_file, help="serve HTTPS/WSS with this PEM certificate"
    )
    serve.add_argument("--ssl-keyfile", type=existing_file, help="the certificate's PEM key")
    data_dir(serve)
    converse = command("converse", "one spoken turn from a file, with per-stage timings")
    converse.add_argument("input", type=audio_input, help="the question: an audio file")
    converse.add_argument(
        "--out", type=audio_output, required=True, help="where the answer goes (.wav, .mp3, ...)"
    )
    data_dir(converse)
    converse.add_argument("--agent", help="a stored agent's id or name (default: yours)")
    transcribe = command("transcribe", "speech to text for a file")
    transcribe.add_argument("input", type=audio_input, help="an audio file")
    say = command("say", "text to speech into a file")
    say.add_argument("text", help="what to say")
    say.add_argument(
        "--out", type=audio_output, required=True, help="the audio file (.wav, .mp3, ...)"
    )
    say.add_argument("--speed", type=speed, default=1.0, help="speaking rate, 0.25-4 (default 1)")
    command("config", "print the effective settings (secrets masked)")
    data_dir(command("migrate", "bring the database schema up to date"))
    data_dir(command("rotate-key", "re-encrypt stored conversations with the first key"))
    command("generate-key", "print a new encryption key for VOXDIALOG_ENCRYPTION_KEY")
    return parser


def _config_option(parser: argparse.ArgumentParser, *, default: Any) -> None:
    parser.add_argument(
        "--config",
        type=config_path,
        default=default,
        metavar="PATH",
        help="settings file to read (default: VOXDIALOG_CONFIG, else ./voxdialog.toml)",
    )


def main(argv: list[str] | None = None) -> int:
    """Entry point: 0, or one ``voxdialog: ...`` line per problem and 2 (usage) or 1 (failure)."""
    try:
        args = _parser().parse_args(argv)
        settings = _settings(args)
    except UsageError as e:
        return _fail(e.problems, 2)
    configure_logging(
        settings.log_level if args.command == "serve" else "WARNING", json_lines=settings.log_json
    )
    try:
        return _run(args, settings)
    except (UsageError, ValueError) as e:  # a ValueError: a malformed key or value
        return _fail(e.problems if isinstance(e, UsageError) else (str(e),), 2)
    except KeyboardInterrupt:
        return 130
    except Exception as e:
        if settings.log_level == "DEBUG":  # the operator asked for the details
            raise
        return _fail((_reason(e),), 1)


def _fail(problems: Sequence[str], code: int) -> int:
    for problem in problems:
        print(f"voxdialog: {problem}", file=sys.stderr)
    return code


def _reason(error: BaseException) -> str:
    """What went wrong, in one line: the first real error of a group, an OS error's file."""
    while isinstance(error, BaseExceptionGroup) and error.exceptions:
        error = error.exceptions[0]
    if isinstance(error, OSError) and error.strerror:
        where = f"{error.filename}: " if error.filename else ""
        return f"{where}{error.strerror}"
    text = str(error).splitlines()[0] if str(error) else ""
    return text or type(error).__name__


def _run(args: argparse.Namespace, settings: Settings) -> int:
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
            print(json.dumps(_masked(settings.model_dump(mode="python")), indent=2, default=str))
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
    return 1


async def _rotate_key(settings: Settings) -> int:
    from voxdialog.db.engine import Database
    from voxdialog.db.migrate import migrate
    from voxdialog.db.rotate import rotate_content
    from voxdialog.security.crypto import FieldCipher, parse_keyring

    if settings.encryption_key is None:
        raise UsageError("set VOXDIALOG_ENCRYPTION_KEY ('new:KEY,old:KEY') first")
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
    # Before the models, the admin, the key (and these imports): a busy port is found at once.
    # The probe socket never listens, so uvicorn (or the workers) can bind the port straight after.
    _listen(settings.host, settings.port).close()
    from voxdialog.workers.supervisor import serve

    return serve(settings)


def _listen(host: str, port: int) -> socket.socket:
    """A socket bound to host:port as uvicorn binds it, or an ``OSError`` saying why not."""
    sock = socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host, port))
    except OSError as e:
        sock.close()
        reason = "address already in use" if e.errno == errno.EADDRINUSE else e.strerror
        raise OSError(e.errno, f"cannot listen on {host}:{port}: {reason}") from None
    return sock


async def _transcribe(settings: Settings, path: Path) -> int:
    from voxdialog.providers.registry import default_registry

    clip = await read_audio(path, settings.limits)
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

    fmt = output_format(out)  # checked when the arguments were parsed
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
