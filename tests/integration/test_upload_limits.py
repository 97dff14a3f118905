"""``POST /v1/audio/transcriptions`` on a real server: limits before the body, no 5xx ever.

R7: a declared length over the limit gets 413 within 100 ms without the body being read; an
unauthenticated upload gets 401 without its body being read; a body without a length is cut
off at the limit. R6: malformed, lying, oversized and unsupported uploads get 400/413/415, never
a 5xx. The server runs with a scripted STT (no models), so this suite is quick.
"""

from __future__ import annotations

import asyncio
import io
import json
import socket
import struct
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass

import av
import httpx
import numpy as np
import openai
import pytest
import uvicorn
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from voxdialog.app import create_app
from voxdialog.audio.formats import AudioChunk
from voxdialog.audio.g711 import ulaw_encode
from voxdialog.audio.wav import write_wav
from voxdialog.runtime import Runtime
from voxdialog.settings import LimitSettings, RateLimitSettings, Settings
from voxdialog.testing.fakes import FakeSTT
from voxdialog.testing.server import free_port

LIMIT = 1024 * 1024
MAX_SECONDS = 60.0
PATH = "/v1/audio/transcriptions"
BOUNDARY = "voxdialogboundary"
FORM = {"Content-Type": f"multipart/form-data; boundary={BOUNDARY}"}


@dataclass(frozen=True, slots=True)
class UploadServer:
    port: int
    key: str
    stt: FakeSTT

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[UploadServer]:
    """The app under uvicorn on a free port, with a scripted STT instead of Whisper."""
    data_dir = tmp_path_factory.mktemp("upload-server")
    port = free_port()
    config = Settings(
        data_dir=data_dir,
        host="127.0.0.1",
        port=port,
        limits=LimitSettings(max_upload_bytes=LIMIT, max_upload_seconds=MAX_SECONDS),
        rate_limits=RateLimitSettings(enabled=False),
    )
    runtime = Runtime(config)
    stt = FakeSTT(["hello there"] * 100_000)
    runtime.stt = stt
    app = create_app(config, runtime=runtime, load_models=False)
    uv = uvicorn.Server(
        uvicorn.Config(
            app, host="127.0.0.1", port=port, log_config=None, access_log=False, lifespan="on"
        )
    )
    thread = threading.Thread(target=lambda: asyncio.run(uv.serve()), daemon=True)
    thread.start()
    deadline = time.monotonic() + 60
    while not uv.started:
        assert thread.is_alive(), "the server did not start"
        assert time.monotonic() < deadline, "the server did not start in time"
        time.sleep(0.05)
    try:
        yield UploadServer(port, (data_dir / "local-api-key").read_text().strip(), stt)
    finally:
        uv.should_exit = True
        thread.join(timeout=15)


@pytest.fixture(scope="module")
def http(server: UploadServer) -> Iterator[httpx.Client]:
    """One client for the module (a new one per request costs ~50 ms of TLS setup)."""
    headers = {"Authorization": f"Bearer {server.key}"}
    with httpx.Client(base_url=server.base_url, headers=headers, timeout=10) as client:
        yield client


# --- files ------------------------------------------------------------------------------------


def tone(seconds: float, rate: int = 16_000) -> bytes:
    t = np.arange(int(seconds * rate)) / rate
    return (np.sin(2 * np.pi * 440 * t) * 8_000).astype("<i2").tobytes()


def riff(
    tag: int, channels: int, rate: int, bits: int, payload: bytes, size: int | None = None
) -> bytes:
    align = channels * bits // 8
    fmt = struct.pack("<HHIIHH", tag, channels, rate, rate * align, align, bits)
    chunks = b"fmt " + struct.pack("<I", 16) + fmt
    chunks += b"data" + struct.pack("<I", len(payload) if size is None else size) + payload
    return b"RIFF" + struct.pack("<I", 4 + len(chunks)) + b"WAVE" + chunks


def alac_m4a() -> bytes:
    out = io.BytesIO()
    samples = np.frombuffer(tone(0.5), dtype="<i2").reshape(1, -1)
    with av.open(out, "w", format="ipod") as muxer:
        stream = muxer.add_stream("alac", rate=16_000, layout="mono")
        frame = av.AudioFrame.from_ndarray(samples, format="s16", layout="mono")
        frame.sample_rate = 16_000
        for piece in av.AudioResampler(format="s16p", rate=16_000).resample(frame):
            muxer.mux(stream.encode(piece))
        muxer.mux(stream.encode(None))
    return out.getvalue()


