"""Browser tests: Debian's Chromium (driven by Playwright) against a live server."""

from __future__ import annotations

import os
import re
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.integration.conftest import live_server  # noqa: F401 -- the fixture, shared
from voxdialog.testing.browser import CHROMIUM, chromium_available

#: Screenshots of the last run, kept for people and CI artifact upload (gitignored).
ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts" / "browser"


@pytest.fixture(scope="session")
def chromium() -> Path:
    """``/usr/bin/chromium``; CI must have it (``scripts/setup`` installs it)."""
    if not chromium_available():
        message = f"{CHROMIUM} is not installed; run scripts/setup"
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail(message)
        pytest.skip(message)
    return CHROMIUM


@pytest.fixture
def screenshots(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Path]:
    """A folder for the test's screenshots, copied to ``test-artifacts/browser/`` afterwards."""
    folder = tmp_path / "artifacts"
    folder.mkdir()
    yield folder
    name = re.sub(r"[^A-Za-z0-9_.-]+", "_", request.node.name)
    for shot in sorted(folder.glob("*.png")):
        ARTIFACTS.mkdir(parents=True, exist_ok=True)
        shutil.copy2(shot, ARTIFACTS / f"{name}-{shot.name}")
