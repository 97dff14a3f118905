"""R8: schemathesis against the live server's own ``/openapi.json``: every check, no failure.

The schemathesis engine (what its CLI runs) drives a real server in-process through the
schema's examples, the coverage phase (boundary and invalid values, unexpected methods),
Hypothesis fuzzing and stateful sequences over the links schemathesis infers from the
response schemas (no link annotations needed). Every built-in check is on: server errors,
documented status codes, content types, response schemas and headers, acceptance of valid
and rejection of invalid data, ``Allow`` on 405, and ``ignored_auth`` (an operation that
declares the bearer scheme must refuse a missing or wrong one).

Not fuzzed: ``/metrics`` (Prometheus text for scrapers), ``/v1/audio/transcriptions``
(multipart audio fuzzing belongs to the upload tests) and ``/v1/realtime`` (a WebSocket,
absent from OpenAPI).
"""

from __future__ import annotations

import json
import time
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

import httpx
import pytest
import schemathesis
from schemathesis import BaseSchema, Case, HookContext, Response, engine
from schemathesis.core.failures import Failure
from schemathesis.engine import events
from schemathesis.engine.recorder import ScenarioRecorder

from tests.integration.conftest import LiveServer
from tests.security.conftest import Report
from voxdialog.testing.seed import bearer, register

pytestmark = [pytest.mark.models, pytest.mark.timeout(1500)]

#: Hypothesis is derandomized; this seeds schemathesis' per-operation seeds.
SEED = 20_260_808
EXAMPLES = 100
#: Model-backed operations synthesize speech or run the assistant on every call.
MODEL_EXAMPLES = {"/v1/audio/speech": 10, "/v1/chat/completions": 100}
EXCLUDED_PATHS = ["/metrics", "/v1/audio/transcriptions"]
_SECRET_FIELDS = ("token", "key", "password", "ticket", "secret")


@dataclass(frozen=True, slots=True)
class SemanticRule:
    """A 400 that a schema-valid request may get because of a rule JSON Schema cannot state.

    ``positive_data_acceptance`` expects schema-valid data to be accepted; these rejections
    are by design, so they pass only with exactly this code, parameter and message.
    """

    operations: frozenset[str]
    code: str
    params: frozenset[str | None]
    message: str
    why: str

    def explains(self, operation: str, error: dict[str, Any]) -> bool:
        """Whether this rule covers ``error``, answered by ``operation``."""
        return (
            operation in self.operations
            and error.get("code") == self.code
            and error.get("param") in self.params
            and self.message in str(error.get("message", ""))
        )


_AGENT_WRITES = frozenset({"POST /api/agents", "PATCH /api/agents/{agent_id}"})
_TASK_WRITES = frozenset({"POST /api/tasks", "PATCH /api/tasks/{task_id}"})
_EMAIL_WRITES = frozenset(
    {"POST /api/auth/register", "POST /api/admin/users", "PATCH /api/users/me"}
)
_PASSWORD_WRITES = frozenset(
    {"POST /api/auth/register", "POST /api/admin/users", "POST /api/users/me/password"}
)
SEMANTIC_RULES = (
    SemanticRule(
        _PASSWORD_WRITES,
        "weak_password",
        frozenset({None, "password"}),
        "",
        "password strength is scored by zxcvbn",
    ),
    SemanticRule(
        frozenset({"POST /api/users/me/password"}),
        "invalid_credentials",
        frozenset({None}),
        "current password is incorrect",
        "current_password must be the caller's password",
    ),
    SemanticRule(
        _EMAIL_WRITES,
        "invalid_value",
        frozenset({"email"}),
        "special-use or reserved name",
        "special-use domains (RFC 6761: .test, .invalid, ...) receive no mail",
    ),
    SemanticRule(
        _AGENT_WRITES,
        "invalid_value",
        frozenset({"llm", "stt", "tts"}),
        "provider of this server",
        "provider names must name this server's providers",
    ),
    SemanticRule(
        frozenset({"GET /api/agents"}),
        "invalid_value",
        frozenset({"after"}),
        "no such agent",
        "the paging cursor must name one of the tenant's agents",
    ),
    SemanticRule(
        _TASK_WRITES,
        "invalid_value",
        frozenset({"project_id"}),
        "no such project",
        "project_id must name one of the caller's projects",
    ),
)


