"""A live server for the security suites: real models, rate limits off, its own data dir.

Fuzzing and the cross-tenant matrix send thousands of requests from one address and one
user in a few minutes; the limits themselves are tested in ``tests/integration/ratelimit``.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator

import pytest

from tests.integration.conftest import LiveServer, serving
from voxdialog.settings import RateLimitSettings, Settings
from voxdialog.testing.server import free_port

#: Writes one line to the terminal, past pytest's output capture.
Report = Callable[[str], None]


@pytest.fixture(scope="module")
def security_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    """The server under attack, one per test module; ``api_key`` is the operator's key."""
    data_dir = tmp_path_factory.mktemp("security-server")
    settings = Settings(
        data_dir=data_dir,
        host="127.0.0.1",
        port=free_port(),
        rate_limits=RateLimitSettings(enabled=False),
    )
    with serving(settings) as server:
        yield server


@pytest.fixture
def report(request: pytest.FixtureRequest) -> Report:
    """Show a summary (seed, counts, tables) in the test output, with or without ``-s``."""
    plugins = request.config.pluginmanager
    terminal = plugins.get_plugin("terminalreporter")
    capture = plugins.get_plugin("capturemanager")

    def write(line: str) -> None:
        if terminal is None or capture is None:
            return
        with capture.global_and_fixture_disabled():
            terminal.ensure_newline()
            terminal.write_line(line)

    return write
