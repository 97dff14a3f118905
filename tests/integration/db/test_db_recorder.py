"""SqlTurnRecorder and the session read helpers, on SQLite and PostgreSQL."""

from __future__ import annotations

import asyncio
import datetime as dt
import math
from collections.abc import Awaitable, Callable

import pytest

from voxdialog.brain.base import CommandOutcome
from voxdialog.brain.tasks import Priority
from voxdialog.db.engine import Database
from voxdialog.db.errors import SessionConflictError, UnknownSessionError
from voxdialog.db.recorder import SqlTurnRecorder
from voxdialog.db.repos.sessions import (
    close_stale_sessions,
    get_session,
    list_commands,
    list_messages,
    list_sessions,
)
from voxdialog.pipeline.recorder import MessageRecord, SessionInfo, TurnRecorder
from voxdialog.security.principal import Scope

MakeScope = Callable[..., Awaitable[Scope]]


@pytest.fixture
def recorder(db: Database) -> SqlTurnRecorder:
    return SqlTurnRecorder(db)


@pytest.fixture
async def scope(make_scope: MakeScope) -> Scope:
    return await make_scope()


def _info(session_id: str, scope: Scope) -> SessionInfo:
    return SessionInfo(session_id=session_id, scope=scope, model="local-voice", agent="helper")


def test_sql_turn_recorder_satisfies_the_turn_recorder_protocol(
    recorder: SqlTurnRecorder,
) -> None:
    typed: TurnRecorder = recorder
    assert typed is recorder


async def test_session_is_stored_active_then_ended(
    db: Database, recorder: SqlTurnRecorder, scope: Scope
) -> None:
    await recorder.session_started(_info("sess_1", scope))
    started = await get_session(db, scope, "sess_1")
    assert started is not None
    assert (started.status, started.ended_at, started.agent, started.model, started.client) == (
        "active",
        None,
        "helper",
        "local-voice",
        "realtime",
    )
    assert started.started_at.tzinfo == dt.UTC

    await recorder.session_ended("sess_1")
    ended = await get_session(db, scope, "sess_1")
    assert ended is not None
    assert ended.status == "ended"
    assert ended.ended_at is not None
    assert ended.ended_at >= ended.started_at
    await recorder.session_ended("sess_1")
    assert await get_session(db, scope, "sess_1") == ended


async def test_messages_are_stored_in_order_with_their_timings(
    db: Database, recorder: SqlTurnRecorder, scope: Scope
) -> None:
    await recorder.session_started(_info("sess_1", scope))
    await recorder.message(
        MessageRecord(
            "sess_1", "item_u", "user", "add milk", audio_ms=1200.0, timings={"stt_ms": 85.5}
        )
    )
    await recorder.message(MessageRecord("sess_1", "item_a", "assistant", "Added milk."))

    stored = await list_messages(db, scope, "sess_1")
    assert [(m.item_id, m.role, m.text, m.seq) for m in stored] == [
        ("item_u", "user", "add milk", 1),
        ("item_a", "assistant", "Added milk.", 2),
    ]
    assert stored[0].timings == {"stt_ms": 85.5}
    assert stored[0].audio_ms == 1200.0
    assert stored[1].status == "completed"


async def test_recording_the_same_item_again_replaces_it_and_keeps_its_place(
    db: Database, recorder: SqlTurnRecorder, scope: Scope
) -> None:
    await recorder.session_started(_info("sess_1", scope))
    await recorder.message(MessageRecord("sess_1", "item_a", "assistant", "Sure, I will add"))
    await recorder.message(MessageRecord("sess_1", "item_u", "user", "stop"))
    await recorder.message(
        MessageRecord(
            "sess_1",
            "item_a",
            "assistant",
            "Sure,",
            status="incomplete",
            audio_ms=400.0,
            timings={"tts_ms": 30.0},
        )
    )

    stored = await list_messages(db, scope, "sess_1")
    assert [(m.item_id, m.text, m.status, m.seq) for m in stored] == [
        ("item_a", "Sure,", "incomplete", 1),
        ("item_u", "stop", "completed", 2),
    ]
    assert stored[0].timings == {"tts_ms": 30.0}
    assert stored[0].updated_at >= stored[0].created_at


async def test_deleted_message_is_removed_and_later_items_keep_their_order(
    db: Database, recorder: SqlTurnRecorder, scope: Scope
) -> None:
    await recorder.session_started(_info("sess_1", scope))
    for n in range(3):
        await recorder.message(MessageRecord("sess_1", f"item_{n}", "user", f"text {n}"))
    await recorder.message_deleted("sess_1", "item_1")
    await recorder.message_deleted("sess_1", "never-stored")
    await recorder.message(MessageRecord("sess_1", "item_3", "user", "text 3"))

    stored = await list_messages(db, scope, "sess_1")
    assert [(m.item_id, m.seq) for m in stored] == [("item_0", 1), ("item_2", 3), ("item_3", 4)]


