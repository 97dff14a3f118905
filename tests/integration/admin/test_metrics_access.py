"""Process-wide figures are for operators: /metrics and /api/admin/metrics keep tenants out.

The counters of one process sum every tenant's sessions and turns, so a tenant admin learning
them learns about other tenants; the public learning them learns about everyone.
"""

from __future__ import annotations

from typing import Any

import httpx
import pytest
from openai import AsyncOpenAI

from tests.integration.admin.conftest import METRICS_TOKEN, Tenants
from tests.integration.conftest import LiveServer
from voxdialog.testing.seed import bearer

pytestmark = pytest.mark.models


@pytest.mark.parametrize(
    ("who", "status"),
    [("nobody", 401), ("wrong token", 401), ("tenant admin", 403), ("member", 403)],
)
def test_metrics_refuse_the_public_and_tenants(
    http: httpx.Client, tenants: Tenants, who: str, status: int
) -> None:
    headers = {
        "nobody": {},
        "wrong token": bearer(METRICS_TOKEN + "x"),
        "tenant admin": tenants.admin_a.headers,
        "member": tenants.member_a.headers,
    }[who]
    response = http.get("/metrics", headers=headers)
    assert response.status_code == status
    assert "voxdialog_" not in response.text


@pytest.mark.parametrize("who", ["metrics token", "operator"])
def test_metrics_answer_the_token_and_operators(
    http: httpx.Client, operator: dict[str, str], who: str
) -> None:
    headers = bearer(METRICS_TOKEN) if who == "metrics token" else operator
    response = http.get("/metrics", headers=headers)
    assert response.status_code == 200
    assert "voxdialog_" in response.text


def _metrics(http: httpx.Client, headers: dict[str, str]) -> dict[str, Any]:
    response = http.get("/api/admin/metrics", headers=headers)
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


async def test_a_tenant_admin_sees_its_own_sessions_not_the_process_figures(
    admin_server: LiveServer, http: httpx.Client, tenants: Tenants, operator: dict[str, str]
) -> None:
    api = AsyncOpenAI(api_key=tenants.admin_b.access_token, base_url=f"{admin_server.base_url}/v1")
    async with api, api.realtime.connect(model="local-voice") as conn:
        assert (await conn.recv()).type == "session.created"
        # Tenant B has a session open; tenant A's admin must not learn of it.
        seen_by_a = _metrics(http, tenants.admin_a.headers)
        seen_by_b = _metrics(http, tenants.admin_b.headers)
        seen_by_operator = _metrics(http, operator)
    assert seen_by_a["active_sessions"] == 0
    assert seen_by_b["active_sessions"] == 1
    assert seen_by_operator["active_sessions"] >= 1
    for tenant_view in (seen_by_a, seen_by_b):
        assert tenant_view["stages"] == []
        assert tenant_view["turns"] == {}
        assert tenant_view["audio_frames"]["received"] == 0
    assert len(seen_by_operator["stages"]) == 5
