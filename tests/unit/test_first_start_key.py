"""R15: the first-start API key reaches a terminal, never a log; `serve` logs its own access."""

from __future__ import annotations

import io
import logging
from pathlib import Path
from typing import Any

import pytest

from voxdialog import cli, runtime
from voxdialog.observability.access_log import AccessLog

KEY = "vxd_" + "k" * 40


class _Stderr(io.StringIO):
    def __init__(self, *, tty: bool) -> None:
        super().__init__()
        self._tty = tty

    def isatty(self) -> bool:
        return self._tty


@pytest.mark.parametrize("tty", [True, False], ids=["terminal", "redirected"])
def test_the_key_is_shown_only_on_a_terminal_and_never_logged(
    tty: bool,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
    tmp_path: Path,
) -> None:
    stderr = _Stderr(tty=tty)
    monkeypatch.setattr("sys.stderr", stderr)
    caplog.set_level(logging.DEBUG)
    runtime._announce_local_key(KEY, tmp_path / "local-api-key")
    assert (KEY in stderr.getvalue()) is tty
    assert KEY not in caplog.text
    paths = [getattr(record, "path", None) for record in caplog.records]
    assert str(tmp_path / "local-api-key") in paths  # where to find it


def _served_config(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Any:
    """The uvicorn config ``serve`` runs with (one process; nothing is served)."""
    ran: dict[str, Any] = {}

    def fake_run(server: Any, sockets: Any = None) -> None:
        ran["config"] = server.config

    monkeypatch.setattr("uvicorn.Server.run", fake_run)
    monkeypatch.setattr(cli, "configure_logging", lambda *a, **k: None)
    monkeypatch.setenv("VOXDIALOG_WORKERS", "1")
    assert cli.main(["serve", "--data-dir", str(tmp_path)]) == 0
    return ran["config"]


def test_serve_wraps_the_app_in_the_access_log_with_uvicorn_s_off(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    config = _served_config(monkeypatch, tmp_path)
    assert isinstance(config.app, AccessLog)
    assert config.access_log is False


def test_serve_trusts_forwarded_headers_from_the_configured_proxies_only(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("VOXDIALOG_TRUSTED_PROXIES", '["10.0.0.5", "10.0.0.6"]')
    config = _served_config(monkeypatch, tmp_path)
    assert config.forwarded_allow_ips == "10.0.0.5,10.0.0.6"
