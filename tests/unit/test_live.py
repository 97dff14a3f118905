"""The registry of open Realtime sessions: process cap, per-user cap, duplicate ids."""

from __future__ import annotations

import pytest

from voxdialog.live import LiveSession, LiveSessions, SessionBusy, TooManySessions


def _session(session_id: str, user: str = "u1", tenant: str = "t1") -> LiveSession:
    return LiveSession(session_id, tenant, user, "default", "realtime")


def test_a_user_cannot_open_more_than_the_per_user_cap() -> None:
    live = LiveSessions(limit=10, per_user_limit=2)
    live.add(_session("a"))
    live.add(_session("b"))
    with pytest.raises(TooManySessions) as refused:
        live.add(_session("c"))
    live.add(_session("d", user="u2"))  # another user is not affected
    assert refused.value.per_user
    assert live.active == {"a", "b", "d"}


def test_the_process_cap_counts_every_user() -> None:
    live = LiveSessions(limit=2, per_user_limit=5)
    live.add(_session("a", user="u1"))
    live.add(_session("b", user="u2"))
    with pytest.raises(TooManySessions) as refused:
        live.add(_session("c", user="u3"))
    assert not refused.value.per_user


def test_an_open_id_cannot_be_opened_twice_and_removal_frees_it() -> None:
    live = LiveSessions(limit=5)
    live.add(_session("a"))
    with pytest.raises(SessionBusy):
        live.add(_session("a"))
    live.remove("a")
    live.add(_session("a"))
    assert live.active == {"a"}


def test_admins_see_their_tenant_or_everything() -> None:
    live = LiveSessions(limit=5)
    live.add(_session("a", tenant="t1"))
    live.add(_session("b", user="u2", tenant="t2"))
    assert [s.session_id for s in live.visible_to("t1")] == ["a"]
    assert {s.session_id for s in live.visible_to(None)} == {"a", "b"}