@dataclass(slots=True)
class FuzzReport:
    """What one schemathesis run did and found."""

    failures: dict[tuple[str, str, str], str] = field(default_factory=dict)
    repeats: Counter[tuple[str, str, str]] = field(default_factory=Counter)
    errors: list[str] = field(default_factory=list)
    cases: Counter[tuple[str, str]] = field(default_factory=Counter)
    seconds: Counter[str] = field(default_factory=Counter)
    checks: Counter[str] = field(default_factory=Counter)
    phase_seconds: dict[str, float] = field(default_factory=dict)
    accepted_rejections: Counter[str] = field(default_factory=Counter)
    links: str = "no stateful phase"
    stop_reason: str = ""

    def failure_list(self) -> str:
        """Every distinct failure, readable, with a curl command to reproduce it."""
        return "\n\n".join(
            f"{n}. {text}"
            + (f"\n   (seen {self.repeats[key]} times)" if self.repeats[key] > 1 else "")
            for n, (key, text) in enumerate(sorted(self.failures.items()), start=1)
        )


def _redacted(body: bytes) -> str:
    """A response body for the failure list, with credentials blanked."""
    try:
        value = json.loads(body)
    except ValueError:
        return repr(body[:200])

    def scrub(node: Any) -> Any:
        if isinstance(node, dict):
            return {
                k: "[Filtered]" if any(s in k.lower() for s in _SECRET_FIELDS) else scrub(v)
                for k, v in node.items()
            }
        if isinstance(node, list):
            return [scrub(item) for item in node]
        return node

    return json.dumps(scrub(value))[:400]


def _error_of(response: Response) -> dict[str, Any]:
    try:
        body = json.loads(response.content)
    except ValueError:
        return {}
    error = body.get("error") if isinstance(body, dict) else None
    return error if isinstance(error, dict) else {}


def _semantic_rule(failure: Failure, case: Case, response: Response) -> SemanticRule | None:
    """The rule that explains a rejected schema-valid request, if one does."""
    if failure.title != "Schema-valid request rejected" or response.status_code != 400:
        return None
    error = _error_of(response)
    return next((r for r in SEMANTIC_RULES if r.explains(case.operation.label, error)), None)


def _protect(schema: BaseSchema, protected_ids: set[str], fuzz: FuzzReport) -> None:
    """Hooks: by-design rejections pass; the fuzzer never revokes or demotes its own identity."""

    def filter_failure(
        context: HookContext, failure: Failure, case: Case, response: Response
    ) -> bool:
        rule = _semantic_rule(failure, case, response)
        if rule is not None:
            fuzz.accepted_rejections[f"{case.operation.label}: {rule.code}: {rule.why}"] += 1
        return rule is None

    def filter_path_parameters(
        context: HookContext, path_parameters: dict[str, Any] | None
    ) -> bool:
        values = (path_parameters or {}).values()
        return not protected_ids & {str(value) for value in values}

    def before_call(context: HookContext, case: Case, kwargs: dict[str, Any]) -> None:
        # The stateful phase fills path parameters from earlier responses (GET /api/users/me
        # names the fuzzer's own id), past filter_path_parameters: aim such calls elsewhere.
        params = case.path_parameters or {}
        for name, value in list(params.items()):
            if str(value) in protected_ids:
                params[name] = "not-the-fuzzers-own-id"

    schema.hook(filter_failure)
    schema.hook(filter_path_parameters)
    schemathesis.hook(before_call)  # a call hook must be global


def _config(server: LiveServer) -> schemathesis.Config:
    return schemathesis.Config.from_dict(
        {
            "seed": SEED,
            # One worker: the server shares this process (and two CPU cores in CI).
            "workers": 1,
            # No state carried between runs: a run is reproduced from its seed alone.
            "cache": {"enabled": False},
            "auth": {"openapi": {"bearer": {"bearer": server.api_key}}},
            "generation": {
                "max-examples": EXAMPLES,
                "deterministic": True,
                "database": "none",
            },
            # Fuzzing draws ids at random so that every operation gets its full set of
            # examples; the stateful phase follows links to real objects instead.
            "phases": {"fuzzing": {"extra-data-sources": {"responses": False}}},
            "operations": [
                {"include-path": path, "generation": {"max-examples": count}}
                for path, count in MODEL_EXAMPLES.items()
            ],
        }
    )


def _record_scenario(fuzz: FuzzReport, event: events.ScenarioFinished) -> None:
    recorder: ScenarioRecorder = event.recorder
    fuzz.cases[(recorder.label, event.phase.value)] += len(recorder.cases)
    fuzz.seconds[recorder.label] += event.elapsed_time
    for case_id, checks in recorder.checks.items():
        for check in checks:
            fuzz.checks[check.name] += 1
            if check.failure_info is None:
                continue
            failure = check.failure_info.failure
            label = failure.operation or recorder.label
            key = (label, check.name, failure.title)
            fuzz.repeats[key] += 1
            if key in fuzz.failures:
                continue
            interaction = recorder.interactions.get(case_id)
            response = interaction.response if interaction is not None else None
            answer = f"{response.status_code} {_redacted(response.content)}" if response else "none"
            message = "\n   ".join(failure.message.strip().splitlines())
            fuzz.failures[key] = (
                f"[{event.phase.value}] {label}: {check.name}: {failure.title}\n"
                f"   {message}\n"
                f"   response: {answer}\n"
                f"   reproduce: {check.failure_info.code_sample}"
            )