PCM_WAV = write_wav(AudioChunk(tone(1.0), 16_000))
CORPUS: dict[str, tuple[bytes, int, str | None]] = {
    # name: (file, status, error code)
    "pcm-wav": (PCM_WAV, 200, None),
    "mu-law-wav": (riff(7, 1, 8_000, 8, ulaw_encode(tone(1.0, 8_000))), 200, None),
    "ms-adpcm-wav": (riff(2, 1, 8_000, 4, b"\x00" * 4_000), 415, "unsupported_audio_format"),
    "ima-adpcm-wav": (riff(0x11, 1, 8_000, 4, b"\x00" * 4_000), 415, "unsupported_audio_format"),
    "gsm-wav": (riff(0x31, 1, 8_000, 0, b"\x00" * 650), 415, "unsupported_audio_format"),
    "alac-m4a": (alac_m4a(), 415, "unsupported_audio_format"),
    "empty": (b"", 400, "invalid_audio"),
    "garbage": (bytes(range(256)) * 16, 400, "invalid_audio"),
    "riff-not-wave": (b"RIFF\x00\x00\x00\x00garbage", 400, "invalid_audio"),
    "lying-length": (riff(1, 1, 16_000, 16, tone(0.1), size=10**9), 400, "invalid_audio"),
    "cut-in-header": (PCM_WAV[:30], 400, "invalid_audio"),
    "no-samples": (riff(1, 1, 16_000, 16, b""), 400, "invalid_audio"),
    "too-long-8-bit-wav": (riff(1, 1, 8_000, 8, b"\x80" * 8_000 * 61), 413, "audio_too_long"),
    "over-byte-limit": (PCM_WAV + b"\x00" * LIMIT, 413, "file_too_large"),
}


def multipart(file: bytes, *, filename: str = "clip.wav") -> bytes:
    head = (
        f'--{BOUNDARY}\r\nContent-Disposition: form-data; name="model"\r\n\r\nwhisper-1\r\n'
        f'--{BOUNDARY}\r\nContent-Disposition: form-data; name="file"; filename="{filename}"'
        "\r\nContent-Type: application/octet-stream\r\n\r\n"
    ).encode()
    return head + file + f"\r\n--{BOUNDARY}--\r\n".encode()


# --- a raw client: the body is only ever sent if the test says so -----------------------------


def request_head(server: UploadServer, length_header: str, *, key: str | None) -> bytes:
    auth = f"Authorization: Bearer {key}\r\n" if key is not None else ""
    return (
        f"POST {PATH} HTTP/1.1\r\nHost: 127.0.0.1:{server.port}\r\n{auth}"
        f"Content-Type: multipart/form-data; boundary={BOUNDARY}\r\n{length_header}\r\n"
    ).encode()


def read_response(
    sock: socket.socket, *, timeout: float = 5.0
) -> tuple[int, dict[str, str], bytes]:
    sock.settimeout(timeout)
    raw = b""
    while b"\r\n\r\n" not in raw:
        got = sock.recv(65536)
        assert got, f"connection closed before a response: {raw!r}"
        raw += got
    head, _, body = raw.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    headers = {k.lower(): v.strip() for k, _, v in (ln.partition(":") for ln in lines[1:])}
    while len(body) < int(headers["content-length"]):
        got = sock.recv(65536)
        assert got
        body += got
    return int(lines[0].split()[1]), headers, body


def closed_by_server(sock: socket.socket, *, within: float = 2.0) -> bool:
    sock.settimeout(within)
    try:
        return sock.recv(1) == b""
    except ConnectionResetError:
        return True
    except TimeoutError:
        return False


def assert_openai_error(body: bytes, code: str) -> None:
    error = json.loads(body)["error"]
    assert set(error) == {"message", "type", "param", "code"}
    assert error["code"] == code
    assert error["type"] == "invalid_request_error"


# --- R7 -----------------------------------------------------------------------------------


@pytest.mark.parametrize("with_key", [True, False], ids=["with-key", "no-key"])
def test_a_10_gb_declared_upload_gets_413_within_100_ms_without_its_body(
    server: UploadServer, with_key: bool
) -> None:
    key = server.key if with_key else None
    with socket.create_connection(("127.0.0.1", server.port)) as sock:
        started = time.perf_counter()
        sock.sendall(request_head(server, "Content-Length: 10737418240\r\n", key=key))
        status, headers, body = read_response(sock)
        elapsed = time.perf_counter() - started
        assert status == 413
        assert elapsed < 0.1, f"413 after {elapsed * 1000:.0f} ms"
        assert_openai_error(body, "file_too_large")
        assert headers["connection"] == "close"
        assert closed_by_server(sock)  # it will not read the 10 GB either


