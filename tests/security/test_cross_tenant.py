"""R9: only tenant A's own users reach tenant A's objects, over HTTP and the Realtime socket.

Tenant A's admin seeds one object of every kind through the API (an agent, a project, a task,
an API key, a voice conversation, a member), then every operation in the live
``/openapi.json`` with a path parameter under ``/api/`` is called on those objects with every
credential that is not A's own: tenant B's token and API key, none, an expired token, A's
refresh token and WebSocket ticket used as access tokens, and A's member M. None may succeed;
another tenant gets exactly the 404 a missing object gets (no existence oracle), and A's
objects read the same afterwards. A's own calls are the positive control: they must succeed,
so the ids and bodies the matrix sends are known to be right.

Every list under ``/api`` is read page by page by each tenant's admin and must hold no id of
the other tenant, while holding all of the reader's own seeded rows.
"""

from __future__ import annotations

import asyncio
import json
import time
import uuid
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

import httpx
import pytest
from openai import AsyncOpenAI
from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosed

from tests.integration.conftest import LiveServer
from tests.integration.realtime_client import collect_until
from tests.security.conftest import Report
from voxdialog.runtime import JWT_KEY_FILE
from voxdialog.security.jwt import ACCESS, JwtService
from voxdialog.testing.seed import Account, add_user, bearer, create, create_many, register

pytestmark = pytest.mark.models

#: Rows per tenant in each list that can be seeded through the API.
LIST_SEED = 50
LIST_KINDS = ("agent", "project", "task")
#: The kind of tenant A's object that fills each path parameter.
PARAM_KINDS = {
    "agent_id": "agent",
    "project_id": "project",
    "task_id": "task",
    "key_id": "api_key",
    "conversation_id": "conversation",
    "session_id": "conversation",
    "user_id": "member",
}
#: A valid change per kind, sent to the operations that take a body.
CHANGES = {
    "agent": {"description": "changed from outside"},
    "project": {"name": "changed from outside"},
    "task": {"title": "changed from outside"},
    "member": {"display_name": "changed from outside"},
}
_MAX_PAGES = 100
#: Fields that describe the read itself, not the object.
_VOLATILE = ("exported_at",)


@dataclass(frozen=True, slots=True)
class Operation:
    """One operation of the OpenAPI document."""

    method: str
    path: str
    path_params: tuple[str, ...]
    query_params: Mapping[str, Mapping[str, Any]]
    has_body: bool

    @property
    def label(self) -> str:
        """``METHOD /path``, as schemathesis names it."""
        return f"{self.method} {self.path}"

    @property
    def kind(self) -> str:
        """The kind of object the (last) path parameter names."""
        return PARAM_KINDS[self.path_params[-1]]

    @property
    def admin(self) -> bool:
        """Whether the operation is for tenant admins only."""
        return self.path.startswith("/api/admin/")

    def url(self, ids: Mapping[str, str]) -> str:
        """The path with each parameter replaced by the id of its kind."""
        path = self.path
        for name in self.path_params:
            path = path.replace(f"{{{name}}}", ids[PARAM_KINDS[name]])
        return path

    def body(self) -> dict[str, Any] | None:
        """A valid change for operations that take a body."""
        return dict(CHANGES.get(self.kind, {})) if self.has_body else None


def api_operations(spec: Mapping[str, Any]) -> list[Operation]:
    """Every operation under ``/api/`` in the OpenAPI document."""
    found = []
    for path, item in spec["paths"].items():
        if not path.startswith("/api/"):
            continue
        for method, operation in item.items():
            params = operation.get("parameters", [])
            found.append(
                Operation(
                    method=method.upper(),
                    path=path,
                    path_params=tuple(p["name"] for p in params if p["in"] == "path"),
                    query_params={
                        p["name"]: p.get("schema", {}) for p in params if p["in"] == "query"
                    },
                    has_body="requestBody" in operation,
                )
            )
    return found


