"""deploy/Caddyfile: Caddy accepts it, and run for real it ends TLS and passes WebSockets on.

The live test runs the very file (the ports and the upstream moved by its environment
placeholders, bound to loopback) in front of a stand-in upstream served by uvicorn the way
``voxdialog serve`` serves (X-Forwarded-* believed from the proxy only), and checks what that
upstream is told: https/wss, the client's real address, no header a client forged.
"""

from __future__ import annotations

import asyncio
import json
import ssl
import subprocess
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
import uvicorn
import websockets

from tests.deploy.conftest import CADDYFILE, tool, tool_env
from tests.deploy.test_compose import OPERATOR_ENV, compose
from voxdialog.testing.server import free_port


def proxy_environment() -> dict[str, str]:
    """The proxy container's environment in deploy/compose.yaml."""
    return {k: str(v) for k, v in compose()["services"]["proxy"]["environment"].items()}


def adapt(home: Path, env: dict[str, str]) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """``caddy adapt --validate``: the JSON config and Caddy's log lines."""
    result = subprocess.run(
        [tool("caddy"), "adapt", "--config", CADDYFILE, "--adapter", "caddyfile", "--validate"],
        capture_output=True,
        text=True,
        timeout=60,
        env={**tool_env(home), **env},
        check=False,
    )
    assert result.returncode == 0, result.stderr
    logs = [json.loads(line) for line in result.stderr.splitlines() if line.startswith("{")]
    return json.loads(result.stdout), logs


def _handlers(
    routes: list[dict[str, Any]],
) -> Iterator[tuple[list[dict[str, Any]], dict[str, Any]]]:
    """Every handler with the matchers of the routes it sits in (subroutes flattened)."""
    for route in routes:
        for handler in route.get("handle", []):
            if handler["handler"] == "subroute":
                for matchers, inner in _handlers(handler["routes"]):
                    yield route.get("match", []) + matchers, inner
            else:
                yield route.get("match", []), handler


def test_caddyfile_adapts_without_a_warning(tmp_path: Path) -> None:
    config, logs = adapt(tmp_path, proxy_environment())
    # Unformatted input, needless directives and the like are warnings: none are allowed.
    loud = [line for line in logs if line.get("level") not in ("info", "debug")]
    assert not loud, loud
    [server] = config["apps"]["http"]["servers"].values()
    assert server["listen"] == [":443"], "TLS on 443 (HTTP on 80 only redirects)"
    [site] = server["routes"]
    assert site["match"] == [{"host": [OPERATOR_ENV["PUBLIC_HOST"]]}]
    handlers = list(_handlers([site]))
    kinds = {h["handler"] for _, h in handlers}
    assert "encode" not in kinds, "compression would hold back streamed replies"
    proxies = [(m, h) for m, h in handlers if h["handler"] == "reverse_proxy"]
    assert proxies, "the site is proxied"
    for _, handler in proxies:
        assert handler["upstreams"] == [{"dial": proxy_environment()["UPSTREAM"]}]
        assert handler.get("flush_interval") == -1, "streams are passed on unbuffered"
    realtime = [h for m, h in proxies if any("/v1/realtime" in x.get("path", []) for x in m)]
    assert realtime, "a route for the Realtime WebSocket"
    assert realtime[0].get("stream_close_delay", 0) > 0, "a reload does not cut live sockets"
    blocked = [m for m, h in handlers if h["handler"] == "static_response"]
    assert any({"path": ["/metrics"]} in m for m in blocked), "/metrics is not public"


# --- Caddy in front of a stand-in for VoxDialog ------------------------------------------------


@dataclass
class Upstream:
    """What the stand-in was asked: one record per request or socket."""

    port: int
    seen: list[dict[str, Any]]


async def _echo_app(scope: dict[str, Any], receive: Any, send: Any, seen: list[Any]) -> None:
    if scope["type"] == "lifespan":
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                await send({"type": "lifespan.shutdown.complete"})
                return
    record = {
        "type": scope["type"],
        "path": scope["path"],
        "scheme": scope["scheme"],
        "client": scope["client"][0] if scope.get("client") else None,
        "headers": {k.decode().lower(): v.decode() for k, v in scope["headers"]},
    }
    seen.append(record)
    body = json.dumps(record)
    if scope["type"] == "http":
        while (await receive()).get("more_body"):
            pass
        await send(
            {
                "type": "http.response.start",
                "status": 200,
                "headers": [(b"content-type", b"application/json")],
            }
        )
        await send({"type": "http.response.body", "body": body.encode()})
        return
    await receive()  # websocket.connect
    await send({"type": "websocket.accept"})
    await send({"type": "websocket.send", "text": body})
    message = await receive()
    await send({"type": "websocket.send", "text": f"echo:{message.get('text')}"})
    await send({"type": "websocket.close", "code": 1000})


