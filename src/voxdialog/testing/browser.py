"""A real Chromium, driven by Playwright, that hears a WAV file as its microphone.

Playwright never downloads a browser here: it drives Debian's ``/usr/bin/chromium``
(``scripts/setup`` installs it). Chromium's fake capture device plays the WAV given on its
command line from the moment the page opens the microphone, then (with ``%noloop``) silence.
"""

from __future__ import annotations

import contextlib
import os
import re
import shutil
import tempfile
from collections.abc import AsyncIterator, Iterator, Sequence
from pathlib import Path

from playwright.async_api import BrowserContext, async_playwright

from voxdialog.audio.formats import AudioChunk
from voxdialog.audio.resample import resample
from voxdialog.audio.wav import write_wav

CHROMIUM = Path("/usr/bin/chromium")
#: Chromium's fake capture device reads WAV files; 48 kHz is what a real microphone gives.
MIC_RATE = 48_000

#: Quiet, deterministic, offline: no GPU, no network side traffic, no first-run UI, and a
#: fake microphone that needs no permission prompt.
BASE_ARGS = (
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--disable-quic",
    "--use-fake-device-for-media-stream",
    "--use-fake-ui-for-media-stream",
    # A tab without a visible window must still play audio at full pace.
    "--autoplay-policy=no-user-gesture-required",
    "--disable-background-timer-throttling",
    "--disable-renderer-backgrounding",
)

#: Part of a microphone script: a clip, or that many seconds of digital silence.
MicPart = AudioChunk | float


def chromium_available() -> bool:
    """Whether ``/usr/bin/chromium`` is installed and executable."""
    return CHROMIUM.is_file() and os.access(CHROMIUM, os.X_OK)


def require_chromium() -> Path:
    """``/usr/bin/chromium``, or the test stops: fails under CI (``scripts/setup`` installs it),
    skips elsewhere."""
    import pytest  # test-only helper: pytest is a test dependency

    if not chromium_available():
        message = f"{CHROMIUM} is not installed; run scripts/setup"
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail(message)
        pytest.skip(message)
    return CHROMIUM


@contextlib.contextmanager
def kept_screenshots(test_name: str, scratch: Path, artifacts: Path) -> Iterator[Path]:
    """A folder for a test's screenshots; afterwards they are copied to ``artifacts`` as
    ``<test name>-<file>`` (for people, and for CI to upload)."""
    scratch.mkdir(parents=True, exist_ok=True)
    yield scratch
    name = re.sub(r"[^A-Za-z0-9_.-]+", "_", test_name)
    for shot in sorted(scratch.glob("*.png")):
        artifacts.mkdir(parents=True, exist_ok=True)
        shutil.copy2(shot, artifacts / f"{name}-{shot.name}")


def write_mic_wav(path: Path, parts: Sequence[MicPart]) -> Path:
    """Write what the fake microphone will hear: clips and silences, in order, at 48 kHz.

    Args:
        path: The WAV file to write.
        parts: Mono PCM16 clips (any rate) and silences (seconds).

    Returns:
        ``path``.

    Raises:
        ValueError: A silence is negative.
    """
    pcm = bytearray()
    for part in parts:
        if isinstance(part, AudioChunk):
            pcm += resample(part.pcm, part.sample_rate, MIC_RATE)
        elif part < 0:
            raise ValueError("a silence cannot be negative")
        else:
            pcm += bytes(round(part * MIC_RATE) * 2)
    path.write_bytes(write_wav(AudioChunk(bytes(pcm), MIC_RATE)))
    return path


def chromium_args(mic_wav: Path, *, loop: bool = False, extra: Sequence[str] = ()) -> list[str]:
    """Command-line switches for a headless Chromium whose microphone plays ``mic_wav``.

    Args:
        mic_wav: The WAV file the fake capture device plays.
        loop: Replay the file forever (Chromium's default) instead of once.
        extra: More switches (e.g. ``host_name_args``).
    """
    capture = str(mic_wav) if loop else f"{mic_wav}%noloop"
    return [*BASE_ARGS, f"--use-file-for-fake-audio-capture={capture}", *extra]


def host_name_args(name: str, port: int) -> list[str]:
    """Switches that make ``http://{name}:{port}`` reach this machine's server, as a secure page.

    The page then runs under a host name that is not a loopback name, as on a server reached
    over the network, while the test server still only listens on 127.0.0.1. Browsers give
    the microphone only to secure pages, so that origin is declared secure.

    Args:
        name: The host name to map to 127.0.0.1 (e.g. ``voxdialog.test``).
        port: The server's port.
    """
    return [
        f"--host-resolver-rules=MAP {name} 127.0.0.1",
        f"--unsafely-treat-insecure-origin-as-secure=http://{name}:{port}",
    ]


