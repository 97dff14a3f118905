"""The registry of open Realtime sessions: process cap, per-user cap, duplicate ids."""

from __future__ import annotations

import pytest

from voxdialog.live import LiveSession, LiveSessions, SessionBusy, TooManySessions


def _session(session_id: str, user: str = "u1", tenant: str = "t1") -> LiveSession:
    return LiveSession(session_id, tenant, user, "default", "realtime")


async def test_a_user_cannot_open_more_than_the_per_user_cap() -> None:
    live = LiveSessions(limit=10, per_user_limit=2)
    await live.add(_session("a"))
    await live.add(_session("b"))
    with pytest.raises(TooManySessions) as refused:
        await live.add(_session("c"))
    await live.add(_session("d", user="u2"))  # another user is not affected
    assert refused.value.per_user
    assert live.active == {"a", "b", "d"}


async def test_the_process_cap_counts_every_user() -> None:
    live = LiveSessions(limit=2, per_user_limit=5)
    await live.add(_session("a", user="u1"))
    await live.add(_session("b", user="u2"))
    with pytest.raises(TooManySessions) as refused:
        await live.add(_session("c", user="u3"))
    assert not refused.value.per_user


async def test_an_open_id_cannot_be_opened_twice_and_removal_frees_it() -> None:
    live = LiveSessions(limit=5)
    await live.add(_session("a"))
    with pytest.raises(SessionBusy):
        await live.add(_session("a"))
    live.remove("a")
    await live.add(_session("a"))
    assert live.active == {"a"}


async def test_admins_see_their_tenant_or_everything() -> None:
    live = LiveSessions(limit=5)
    await live.add(_session("a", tenant="t1"))
    await live.add(_session("b", user="u2", tenant="t2"))
    assert [s.session_id for s in live.visible_to("t1")] == ["a"]
    assert {s.session_id for s in live.visible_to(None)} == {"a", "b"}


async def test_the_same_user_takes_over_an_open_session_once_it_has_ended() -> None:
    live = LiveSessions(limit=10)
    old = _session("a")
    # The connection ends when asked, as a RealtimeConnection does.
    old.take_over = lambda: live.remove("a")
    await live.add(old)
    assert await live.take_over("a", "u1", timeout_s=1.0)
    assert live.active == set()
    assert await live.take_over("never-open", "u1", timeout_s=1.0)


async def test_another_user_or_a_session_that_will_not_end_is_not_taken_over() -> None:
    live = LiveSessions(limit=10)
    await live.add(_session("a", user="u1"))
    assert not await live.take_over("a", "u2", timeout_s=1.0)
    assert not await live.take_over("a", "u1", timeout_s=0.05)
    assert live.active == {"a"}
