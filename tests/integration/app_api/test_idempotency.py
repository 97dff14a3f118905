"""``Idempotency-Key`` on the app API's writes: a retried request gets the first answer and
changes nothing again (R13), on SQLite and PostgreSQL."""

from __future__ import annotations

import asyncio

import httpx
import pytest

from tests.integration.app_api.conftest import bearer, error_of, read_all, register

pytestmark = pytest.mark.models


def keyed(token: str, key: str) -> dict[str, str]:
    return {**bearer(token), "Idempotency-Key": key}


async def test_a_retried_create_is_answered_once_and_stored_once(http: httpx.AsyncClient) -> None:
    token = await register(http)
    body = {"title": "Buy stamps"}
    first = await http.post("/api/tasks", json=body, headers=keyed(token, "retry-1"))
    again = await http.post("/api/tasks", json=body, headers=keyed(token, "retry-1"))
    assert first.status_code == again.status_code == 201
    assert again.json() == first.json()
    assert again.headers["idempotent-replayed"] == "true"
    assert "idempotent-replayed" not in first.headers
    titles = [t["title"] for t in await read_all(http, token, "/api/tasks")]
    assert titles == ["Buy stamps"]


async def test_concurrent_retries_create_one_task(http: httpx.AsyncClient) -> None:
    token = await register(http)
    answers = await asyncio.gather(
        *(
            http.post("/api/tasks", json={"title": "Once"}, headers=keyed(token, "race"))
            for _ in range(5)
        )
    )
    statuses = sorted(a.status_code for a in answers)
    assert statuses.count(201) >= 1
    assert set(statuses) <= {201, 409}
    assert [t["title"] for t in await read_all(http, token, "/api/tasks")] == ["Once"]


async def test_a_key_reused_for_another_request_is_refused(http: httpx.AsyncClient) -> None:
    token = await register(http)
    await http.post("/api/tasks", json={"title": "A"}, headers=keyed(token, "k"))
    other = await http.post("/api/tasks", json={"title": "B"}, headers=keyed(token, "k"))
    assert other.status_code == 422
    assert error_of(other)["code"] == "idempotency_key_reused"
    assert [t["title"] for t in await read_all(http, token, "/api/tasks")] == ["A"]


async def test_keys_belong_to_their_credential(http: httpx.AsyncClient) -> None:
    ann, bob = await register(http), await register(http)
    for token in (ann, bob):
        answer = await http.post("/api/tasks", json={"title": "Mine"}, headers=keyed(token, "same"))
        assert answer.status_code == 201
        assert "idempotent-replayed" not in answer.headers
    assert len(await read_all(http, bob, "/api/tasks")) == 1


async def test_refused_requests_are_replayed_too_and_bad_keys_are_refused(
    http: httpx.AsyncClient,
) -> None:
    token = await register(http)
    bad = {"title": ""}
    first = await http.post("/api/tasks", json=bad, headers=keyed(token, "bad"))
    again = await http.post("/api/tasks", json=bad, headers=keyed(token, "bad"))
    assert first.status_code == again.status_code == 400
    assert again.json() == first.json()
    assert again.headers["idempotent-replayed"] == "true"
    long_key = await http.post("/api/tasks", json={"title": "x"}, headers=keyed(token, "k" * 300))
    assert long_key.status_code == 400
    assert error_of(long_key)["param"] == "Idempotency-Key"


async def test_without_a_key_each_request_is_its_own(http: httpx.AsyncClient) -> None:
    token = await register(http)
    for _ in range(2):
        answer = await http.post("/api/tasks", json={"title": "Twice"}, headers=bearer(token))
        assert answer.status_code == 201
    assert len(await read_all(http, token, "/api/tasks")) == 2