@contextlib.asynccontextmanager
async def chromium_with_mic(
    mic_wav: Path,
    *,
    loop: bool = False,
    viewport: tuple[int, int] = (1280, 800),
    extra_args: Sequence[str] = (),
) -> AsyncIterator[BrowserContext]:
    """A fresh headless Chromium profile whose microphone plays ``mic_wav``.

    The profile (``--user-data-dir``) lives in a temporary directory removed on exit.

    Args:
        mic_wav: The WAV file the fake microphone plays (see ``write_mic_wav``).
        loop: Replay the file forever instead of once.
        viewport: Page size for screenshots.
        extra_args: More Chromium switches (e.g. ``host_name_args``).

    Raises:
        FileNotFoundError: ``/usr/bin/chromium`` is not installed (run ``scripts/setup``).
    """
    if not chromium_available():
        raise FileNotFoundError(f"{CHROMIUM} is missing; scripts/setup installs it")
    with tempfile.TemporaryDirectory(prefix="voxdialog-chromium-") as profile:
        async with async_playwright() as playwright:
            context = await playwright.chromium.launch_persistent_context(
                profile,
                executable_path=CHROMIUM,
                headless=True,
                args=chromium_args(mic_wav, loop=loop, extra=extra_args),
                viewport={"width": viewport[0], "height": viewport[1]},
                permissions=["microphone"],
            )
            try:
                yield context
            finally:
                await context.close()


#: The microphone level (0..1, the page's meter) from which the probe calls the input loud.
LOUD_LEVEL = 0.35

#: An init script that watches the talk page from the inside without changing what it does:
#: every ``body[data-mode]`` it shows, when its level meter was first written (about when the
#: microphone opened) and last showed a loud microphone (``performance.now()`` ms), and what
#: its playback AudioWorklet reports (24 kHz samples rendered per assistant item, and the
#: flushes a barge-in causes). Read it with ``page.evaluate(READ_PROBE)``.
TALK_PAGE_PROBE = """
(() => {
  const LOUD = __LOUD__;
  const probe = {
    modes: [], played: {}, flushes: 0, playedAtFlush: null, levelSince: null, lastLoud: null,
  };
  window.__voxdialogProbe = probe;
  document.addEventListener("DOMContentLoaded", () => {
    const note = () => {
      const mode = document.body.dataset.mode;
      if (probe.modes[probe.modes.length - 1] !== mode) probe.modes.push(mode);
    };
    note();
    new MutationObserver(note).observe(document.body, {
      attributes: true,
      attributeFilter: ["data-mode"],
    });
    const stage = document.getElementById("stage");
    if (!stage) return;
    new MutationObserver(() => {
      const level = parseFloat(stage.style.getPropertyValue("--level")) || 0;
      if (probe.levelSince === null) probe.levelSince = performance.now();
      if (level >= LOUD) probe.lastLoud = performance.now();
    }).observe(stage, { attributes: true, attributeFilter: ["style"] });
  });
  const Native = window.AudioWorkletNode;
  if (!Native) return;
  window.AudioWorkletNode = class extends Native {
    constructor(context, name, options) {
      super(context, name, options);
      if (name !== "playback-processor") return;
      this.port.addEventListener("message", (event) => {
        const message = event.data || {};
        if (message.type === "progress") Object.assign(probe.played, message.played);
        if (message.type === "flushed") {
          // Exact counts at the cut (progress reports are throttled, so they may lag).
          Object.assign(probe.played, message.played);
          probe.flushes += 1;
          probe.playedAtFlush = { ...message.played };
        }
      });
    }
  };
})();
""".replace("__LOUD__", str(LOUD_LEVEL))
#: ``page.evaluate`` this to read what ``TALK_PAGE_PROBE`` saw.
READ_PROBE = "() => window.__voxdialogProbe"
#: ``page.wait_for_function`` this with a number of ms: true once the microphone was loud and
#: has been quiet for that long since (someone spoke, then stopped).
SPOKE_THEN_QUIET = """(quietMs) => {
  const probe = window.__voxdialogProbe;
  return probe.lastLoud !== null && performance.now() - probe.lastLoud >= quietMs;
}"""