def run_schemathesis(schema: BaseSchema, fuzz: FuzzReport) -> None:
    """Run every phase of the engine over ``schema``; collect failures and errors in ``fuzz``."""
    started = time.monotonic()
    for event in engine.from_schema(schema).execute():
        if isinstance(event, events.ScenarioFinished):
            _record_scenario(fuzz, event)
        elif isinstance(event, events.NonFatalError):
            fuzz.errors.append(f"{event.label}: {event.info.title}: {event.value!r}")
        elif isinstance(event, events.FatalError):
            fuzz.errors.append(f"fatal: {event.exception!r}")
        elif isinstance(event, events.PhaseStarted) and event.payload is not None:
            links = event.payload
            fuzz.links = (
                f"{links.inferred_transitions} links inferred, "
                f"{links.transitions_selected} of {links.transitions_total} transitions used"
            )
        elif isinstance(event, events.PhaseFinished):
            fuzz.phase_seconds[event.phase.name.value] = time.monotonic() - started
        elif isinstance(event, events.EngineFinished):
            fuzz.stop_reason = event.stop_reason.value


def _identity(server: LiveServer) -> tuple[str, str, set[str]]:
    """The operator's user id, role and API key ids."""
    with httpx.Client(base_url=server.base_url, headers=bearer(server.api_key), timeout=30) as http:
        me = http.get("/api/users/me")
        keys = http.get("/api/api-keys")
    assert me.status_code == 200, me.text
    assert keys.status_code == 200, keys.text
    return me.json()["id"], me.json()["role"], {key["id"] for key in keys.json()}


def _summary(fuzz: FuzzReport, report: Report) -> None:
    report(f"schemathesis {schemathesis.__version__}: seed {SEED}, derandomized")
    phases = ("examples", "coverage", "fuzzing", "stateful")
    done = [f"{p} {fuzz.phase_seconds[p]:.0f}" for p in phases if p in fuzz.phase_seconds]
    report(f"stop reason: {fuzz.stop_reason}; phases ended at (s): {', '.join(done)}")
    report(f"stateful: {fuzz.links}")
    labels = sorted({label for label, _ in fuzz.cases})
    width = max(len(label) for label in labels)
    report(f"{'operation':<{width}}  " + "  ".join(f"{p:>8}" for p in phases) + "   seconds")
    for label in labels:
        counts = "  ".join(f"{fuzz.cases[(label, p)]:>8}" for p in phases)
        report(f"{label:<{width}}  {counts}  {fuzz.seconds[label]:>8.1f}")
    report("checks run: " + ", ".join(f"{n}={c}" for n, c in sorted(fuzz.checks.items())))
    for rule, count in sorted(fuzz.accepted_rejections.items()):
        report(f"accepted by design ({count}x): {rule}")


def test_every_operation_passes_every_check(security_server: LiveServer, report: Report) -> None:
    operator_id, role, key_ids = _identity(security_server)
    schema = schemathesis.openapi.from_url(
        f"{security_server.base_url}/openapi.json", config=_config(security_server)
    ).exclude(path=EXCLUDED_PATHS)
    result = FuzzReport()
    _protect(schema, {operator_id, *key_ids}, result)
    run_schemathesis(schema, result)
    _summary(result, report)

    # The run only means something if the fuzzer kept its own credential and role throughout.
    assert _identity(security_server)[:2] == (operator_id, role)
    assert result.stop_reason == "completed"
    assert not result.errors, "schemathesis errors:\n" + "\n".join(result.errors)
    assert not result.failures, (
        f"{len(result.failures)} schemathesis failures (seed {SEED}):\n\n" + result.failure_list()
    )


def test_logout_ends_a_sign_in_and_leaves_an_api_key_working(security_server: LiveServer) -> None:
    with httpx.Client(base_url=security_server.base_url, timeout=30) as http:
        operator = bearer(security_server.api_key)
        assert http.post("/api/auth/logout", headers=operator).status_code == 204
        assert http.get("/api/users/me", headers=operator).status_code == 200

        user = register(http, tenant_name="Signs out")
        assert http.post("/api/auth/logout", headers=user.headers).status_code == 204
        assert http.get("/api/users/me", headers=user.headers).status_code == 401
        refresh = http.post("/api/auth/refresh", json={"refresh_token": user.refresh_token})
        assert refresh.status_code == 401
