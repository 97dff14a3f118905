"""``voxdialog serve --ssl-certfile/--ssl-keyfile``: the API and the Realtime socket over TLS.

A browser grants the microphone only on HTTPS (or localhost), so a server reached by any other
name must speak TLS itself or sit behind a proxy that does.
"""

from __future__ import annotations

import datetime as dt
import os
import ssl
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest
import websockets
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from voxdialog.testing.server import free_port

pytestmark = pytest.mark.models


def self_signed(folder: Path) -> tuple[Path, Path]:
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "localhost")])
    now = dt.datetime.now(dt.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=1))
        .not_valid_after(now + dt.timedelta(days=1))
        .add_extension(x509.SubjectAlternativeName([x509.DNSName("localhost")]), critical=False)
        .sign(key, hashes.SHA256())
    )
    cert_path, key_path = folder / "cert.pem", folder / "key.pem"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    return cert_path, key_path


async def test_serve_speaks_https_and_wss(tmp_path: Path) -> None:
    cert, key = self_signed(tmp_path)
    port = free_port()
    command = [sys.executable, "-m", "voxdialog", "serve", "--workers", "1", "--port", str(port)]
    command += ["--data-dir", str(tmp_path / "data"), "--ssl-certfile", str(cert)]
    command += ["--ssl-keyfile", str(key)]
    process = subprocess.Popen(  # noqa: ASYNC220 - started once, waited for below
        command, env=dict(os.environ), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    trust = ssl.create_default_context(cafile=str(cert))
    base = f"https://localhost:{port}"
    try:
        async with httpx.AsyncClient(verify=trust, timeout=2) as http:
            for _ in range(600):
                assert process.poll() is None, "the server exited while starting"
                try:
                    if (await http.get(f"{base}/readyz")).status_code == 200:
                        break
                except httpx.HTTPError:
                    time.sleep(0.2)  # noqa: ASYNC251 - nothing else runs meanwhile
            reply = await http.get(f"{base}/healthz")
        assert reply.status_code == 200
        api_key = (tmp_path / "data" / "local-api-key").read_text().strip()
        async with websockets.connect(
            f"wss://localhost:{port}/v1/realtime?model=local-voice",
            ssl=trust,
            additional_headers={"Authorization": f"Bearer {api_key}"},
        ) as ws:
            assert '"session.created"' in str(await ws.recv())
        # Plain HTTP on the TLS port gets no answer as if it were HTTP.
        with pytest.raises(httpx.HTTPError):
            httpx.get(f"http://localhost:{port}/healthz", timeout=2)  # noqa: ASYNC210
    finally:
        process.terminate()
        process.wait(timeout=30)


def test_a_missing_certificate_is_refused_before_anything_loads(tmp_path: Path) -> None:
    command = [sys.executable, "-m", "voxdialog", "serve", "--ssl-certfile", "nope.pem"]
    command += ["--data-dir", str(tmp_path / "data")]
    done = subprocess.run(command, capture_output=True, text=True, timeout=60, check=False)
    assert done.returncode == 2
    assert "nope.pem: no such file" in done.stderr
    assert not (tmp_path / "data").exists()