@dataclass(frozen=True, slots=True)
class Credential:
    """A way of calling that is not tenant A's own, and what it must get."""

    name: str
    headers: Mapping[str, str]
    expect: Callable[[Operation], int | None]


def _always(status: int) -> Callable[[Operation], int | None]:
    return lambda operation: status


def _member_expects(operation: Operation) -> int | None:
    """M is in tenant A: admin routes are a role denial; A's personal objects do not exist."""
    if operation.admin:
        return 403
    if operation.kind == "agent":
        # A tenant's agents are shared with all its members (read), changed by creator or admin.
        return None if operation.method == "GET" else 403
    return 404


@dataclass(slots=True)
class World:
    """Two seeded tenants on the live server.

    Attributes:
        a: Tenant A's admin, who owns every object the matrix aims at.
        b: Tenant B's admin.
        member: M, a member of tenant A.
        objects: Tenant A's object of each kind that the matrix aims at.
        spares: Another object of each kind, for A's own deletes (the positive controls).
        owned: Every id that belongs to each tenant (``"A"``, ``"B"``).
        listed: The ids seeded in bulk per tenant and kind, for the list checks.
        credentials: Every way of calling that is not tenant A's own.
    """

    a: Account
    b: Account
    member: Account
    objects: dict[str, str]
    spares: dict[str, str]
    owned: dict[str, set[str]]
    listed: dict[str, dict[str, list[str]]]
    credentials: list[Credential] = field(default_factory=list)


async def _typed_conversation(server: LiveServer, token: str, text: str) -> str:
    """One Realtime session with one typed turn (the official SDK); returns its id."""
    async with (
        AsyncOpenAI(base_url=f"{server.base_url}/v1", api_key=token) as client,
        client.realtime.connect(model="local-voice") as conn,
    ):
        first = await conn.recv()
        assert first.type == "session.created"
        await conn.conversation.item.create(
            item={
                "type": "message",
                "role": "user",
                "content": [{"type": "input_text", "text": text}],
            }
        )
        await conn.response.create()
        events = await collect_until(conn, {"response.done"}, timeout=60)
    assert events[-1].response.status == "completed"
    session_id: str = first.session.id
    return session_id


def _await_stored(http: httpx.Client, owner: Account, conversation_id: str) -> None:
    """Wait until the conversation's reply is stored (it is written just after the turn)."""
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        answer = http.get(f"/api/conversations/{conversation_id}", headers=owner.headers)
        if answer.status_code == 200 and any(
            m["role"] == "assistant" for m in answer.json()["messages"]
        ):
            return
        time.sleep(0.1)
    raise AssertionError(f"conversation {conversation_id} was not stored")


def _conversations(http: httpx.Client, server: LiveServer, owners: list[Account]) -> list[str]:
    async def converse() -> list[str]:
        return [await _typed_conversation(server, o.access_token, "Hello there.") for o in owners]

    ids = asyncio.run(converse())
    for owner, conversation_id in zip(owners, ids, strict=True):
        _await_stored(http, owner, conversation_id)
    return ids


def _seed_objects(http: httpx.Client, a: Account) -> dict[str, str]:
    """One object of each kind in tenant A, owned by A's admin."""
    project = create(http, a, "project")["id"]
    return {
        "agent": create(http, a, "agent")["id"],
        "project": project,
        "task": create(http, a, "task", {"title": "seeded", "project_id": project})["id"],
        "api_key": create(http, a, "api_key", {"name": "seeded"})["id"],
        "member": add_user(http, a).user_id,
    }


def _expired_token(server: LiveServer, account: Account) -> str:
    key = (server.data_dir / JWT_KEY_FILE).read_bytes()
    token, _ = JwtService(key).issue(
        ACCESS,
        user_id=account.user_id,
        tenant_id=account.tenant_id,
        role=account.role,
        now=time.time() - 3600,
    )
    return token