async def test_command_is_stored_with_json_safe_entities(
    db: Database, recorder: SqlTurnRecorder, scope: Scope
) -> None:
    await recorder.session_started(_info("sess_1", scope))
    outcome = CommandOutcome(
        intent="add_task",
        confidence=0.92,
        success=True,
        entities={
            "title": "milk",
            "due_date": dt.date(2030, 3, 4),
            "due_time": dt.time(9, 15),
            "priority": Priority.HIGH,
            "tags": ("a", "b"),
        },
        processing_ms=12.5,
    )
    await recorder.command("sess_1", "item_u", "add milk tomorrow", outcome)
    failed = CommandOutcome(intent="delete_task", confidence=0.4, success=False, error="not found")
    await recorder.command("sess_1", "item_v", "delete the thing", failed)

    commands = await list_commands(db, scope, "sess_1")
    assert [(c.intent, c.success, c.error, c.message_item_id) for c in commands] == [
        ("add_task", True, None, "item_u"),
        ("delete_task", False, "not found", "item_v"),
    ]
    first = commands[0]
    assert (first.text, first.confidence, first.processing_ms) == ("add milk tomorrow", 0.92, 12.5)
    assert first.entities == {
        "title": "milk",
        "due_date": "2030-03-04",
        "due_time": "09:15:00",
        "priority": "high",
        "tags": ["a", "b"],
    }


async def test_messages_and_commands_of_an_unknown_session_are_refused(
    recorder: SqlTurnRecorder,
) -> None:
    with pytest.raises(UnknownSessionError):
        await recorder.message(MessageRecord("sess_missing", "item_1", "user", "hello"))
    outcome = CommandOutcome(intent="greet", confidence=1.0, success=True)
    with pytest.raises(UnknownSessionError):
        await recorder.command("sess_missing", "item_1", "hello", outcome)


async def test_a_session_id_of_another_user_cannot_be_taken_over(
    db: Database, recorder: SqlTurnRecorder, make_scope: MakeScope, scope: Scope
) -> None:
    other = await make_scope(tenant_id=scope.tenant_id)
    await recorder.session_started(_info("sess_1", scope))
    with pytest.raises(SessionConflictError):
        await recorder.session_started(_info("sess_1", other))
    stored = await get_session(db, scope, "sess_1")
    assert stored is not None
    assert stored.user_id == scope.user_id


async def test_read_helpers_only_show_the_scopes_own_sessions(
    db: Database, recorder: SqlTurnRecorder, make_scope: MakeScope, scope: Scope
) -> None:
    other = await make_scope(tenant_id=scope.tenant_id)
    await recorder.session_started(_info("sess_mine", scope))
    await recorder.message(MessageRecord("sess_mine", "item_1", "user", "private"))
    outcome = CommandOutcome(intent="greet", confidence=1.0, success=True)
    await recorder.command("sess_mine", "item_1", "private", outcome)

    assert await get_session(db, other, "sess_mine") is None
    assert await list_messages(db, other, "sess_mine") == []
    assert await list_commands(db, other, "sess_mine") == []
    assert await list_sessions(db, other) == []
    assert [s.id for s in await list_sessions(db, scope)] == ["sess_mine"]


async def test_sessions_left_active_by_a_crash_become_interrupted(
    db: Database, recorder: SqlTurnRecorder, scope: Scope
) -> None:
    await recorder.session_started(_info("sess_crashed", scope))
    await recorder.message(MessageRecord("sess_crashed", "item_1", "user", "half a"))
    await recorder.session_started(_info("sess_silent", scope))
    await recorder.session_started(_info("sess_done", scope))
    await recorder.message(MessageRecord("sess_done", "item_1", "user", "bye"))
    await recorder.session_ended("sess_done")
    done_before = await get_session(db, scope, "sess_done")

    assert await close_stale_sessions(db) == 2
    assert await close_stale_sessions(db) == 0

    crashed = await get_session(db, scope, "sess_crashed")
    silent = await get_session(db, scope, "sess_silent")
    assert crashed is not None
    assert silent is not None
    assert (crashed.status, silent.status) == ("interrupted", "interrupted")
    # The end is the last thing recorded in that session, else its start.
    last_message = (await list_messages(db, scope, "sess_crashed"))[-1]
    assert crashed.ended_at == last_message.updated_at
    assert silent.ended_at == silent.started_at
    assert await get_session(db, scope, "sess_done") == done_before


