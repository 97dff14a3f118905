"""R14: with a key set, conversation text never reaches the database files or logs in clear."""

from __future__ import annotations

import asyncio
import logging
import sqlite3
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from openai import AsyncOpenAI
from pydantic import SecretStr

from tests.integration.realtime_client import collect_until
from voxdialog.cli import main as cli_main
from voxdialog.security.crypto import generate_key
from voxdialog.settings import Settings
from voxdialog.testing.server import BackgroundServer, free_port

pytestmark = pytest.mark.models

CANARY = "Quixotic marmalade zeppelin"
TASK_CANARY = "platypus xylophone"
KEY_ONE = f"k1:{generate_key()}"


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[BackgroundServer]:
    settings = Settings(
        data_dir=tmp_path_factory.mktemp("sealed"),
        port=free_port(),
        encryption_key=SecretStr(KEY_ONE),
    )
    background = BackgroundServer(settings)
    background.start()
    yield background
    background.stop()


def _files(data_dir: Path) -> list[Path]:
    return [p for p in data_dir.rglob("*") if p.is_file()]


async def _talk(server: BackgroundServer, text: str) -> str:
    client = AsyncOpenAI(base_url=f"{server.base_url}/v1", api_key=server.api_key)
    async with client.realtime.connect(model="local-voice") as conn:
        await conn.session.update(session={"type": "realtime", "output_modalities": ["text"]})
        await conn.conversation.item.create(
            item={
                "type": "message",
                "role": "user",
                "content": [{"type": "input_text", "text": text}],
            }
        )
        await conn.response.create()
        events = await collect_until(conn, {"response.done"}, timeout=60)
    session_id: str = next(e for e in events if e.type == "session.created").session.id
    return session_id


def _conversations(server: BackgroundServer) -> list[dict[str, Any]]:
    response = httpx.get(
        f"{server.base_url}/api/conversations",
        headers={"Authorization": f"Bearer {server.api_key}"},
    )
    data: list[dict[str, Any]] = response.json()["data"]
    return data


def _messages(server: BackgroundServer, session_id: str) -> httpx.Response:
    return httpx.get(
        f"{server.base_url}/api/conversations/{session_id}",
        headers={"Authorization": f"Bearer {server.api_key}"},
    )


async def test_canary_text_is_sealed_in_the_database_files_and_logs(
    server: BackgroundServer, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    session_id = await _talk(server, f"Tell me about the {CANARY}.")
    read = _messages(server, session_id)
    assert read.status_code == 200, read.text
    assert any(CANARY in m["text"] for m in read.json()["messages"])  # readable through the API
    listed = _conversations(server)
    assert (
        next(c for c in listed if c["id"] == session_id)["title"] == f"Tell me about the {CANARY}."
    )
    await asyncio.sleep(0)
    data_dir = server.settings.data_dir
    hits = [p.name for p in _files(data_dir) if CANARY.lower().encode() in p.read_bytes().lower()]
    assert hits == []  # database, WAL and every other file in the data dir
    assert CANARY.lower() not in caplog.text.lower()


async def test_a_task_added_by_voice_keeps_its_title_sealed(server: BackgroundServer) -> None:
    await _talk(server, f"Add a task to feed the {TASK_CANARY}")
    async with httpx.AsyncClient(base_url=server.base_url) as http:
        listed = await http.get("/api/tasks", headers={"Authorization": f"Bearer {server.api_key}"})
    tasks = listed.json()["data"]
    assert any(TASK_CANARY in t["title"].casefold() for t in tasks)  # readable through the API
    data_dir = server.settings.data_dir
    hits = [p.name for p in _files(data_dir) if TASK_CANARY.encode() in p.read_bytes().lower()]
    assert hits == []  # the database and its -wal hold the title sealed only


def _db(server: BackgroundServer) -> Path:
    return server.settings.data_dir / "voxdialog.db"


async def test_a_tampered_row_is_reported_not_shown(server: BackgroundServer) -> None:
    session_id = await _talk(server, "Tell me a fact about otters.")
    with sqlite3.connect(_db(server)) as conn:
        (row_id, text) = conn.execute(
            "SELECT id, text FROM messages WHERE session_id = ? AND role = 'user'", (session_id,)
        ).fetchone()
        # Flip one character of the ciphertext's payload.
        flipped = text[:-5] + ("A" if text[-5] != "A" else "B") + text[-4:]
        conn.execute("UPDATE messages SET text = ? WHERE id = ?", (flipped, row_id))
    read = _messages(server, session_id)
    assert read.status_code == 500
    assert read.json()["error"]["code"] == "stored_data_unreadable"
    assert "otters" not in read.text


def _stored_texts(db_file: Path) -> list[Any]:
    with sqlite3.connect(db_file) as conn:
        rows = conn.execute("SELECT text FROM messages UNION ALL SELECT text FROM voice_commands")
        return [r[0] for r in rows]


async def test_rotate_key_re_encrypts_every_row(
    server: BackgroundServer, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    session_id = await _talk(server, "Add a task to renew the passport")
    # A copy of the server's database, so the live server is not disturbed.
    copy_dir = tmp_path / "data"
    copy_dir.mkdir()
    with sqlite3.connect(_db(server)) as source, sqlite3.connect(copy_dir / "voxdialog.db") as dst:
        source.backup(dst)
        # Keep one intact conversation (another test tampers with a row on purpose).
        dst.execute("DELETE FROM voice_sessions WHERE id != ?", (session_id,))
        dst.execute("DELETE FROM messages WHERE session_id != ?", (session_id,))
        dst.execute("DELETE FROM voice_commands WHERE session_id != ?", (session_id,))
    before = _stored_texts(copy_dir / "voxdialog.db")
    assert before
    assert all(t.startswith("enc:v1:k1:") for t in before)
    monkeypatch.setenv("VOXDIALOG_ENCRYPTION_KEY", f"k2:{generate_key()},{KEY_ONE}")
    # The command runs its own event loop: give it a thread.
    assert await asyncio.to_thread(cli_main, ["rotate-key", "--data-dir", str(copy_dir)]) == 0
    after = _stored_texts(copy_dir / "voxdialog.db")
    assert len(after) == len(before)
    assert all(t.startswith("enc:v1:k2:") for t in after)