@pytest.fixture(scope="module")
def http(security_server: LiveServer) -> Iterator[httpx.Client]:
    """A client of the server under test."""
    with httpx.Client(base_url=security_server.base_url, timeout=60) as client:
        yield client


@pytest.fixture(scope="module")
def world(security_server: LiveServer, http: httpx.Client) -> World:
    """Tenants A and B with their seeded objects, and the credentials that are not A's."""
    a, b = register(http, tenant_name="Tenant A"), register(http, tenant_name="Tenant B")
    member = add_user(http, a)
    objects, spares = _seed_objects(http, a), _seed_objects(http, a)
    listed: dict[str, dict[str, list[str]]] = {"A": {}, "B": {}}
    for tenant, account in (("A", a), ("B", b)):
        for kind in LIST_KINDS:
            listed[tenant][kind] = create_many(http, account, kind, LIST_SEED)
    b_key = create(http, b, "api_key", {"name": "B's key"})
    objects["conversation"], spares["conversation"], b_conversation = _conversations(
        http, security_server, [a, a, b]
    )
    ticket = http.post("/api/auth/ws-ticket", json={}, headers=a.headers)
    assert ticket.status_code == 200, ticket.text
    owned = {
        "A": {a.tenant_id, a.user_id, member.user_id, *objects.values(), *spares.values()},
        "B": {b.tenant_id, b.user_id, b_key["id"], b_conversation},
    }
    for tenant, kinds in listed.items():
        owned[tenant].update(i for ids in kinds.values() for i in ids)
    world = World(
        a=a, b=b, member=member, objects=objects, spares=spares, owned=owned, listed=listed
    )
    world.credentials = [
        Credential("B token", b.headers, _always(404)),
        Credential("B API key", bearer(b_key["key"]), _always(404)),
        Credential("none", {}, _always(401)),
        Credential("expired", bearer(_expired_token(security_server, a)), _always(401)),
        Credential("A refresh", bearer(a.refresh_token), _always(401)),
        Credential("A ticket", bearer(ticket.json()["ticket"]), _always(401)),
        Credential("M member", member.headers, _member_expects),
    ]
    return world


def _call(
    http: httpx.Client, operation: Operation, ids: Mapping[str, str], headers: Mapping[str, str]
) -> httpx.Response:
    return http.request(
        operation.method,
        operation.url(ids),
        json=operation.body(),
        headers=dict(headers),
    )


def _object_operations(http: httpx.Client) -> list[Operation]:
    spec = http.get("/openapi.json").json()
    operations = [op for op in api_operations(spec) if op.path_params]
    unmapped = sorted({p for op in operations for p in op.path_params} - PARAM_KINDS.keys())
    assert not unmapped, f"no seeded object for path parameters {unmapped}: extend PARAM_KINDS"
    assert operations, "no /api operation has a path parameter"
    return operations


def _table(operations: list[Operation], names: list[str], cells: dict[str, dict[str, str]]) -> str:
    width = max(len(op.label) for op in operations)
    lines = [f"{'operation':<{width}}  " + "  ".join(f"{n:>10}" for n in names)]
    lines += [
        f"{op.label:<{width}}  " + "  ".join(f"{cells[op.label][n]:>10}" for n in names)
        for op in operations
    ]
    return "\n".join(lines)


def _readable(http: httpx.Client, world: World, operations: list[Operation]) -> dict[str, Any]:
    """What A's admin reads of each object now (one GET per readable path)."""
    bodies = {
        op.path: _call(http, op, world.objects, world.a.headers).json()
        for op in operations
        if op.method == "GET"
    }
    return {
        path: {k: v for k, v in body.items() if k not in _VOLATILE} for path, body in bodies.items()
    }


