"""The ``voxdialog`` command as a new operator meets it: every mistake is one line, no traceback.

In-process (``main(argv)``); nothing here loads a speech model: a fixture makes that fail.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import socket
import struct
import wave
from pathlib import Path

import pytest

import voxdialog.converse
import voxdialog.runtime
from voxdialog import __version__
from voxdialog.cli import _parser, main
from voxdialog.providers.registry import ProviderRegistry
from voxdialog.testing.fakes import FakeSTT, FakeTTS, FakeVAD


def _no_models(*args: object, **kwargs: object) -> ProviderRegistry:
    raise AssertionError("a speech model was loaded")


def _no_app(*args: object, **kwargs: object) -> None:
    raise AssertionError("the app was built (models, admin, key)")


@pytest.fixture(autouse=True)
def operator(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A clean environment (no VOXDIALOG_* variables, no voxdialog.toml) and no models."""
    for name in list(os.environ):
        if name.upper().startswith("VOXDIALOG_"):
            monkeypatch.delenv(name)
    work = tmp_path / "work"
    work.mkdir()
    monkeypatch.chdir(work)
    monkeypatch.setattr("voxdialog.providers.registry.default_registry", _no_models)
    monkeypatch.setattr(voxdialog.runtime, "default_registry", _no_models)
    monkeypatch.setattr("voxdialog.app.create_app", _no_app)
    # Logging set up for a test's captured stderr would outlive the capture.
    monkeypatch.setattr("voxdialog.cli.configure_logging", lambda *a, **k: None)
    return work