async def test_concurrent_sessions_record_without_losing_or_reordering_messages(
    db: Database, recorder: SqlTurnRecorder, scope: Scope
) -> None:
    sessions = [f"sess_{n}" for n in range(8)]

    async def converse(session_id: str) -> None:
        await recorder.session_started(_info(session_id, scope))
        for turn in range(4):
            await recorder.message(MessageRecord(session_id, f"u{turn}", "user", f"q{turn}"))
            await recorder.message(MessageRecord(session_id, f"a{turn}", "assistant", "..."))
            await recorder.message(MessageRecord(session_id, f"a{turn}", "assistant", f"r{turn}"))
        await recorder.session_ended(session_id)

    await asyncio.gather(*(converse(s) for s in sessions))

    for session_id in sessions:
        stored = await list_messages(db, scope, session_id)
        assert [m.text for m in stored] == [t for n in range(4) for t in (f"q{n}", f"r{n}")]
        assert [m.seq for m in stored] == list(range(1, 9))
    assert {s.status for s in await list_sessions(db, scope)} == {"ended"}


async def test_concurrent_saves_into_one_session_each_get_their_own_place(
    db: Database, recorder: SqlTurnRecorder, scope: Scope
) -> None:
    await recorder.session_started(_info("sess_1", scope))
    items = [f"item_{n}" for n in range(10)]
    await asyncio.gather(
        *(recorder.message(MessageRecord("sess_1", item, "user", item)) for item in items)
    )

    stored = await list_messages(db, scope, "sess_1")
    assert [m.seq for m in stored] == list(range(1, 11))
    assert sorted(m.item_id for m in stored) == sorted(items)


async def test_concurrent_starts_of_one_session_id_leave_one_active_session(
    db: Database, recorder: SqlTurnRecorder, scope: Scope
) -> None:
    await asyncio.gather(*(recorder.session_started(_info("sess_1", scope)) for _ in range(4)))
    assert [(s.id, s.status) for s in await list_sessions(db, scope)] == [("sess_1", "active")]


async def test_of_two_users_starting_one_session_id_at_once_exactly_one_gets_it(
    db: Database, recorder: SqlTurnRecorder, make_scope: MakeScope, scope: Scope
) -> None:
    other = await make_scope(tenant_id=scope.tenant_id)
    results = await asyncio.gather(
        recorder.session_started(_info("sess_1", scope)),
        recorder.session_started(_info("sess_1", other)),
        return_exceptions=True,
    )
    refused = [r for r in results if isinstance(r, SessionConflictError)]
    assert len(refused) == 1
    assert results.count(None) == 1
    owners = [s.user_id for user in (scope, other) for s in await list_sessions(db, user)]
    assert len(owners) == 1


async def test_free_form_labels_longer_than_their_columns_are_cut(
    db: Database, recorder: SqlTurnRecorder, scope: Scope
) -> None:
    info = SessionInfo(
        session_id="sess_1", scope=scope, model="m" * 300, agent="a" * 250, client="c" * 40
    )
    await recorder.session_started(info)
    outcome = CommandOutcome(intent="i" * 100, confidence=1.0, success=True)
    await recorder.command("sess_1", "item_1", "hello", outcome)

    stored = await get_session(db, scope, "sess_1")
    assert stored is not None
    assert (stored.model, stored.agent, stored.client) == ("m" * 200, "a" * 200, "c" * 32)
    [command] = await list_commands(db, scope, "sess_1")
    assert command.intent == "i" * 64


async def test_nul_characters_and_non_finite_numbers_are_left_out_of_records(
    db: Database, recorder: SqlTurnRecorder, scope: Scope
) -> None:
    await recorder.session_started(_info("sess_1", scope))
    await recorder.message(
        MessageRecord(
            "sess_1",
            "item_1",
            "user",
            "add\x00 milk",
            audio_ms=math.nan,
            timings={"stt_ms": 85.5, "llm_ms": math.nan, "tts_ms": math.inf},
        )
    )
    outcome = CommandOutcome(
        intent="add_task",
        confidence=0.9,
        success=False,
        entities={"title": "mi\x00lk", "weight": math.inf},
        error="bad\x00 title",
    )
    await recorder.command("sess_1", "item_1", "add\x00 milk", outcome)

    [message] = await list_messages(db, scope, "sess_1")
    assert (message.text, message.audio_ms, message.timings) == ("add milk", None, {"stt_ms": 85.5})
    [command] = await list_commands(db, scope, "sess_1")
    assert (command.text, command.error) == ("add milk", "bad title")
    assert command.entities == {"title": "mi\x00lk", "weight": None}