@pytest.fixture
def upstream() -> Iterator[Upstream]:
    seen: list[dict[str, Any]] = []

    async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
        await _echo_app(scope, receive, send, seen)

    port = free_port()
    # As `voxdialog serve` with VOXDIALOG_TRUSTED_PROXIES=["127.0.0.1"] configures uvicorn.
    config = uvicorn.Config(
        app,
        host="127.0.0.1",
        port=port,
        log_config=None,
        access_log=False,
        proxy_headers=True,
        forwarded_allow_ips="127.0.0.1",
        ws_per_message_deflate=False,
    )
    server = uvicorn.Server(config)
    thread = threading.Thread(target=lambda: asyncio.run(server.serve()), daemon=True)
    thread.start()
    deadline = time.monotonic() + 20
    while not server.started:
        assert time.monotonic() < deadline, "the stand-in upstream did not start"
        assert thread.is_alive(), "the stand-in upstream stopped"
        time.sleep(0.05)
    yield Upstream(port=port, seen=seen)
    server.should_exit = True
    thread.join(timeout=15)


@dataclass(frozen=True)
class RunningProxy:
    https_url: str
    http_url: str
    wss_url: str
    ca: Path


@pytest.fixture
def proxy(upstream: Upstream, tmp_path: Path) -> Iterator[RunningProxy]:
    https_port, http_port, admin_port = free_port(), free_port(), free_port()
    env = {
        **tool_env(tmp_path),
        "PUBLIC_HOST": "localhost",  # Caddy's own local CA issues the certificate
        "UPSTREAM": f"127.0.0.1:{upstream.port}",
        "CADDY_BIND": "127.0.0.1",
        "CADDY_HTTP_PORT": str(http_port),
        "CADDY_HTTPS_PORT": str(https_port),
        "CADDY_ADMIN": f"127.0.0.1:{admin_port}",
    }
    caddy = tool("caddy")
    log = (tmp_path / "caddy.log").open("w")
    process = subprocess.Popen(
        [caddy, "run", "--config", str(CADDYFILE), "--adapter", "caddyfile"],
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
        stdin=subprocess.DEVNULL,
    )
    ca = tmp_path / "data" / "caddy" / "pki" / "authorities" / "local" / "root.crt"
    running = RunningProxy(
        https_url=f"https://localhost:{https_port}",
        http_url=f"http://127.0.0.1:{http_port}",
        wss_url=f"wss://localhost:{https_port}",
        ca=ca,
    )
    try:
        _wait_for_tls(running, process, tmp_path / "caddy.log")
        yield running
    finally:
        process.terminate()
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=5)
        log.close()


def _wait_for_tls(proxy: RunningProxy, process: subprocess.Popen[bytes], log: Path) -> None:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if process.poll() is not None:
            pytest.fail(f"caddy exited ({process.returncode}): {log.read_text()[-2000:]}")
        if proxy.ca.is_file():
            try:
                httpx.get(f"{proxy.https_url}/", verify=_tls(proxy), timeout=2)
                return
            except (httpx.HTTPError, ssl.SSLError):
                pass
        time.sleep(0.1)
    pytest.fail(f"caddy served no TLS within 30 s: {log.read_text()[-2000:]}")


def _tls(proxy: RunningProxy) -> ssl.SSLContext:
    """Trusts Caddy's local CA only: the certificate must really be valid for localhost."""
    return ssl.create_default_context(cafile=str(proxy.ca))


def test_proxy_ends_tls_and_forwards_the_real_client(
    proxy: RunningProxy, upstream: Upstream
) -> None:
    with httpx.Client(verify=_tls(proxy), timeout=10) as client:
        # A client that forges its address and scheme is not believed.
        response = client.get(
            f"{proxy.https_url}/api/whoami",
            headers={"X-Forwarded-For": "203.0.113.9", "X-Forwarded-Proto": "http"},
        )
        assert response.status_code == 200, response.text
        seen = response.json()
        assert seen["headers"]["x-forwarded-proto"] == "https"
        assert seen["headers"]["x-forwarded-for"] == "127.0.0.1"
        assert seen["headers"]["host"] == proxy.https_url.removeprefix("https://")
        # What the server then reads, as uvicorn applies the trusted proxy's headers.
        assert (seen["scheme"], seen["client"]) == ("https", "127.0.0.1")

        metrics = client.get(f"{proxy.https_url}/metrics")
        assert metrics.status_code == 404
        assert all(r["path"] != "/metrics" for r in upstream.seen), "/metrics reached upstream"

    # Plain HTTP only redirects to https.
    redirect = httpx.get(f"{proxy.http_url}/", headers={"Host": "localhost"}, timeout=10)
    assert redirect.is_redirect, redirect.status_code
    assert redirect.headers["location"].startswith("https://localhost")


async def test_proxy_passes_the_realtime_websocket(proxy: RunningProxy, upstream: Upstream) -> None:
    url = f"{proxy.wss_url}/v1/realtime?model=local-voice"
    origin = proxy.https_url
    async with websockets.connect(url, ssl=_tls(proxy), origin=origin, open_timeout=10) as ws:
        seen = json.loads(await asyncio.wait_for(ws.recv(), timeout=10))
        await ws.send("hello")
        assert await asyncio.wait_for(ws.recv(), timeout=10) == "echo:hello"
    assert seen["type"] == "websocket"
    assert seen["path"] == "/v1/realtime"
    # The server's Origin check compares the page with a wss:// socket: it must see wss.
    assert seen["scheme"] == "wss"
    assert seen["headers"]["origin"] == origin
    assert seen["headers"]["x-forwarded-proto"] == "https"