@dataclass(slots=True)
class Matrix:
    """What every foreign credential got on every operation."""

    cells: dict[str, dict[str, str]] = field(default_factory=dict)
    problems: list[str] = field(default_factory=list)
    successes: int = 0

    def record(self, op: Operation, credential: str, answer: httpx.Response, expected: int) -> None:
        """Note one answer; anything but ``expected`` is a problem."""
        self.successes += answer.is_success
        mark = "" if answer.status_code == expected else "!"
        self.cells.setdefault(op.label, {})[credential] = f"{answer.status_code}{mark}"
        if mark:
            self.problems.append(
                f"{op.label} with {credential}: {answer.status_code} (expected {expected}) "
                f"{answer.text[:200]}"
            )


def _sweep(http: httpx.Client, world: World, op: Operation, matrix: Matrix) -> None:
    """Call ``op`` on tenant A's objects with every credential that is not A's."""
    for credential in world.credentials:
        expected = credential.expect(op)
        if expected is None:
            matrix.cells.setdefault(op.label, {})[credential.name] = "by design"
            continue
        matrix.record(
            op, credential.name, _call(http, op, world.objects, credential.headers), expected
        )


def _existence_oracle(http: httpx.Client, world: World, op: Operation) -> str | None:
    """A problem when B can tell A's object from a missing one by the answer."""
    missing = {kind: uuid.uuid4().hex for kind in PARAM_KINDS.values()}
    foreign = _call(http, op, world.objects, world.b.headers)
    absent = _call(http, op, missing, world.b.headers)
    if (foreign.status_code, foreign.json()) == (absent.status_code, absent.json()):
        return None
    return (
        f"{op.label}: another tenant's object answers {foreign.status_code} "
        f"{foreign.text[:200]}, a missing one {absent.status_code} {absent.text[:200]}"
    )


def test_no_foreign_credential_reaches_tenant_a_objects(
    http: httpx.Client, world: World, report: Report
) -> None:
    operations = _object_operations(http)
    before = _readable(http, world, operations)
    matrix = Matrix()
    for op in operations:
        _sweep(http, world, op, matrix)
        matrix.problems += filter(None, [_existence_oracle(http, world, op)])
    after = _readable(http, world, operations)
    matrix.problems += [
        f"GET {path} changed: {before[path]} -> {after[path]}"
        for path in before
        if before[path] != after[path]
    ]
    matrix.problems += _positive_controls(http, world, operations)

    names = [c.name for c in world.credentials]
    report(
        f"R9 matrix: {len(operations)} operations x {len(names)} credentials, "
        f"{matrix.successes} 2xx"
    )
    report(_table(operations, names, matrix.cells))
    assert matrix.successes == 0, f"{matrix.successes} requests with foreign credentials succeeded"
    assert not matrix.problems, "\n".join(matrix.problems)


def _positive_controls(http: httpx.Client, world: World, operations: list[Operation]) -> list[str]:
    """A's own calls succeed: the ids and bodies of the matrix are right (deletes use spares)."""
    failed = []
    for op in sorted(operations, key=lambda o: o.method == "DELETE"):
        ids = world.spares if op.method == "DELETE" else world.objects
        answer = _call(http, op, ids, world.a.headers)
        if not answer.is_success:
            failed.append(
                f"positive control {op.label} as A: {answer.status_code} {answer.text[:200]}"
            )
    return failed


def _collect_ids(node: Any, found: set[str]) -> None:
    """Every string held under a key named ``id`` or ``*_id``, at any depth."""
    if isinstance(node, dict):
        for key, value in node.items():
            if isinstance(value, str) and (key == "id" or key.endswith("_id")):
                found.add(value)
            else:
                _collect_ids(value, found)
    elif isinstance(node, list):
        for item in node:
            _collect_ids(item, found)