@pytest.mark.parametrize("key", [None, "vxd_not-a-key", "not.a.jwt"])
def test_an_unauthenticated_upload_gets_401_before_its_body_is_sent(
    server: UploadServer, key: str | None
) -> None:
    clips_before = len(server.stt.clips)
    with socket.create_connection(("127.0.0.1", server.port)) as sock:
        started = time.perf_counter()
        sock.sendall(request_head(server, f"Content-Length: {LIMIT}\r\n", key=key))
        status, headers, body = read_response(sock)  # not a byte of the body was sent
        assert time.perf_counter() - started < 0.5
        assert status == 401
        assert headers["www-authenticate"] == "Bearer"
        assert_openai_error(body, "invalid_api_key")
        assert closed_by_server(sock)
    assert len(server.stt.clips) == clips_before


def test_a_body_without_a_length_is_cut_off_at_the_limit(server: UploadServer) -> None:
    clips_before = len(server.stt.clips)
    head = multipart(b"")[: -len(f"\r\n--{BOUNDARY}--\r\n")]
    piece = b"\x00" * 65536
    sent = 0
    with socket.create_connection(("127.0.0.1", server.port)) as sock:
        sock.sendall(request_head(server, "Transfer-Encoding: chunked\r\n", key=server.key))
        sock.sendall(f"{len(head):x}\r\n".encode() + head + b"\r\n")
        sock.setblocking(False)
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:  # keep sending until the server answers
            try:
                if sock.recv(1, socket.MSG_PEEK):
                    break
            except BlockingIOError:
                pass
            try:
                sock.sendall(f"{len(piece):x}\r\n".encode() + piece + b"\r\n")
                sent += len(piece)
            except BlockingIOError:
                time.sleep(0.005)  # the server stopped reading: its answer is on the way
            except (BrokenPipeError, ConnectionResetError):
                break
        sock.setblocking(True)
        status, headers, body = read_response(sock)
    assert status == 413
    assert_openai_error(body, "file_too_large")
    assert headers["connection"] == "close"
    assert sent < 40 * LIMIT  # it was stopped, not read to the end
    assert len(server.stt.clips) == clips_before


# --- R6 ------------------------------------------------------------------------------------


@pytest.mark.parametrize("name", list(CORPUS))
def test_each_known_good_and_bad_upload_gets_its_answer(http: httpx.Client, name: str) -> None:
    file, status, code = CORPUS[name]
    response = http.post(
        PATH,
        files={"file": (f"{name}.bin", file, "application/octet-stream")},
        data={"model": "whisper-1"},
    )
    assert response.status_code == status, response.text
    if code is None:
        assert response.json()["text"] == "hello there"
    else:
        assert_openai_error(response.content, code)


async def test_the_openai_sdk_sees_unsupported_audio_as_a_415_with_its_code(
    server: UploadServer,
) -> None:
    client = openai.AsyncOpenAI(api_key=server.key, base_url=f"{server.base_url}/v1", max_retries=0)
    async with client:
        with pytest.raises(openai.APIStatusError) as refused:
            await client.audio.transcriptions.create(
                model="whisper-1", file=("memo.wav", CORPUS["ms-adpcm-wav"][0], "audio/wav")
            )
        with pytest.raises(openai.APIStatusError) as too_long:
            await client.audio.transcriptions.create(
                model="whisper-1", file=("long.wav", CORPUS["too-long-8-bit-wav"][0], "audio/wav")
            )
    assert (refused.value.status_code, refused.value.code) == (415, "unsupported_audio_format")
    assert (too_long.value.status_code, too_long.value.code) == (413, "audio_too_long")


SEEDS = [CORPUS[name][0] for name in ("pcm-wav", "mu-law-wav", "ms-adpcm-wav", "alac-m4a")]


@settings(
    max_examples=200,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(data=st.data())
def test_mutated_uploads_never_get_a_5xx(http: httpx.Client, data: st.DataObject) -> None:
    blob = bytearray(data.draw(st.sampled_from(SEEDS), label="seed"))
    edits = st.tuples(st.integers(0, min(len(blob) - 1, 200)), st.integers(0, 255))
    for pos, value in data.draw(st.lists(edits, max_size=6), label="edits"):
        blob[pos] = value
    blob = blob[: data.draw(st.integers(0, len(blob)), label="cut")]
    response = http.post(PATH, headers=FORM, content=multipart(bytes(blob)))
    assert response.status_code in (200, 400, 413, 415), response.text
    if response.status_code != 200:
        assert set(response.json()["error"]) == {"message", "type", "param", "code"}


def test_an_upload_sent_without_a_length_but_within_the_limit_is_transcribed(
    http: httpx.Client,
) -> None:
    def body() -> Iterator[bytes]:  # a generator: httpx sends it chunked
        form = multipart(PCM_WAV)
        for start in range(0, len(form), 10_000):
            yield form[start : start + 10_000]

    response = http.post(PATH, headers=FORM, content=body())
    assert response.status_code == 200, response.text
    assert response.json()["text"] == "hello there"
