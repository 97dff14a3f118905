"""One fake OpenAI server per test module, reset before every test."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from voxdialog.testing.fake_openai import FakeOpenAIServer


@pytest.fixture(scope="module")
def fake_server() -> Iterator[FakeOpenAIServer]:
    """The fake server, started once for the module."""
    with FakeOpenAIServer() as server:
        yield server


@pytest.fixture
def fake(fake_server: FakeOpenAIServer) -> FakeOpenAIServer:
    """The module's fake server with no requests, replies or faults left from other tests."""
    fake_server.reset()
    return fake_server