def _read_all(http: httpx.Client, op: Operation, headers: Mapping[str, str]) -> list[Any]:
    """Every page of a list (one answer when it does not page)."""
    pages: list[Any] = []
    params: dict[str, int] = {}
    if {"limit", "offset"} <= op.query_params.keys():
        params = {"limit": min(100, int(op.query_params["limit"].get("maximum", 100))), "offset": 0}
    for _ in range(_MAX_PAGES):
        answer = http.get(op.path, params=params, headers=dict(headers))
        assert answer.status_code == 200, f"{op.label}: {answer.status_code} {answer.text[:200]}"
        body = answer.json()
        pages.append(body)
        if not (params and isinstance(body, dict) and body.get("has_more")):
            return pages
        params["offset"] += len(body["data"])
    raise AssertionError(f"{op.label}: more than {_MAX_PAGES} pages")


def test_lists_hold_no_row_of_the_other_tenant(
    http: httpx.Client, world: World, report: Report
) -> None:
    spec = http.get("/openapi.json").json()
    lists = [op for op in api_operations(spec) if op.method == "GET" and not op.path_params]
    assert lists, "no list operation under /api"
    readers = {"A": world.a, "B": world.b}
    problems = []
    for tenant, other in (("A", "B"), ("B", "A")):
        seen: set[str] = set()
        for op in lists:
            found: set[str] = set()
            _collect_ids(_read_all(http, op, readers[tenant].headers), found)
            leaked = found & world.owned[other]
            if leaked:
                problems.append(
                    f"{op.label} as {tenant}'s admin shows {other}'s ids {sorted(leaked)[:5]}"
                )
            seen |= found
            report(f"{op.label:<40} as {tenant}: {len(found)} ids, {len(leaked)} of {other}'s")
        for kind, ids in world.listed[tenant].items():
            if not set(ids) <= seen:
                problems.append(f"{tenant}'s own {kind}s are missing from its lists")
    assert not problems, "\n".join(problems)


@dataclass(frozen=True, slots=True)
class SocketCase:
    """One Realtime connection attempt that must be refused."""

    credential: str
    query: str
    error_code: str
    close_code: int


SOCKET_CASES = [
    SocketCase("B token", "conversation", "conversation_not_found", 4004),
    SocketCase("B token", "agent", "agent_not_found", 4004),
    SocketCase("none", "", "invalid_api_key", 3000),
    SocketCase("expired", "", "invalid_api_key", 3000),
    SocketCase("A refresh", "", "invalid_api_key", 3000),
]


async def _first_event(
    server: LiveServer, query: Mapping[str, str], headers: Mapping[str, str]
) -> tuple[dict[str, Any], int | None]:
    """The first event of a Realtime connection, and how the server then closed it."""
    url = str(httpx.URL(f"{server.ws_url}/v1/realtime", params={"model": "local-voice", **query}))
    async with connect(url, additional_headers=dict(headers), open_timeout=10) as ws:
        event: dict[str, Any] = json.loads(await asyncio.wait_for(ws.recv(), 10))
        if event["type"] != "error":
            return event, None
        with pytest.raises(ConnectionClosed):
            await asyncio.wait_for(ws.recv(), 10)
        return event, ws.close_code


@pytest.mark.parametrize(
    "case", SOCKET_CASES, ids=[f"{c.credential}-{c.query or 'plain'}" for c in SOCKET_CASES]
)
async def test_a_realtime_socket_cannot_attach_to_tenant_a(
    security_server: LiveServer, world: World, case: SocketCase
) -> None:
    headers = next(c.headers for c in world.credentials if c.name == case.credential)
    query = {case.query: world.objects[case.query]} if case.query else {}
    event, close_code = await _first_event(security_server, query, headers)
    assert event["type"] == "error", event
    assert event["error"]["code"] == case.error_code
    assert close_code == case.close_code


@pytest.mark.parametrize("target", ["conversation", "agent"])
async def test_tenant_a_attaches_to_its_own_objects(
    security_server: LiveServer, world: World, target: str
) -> None:
    event, _ = await _first_event(security_server, {target: world.objects[target]}, world.a.headers)
    assert event["type"] == "session.created", event
    if target == "conversation":
        assert event["session"]["id"] == world.objects["conversation"]