def run(argv: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    code = main(argv)
    out, err = capsys.readouterr()
    return code, out, err


def one_line(err: str) -> str:
    """The single ``voxdialog: `` line a mistake prints."""
    lines = err.splitlines()
    assert len(lines) == 1, err
    assert lines[0].startswith("voxdialog: "), err
    return lines[0]


def write_wav(path: Path, samples: list[int], rate: int = 16_000) -> Path:
    with wave.open(str(path), "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(rate)
        w.writeframes(struct.pack(f"<{len(samples)}h", *samples))
    return path


def commands_reading(path: Path, tmp_path: Path) -> list[list[str]]:
    out = str(tmp_path / "answer.wav")
    data = str(tmp_path / "data")
    return [
        ["transcribe", str(path)],
        ["converse", str(path), "--out", out, "--data-dir", data],
    ]


# --- input files ------------------------------------------------------------------------------


@pytest.mark.parametrize("command", ["transcribe", "converse"])
def test_a_text_file_is_named_in_one_line(
    command: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    notes = tmp_path / "notes.txt"
    notes.write_text("not audio at all\n")
    argv = {c[0]: c for c in commands_reading(notes, tmp_path)}[command]
    code, _, err = run(argv, capsys)
    assert code == 2
    assert "notes.txt" in one_line(err)


@pytest.mark.parametrize("command", ["transcribe", "converse"])
@pytest.mark.parametrize(
    ("make", "says"),
    [
        (lambda p: p.write_bytes(b""), "empty"),
        (lambda p: p.mkdir(), "directory"),
        (lambda p: None, "no such file"),
    ],
    ids=["empty", "directory", "missing"],
)
def test_an_empty_file_a_directory_or_no_file_is_one_line(
    command: str,
    make: object,
    says: str,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    target = tmp_path / "question.wav"
    make(target)  # type: ignore[operator]
    argv = {c[0]: c for c in commands_reading(target, tmp_path)}[command]
    code, _, err = run(argv, capsys)
    assert code == 2
    line = one_line(err)
    assert says in line
    assert "question.wav" in line


# --- option values ----------------------------------------------------------------------------


@pytest.mark.parametrize("value", ["0", "-1", "5", "nan", "fast"])
def test_say_speed_out_of_range_names_the_option(
    value: str, capsys: pytest.CaptureFixture[str]
) -> None:
    code, _, err = run(["say", "hi", "--out", "hi.wav", "--speed", value], capsys)
    assert code == 2
    line = one_line(err)
    assert "--speed" in line
    assert "0.25-4" in line


@pytest.mark.parametrize("value", ["70000", "0", "-5", "http"])
def test_serve_port_out_of_range_names_the_option(
    value: str, capsys: pytest.CaptureFixture[str]
) -> None:
    code, _, err = run(["serve", "--port", value], capsys)
    assert code == 2
    assert "--port: must be an integer 1-65535" in one_line(err)


@pytest.mark.parametrize("value", ["0", "65", "many"])
def test_serve_workers_out_of_range_names_the_option(
    value: str, capsys: pytest.CaptureFixture[str]
) -> None:
    code, _, err = run(["serve", "--workers", value], capsys)
    assert code == 2
    assert "--workers: must be an integer 1-64" in one_line(err)


def test_a_missing_required_option_is_one_line(capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = run(["say", "hi"], capsys)
    assert code == 2
    assert "--out" in one_line(err)


@pytest.mark.parametrize("command", ["say", "converse"])
def test_an_output_format_that_cannot_be_written_is_refused_before_any_work(
    command: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    question = write_wav(tmp_path / "q.wav", [0] * 1600)
    argv = (
        ["say", "hi", "--out", "hello.txt"]
        if command == "say"
        else ["converse", str(question), "--out", "hello.txt", "--data-dir", str(tmp_path / "d")]
    )
    code, _, err = run(argv, capsys)  # the fixture fails the test if a model is loaded
    assert code == 2
    line = one_line(err)
    assert "--out" in line
    assert ".txt" in line
    assert not (tmp_path / "d").exists()


# --- settings ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "value", "expected"),
    [
        ("VOXDIALOG_PORT", "abc", "voxdialog: VOXDIALOG_PORT: must be an integer 1-65535"),
        ("VOXDIALOG_PORT", "0", "voxdialog: VOXDIALOG_PORT: must be an integer 1-65535"),
        (
            "VOXDIALOG_LOG_LEVEL",
            "verbose",
            "voxdialog: VOXDIALOG_LOG_LEVEL: must be one of DEBUG, INFO, WARNING, ERROR, CRITICAL",
        ),
        (
            "VOXDIALOG_TURNS__SILENCE_DURATION_MS",
            "5",
            "voxdialog: VOXDIALOG_TURNS__SILENCE_DURATION_MS: must be an integer 100-10000",
        ),
        (
            "VOXDIALOG_AUTH__REGISTRATION_OPEN",
            "maybe",
            "voxdialog: VOXDIALOG_AUTH__REGISTRATION_OPEN: must be true or false",
        ),
    ],
)
def test_a_bad_setting_is_one_line_naming_the_variable(
    name: str,
    value: str,
    expected: str,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    monkeypatch.setenv(name, value)
    code, _, err = run(["config"], capsys)
    assert code == 2
    assert one_line(err) == expected


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("VOXDIALOG_PORTT", "VOXDIALOG_PORTT: not a setting (did you mean VOXDIALOG_PORT?)"),
        ("VOXDIALOG_FOO", "VOXDIALOG_FOO: not a setting"),
        (
            "VOXDIALOG_TURNS__SILENCE_DURATON_MS",
            "VOXDIALOG_TURNS__SILENCE_DURATON_MS: not a setting"
            " (did you mean VOXDIALOG_TURNS__SILENCE_DURATION_MS?)",
        ),
    ],
)
def test_a_misspelt_variable_is_one_line_with_the_closest_name(
    name: str, expected: str, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv(name, "700")
    code, _, err = run(["config"], capsys)
    assert code == 2
    assert one_line(err) == f"voxdialog: {expected}"


def test_two_bad_settings_are_two_lines(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("VOXDIALOG_PORT", "abc")
    monkeypatch.setenv("VOXDIALOG_LOG_LEVEL", "verbose")
    code, _, err = run(["config"], capsys)
    assert code == 2
    lines = err.splitlines()
    assert len(lines) == 2
    assert {line.split(":")[1].strip() for line in lines} == {
        "VOXDIALOG_PORT",
        "VOXDIALOG_LOG_LEVEL",
    }


def test_variables_the_project_documents_still_work(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("VOXDIALOG_TEST_POSTGRES_URL", "postgresql+asyncpg://x/y")
    monkeypatch.setenv("VOXDIALOG_TEST_REDIS_URL", "redis://127.0.0.1:6379/14")
    monkeypatch.setenv("VOXDIALOG_PROVIDERS__LOCAL__KIND", "ollama")
    monkeypatch.setenv("VOXDIALOG_SHUTDOWN_DRAIN_S", "5")
    code, out, err = run(["config"], capsys)
    assert (code, err) == (0, "")
    assert json.loads(out)["providers"]["local"]["kind"] == "ollama"


def test_a_toml_typo_names_the_file_and_the_key(
    operator: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (operator / "voxdialog.toml").write_text("[agent]\nllm_chain = ['x']\n")
    code, _, err = run(["config"], capsys)
    assert code == 2
    assert one_line(err) == "voxdialog: voxdialog.toml: agent.llm_chain: not a setting"


def test_invalid_toml_is_one_line(operator: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (operator / "voxdialog.toml").write_text("port = \n")
    code, _, err = run(["config"], capsys)
    assert code == 2
    assert "voxdialog.toml: not valid TOML" in one_line(err)


@pytest.mark.parametrize("where", ["--config before", "--config after", "VOXDIALOG_CONFIG"])
def test_the_settings_file_can_be_named(
    where: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    elsewhere = tmp_path / "etc" / "vox.toml"
    elsewhere.parent.mkdir()
    elsewhere.write_text("port = 9123\n")
    argv = {
        "--config before": ["--config", str(elsewhere), "config"],
        "--config after": ["config", "--config", str(elsewhere)],
        "VOXDIALOG_CONFIG": ["config"],
    }[where]
    if where == "VOXDIALOG_CONFIG":
        monkeypatch.setenv("VOXDIALOG_CONFIG", str(elsewhere))
    code, out, err = run(argv, capsys)
    assert (code, err) == (0, "")
    assert json.loads(out)["port"] == 9123


def test_a_missing_settings_file_is_one_line(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    code, _, err = run(["--config", "nope.toml", "config"], capsys)
    assert code == 2
    assert "--config: no such file: nope.toml" in one_line(err)
    monkeypatch.setenv("VOXDIALOG_CONFIG", "nope.toml")
    code, _, err = run(["config"], capsys)
    assert code == 2
    assert one_line(err) == "voxdialog: VOXDIALOG_CONFIG: no such file: nope.toml"


# --- serve ------------------------------------------------------------------------------------


def test_a_port_in_use_is_found_before_anything_is_loaded(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # The fixture fails the test if the app (models, admin, key) is built before the bind.
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        code, _, err = run(
            ["serve", "--port", str(port), "--data-dir", str(tmp_path / "data")], capsys
        )
    assert code == 1
    assert f"127.0.0.1:{port}: address already in use" in one_line(err)
    assert not (tmp_path / "data").exists()


# --- converse with no speech ------------------------------------------------------------------


def fake_registry(stt: FakeSTT) -> ProviderRegistry:
    registry = ProviderRegistry()
    registry.register_vad("silero", FakeVAD)
    registry.register_stt("whisper", lambda: stt)
    registry.register_tts("piper", FakeTTS)
    return registry


@pytest.mark.parametrize("heard", ["silence", "an empty transcript"])
def test_converse_without_speech_says_so_and_exits_1(
    heard: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    # Without a turn no reply ever comes: it must not wait for one (120 s, then an
    # ExceptionGroup, before the fix). Had it waited, it would say "no answer within 20 s".
    monkeypatch.setattr(voxdialog.converse, "_TURN_TIMEOUT_S", 20.0)
    monkeypatch.setattr(voxdialog.runtime, "default_registry", lambda _: fake_registry(FakeSTT()))
    rate = 16_000
    if heard == "silence":
        samples = [0] * rate
    else:  # a loud tone: the fake VAD hears speech, the fake STT hears no words
        samples = [int(8000 * math.sin(2 * math.pi * 220 * i / rate)) for i in range(rate)]
    question = write_wav(tmp_path / "silence.wav", samples)
    answer = tmp_path / "a.wav"
    code, _, err = run(
        ["converse", str(question), "--out", str(answer), "--data-dir", str(tmp_path / "d")],
        capsys,
    )
    assert code == 1
    assert one_line(err) == f"voxdialog: no speech heard in {question}"
    assert not answer.exists()


# --- version and help -------------------------------------------------------------------------


def test_version(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exited:
        main(["--version"])
    assert exited.value.code == 0
    assert capsys.readouterr().out == f"voxdialog {__version__}\n"


def test_every_command_and_option_has_help() -> None:
    parser = _parser()
    (commands,) = [a for a in parser._actions if isinstance(a, argparse._SubParsersAction)]
    helps = {choice.dest: choice.help for choice in commands._choices_actions}
    assert set(helps) == set(commands.choices)
    missing = [name for name, text in helps.items() if not text]
    for name, sub in [("voxdialog", parser), *commands.choices.items()]:
        missing += [
            f"{name} {action.dest}"
            for action in sub._actions
            if not isinstance(action, argparse._SubParsersAction) and not action.help
        ]
    assert missing == []
