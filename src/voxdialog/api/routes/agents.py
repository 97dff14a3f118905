"""``/api/agents``: the personas of a tenant.

Every member of a tenant sees its agents and may create new ones; an agent is changed or
deleted by the member who created it or by a tenant admin. Another tenant's agents do not
exist for the caller (404).
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Query, Response

from voxdialog.agents.resolver import provider_names
from voxdialog.api.agent_schemas import AgentIn, AgentOut, AgentPatch
from voxdialog.api.deps import PrincipalDep, RuntimeDep
from voxdialog.api.errors import ApiError
from voxdialog.api.schemas import Page, page_of
from voxdialog.db.repos.agents import (
    AgentFields,
    AgentNameTakenError,
    AgentNotFoundError,
    AgentRecord,
    create_agent,
    delete_agent,
    get_agent,
    list_agents,
    update_agent,
)
from voxdialog.runtime import Runtime
from voxdialog.security.principal import Principal

ERRORS: dict[int | str, dict[str, Any]] = {
    400: {"description": "Invalid request"},
    401: {"description": "Not signed in"},
    404: {"description": "Not found"},
    429: {"description": "Too many requests"},
}
_CHANGES: dict[int | str, dict[str, Any]] = {
    403: {"description": "Only its creator or a tenant admin may change it"},
    409: {"description": "Name taken"},
}
router = APIRouter(prefix="/api/agents", tags=["agents"], responses=ERRORS)


def _not_found() -> ApiError:
    return ApiError(404, "Agent not found.", code="not_found")


def _name_taken() -> ApiError:
    return ApiError(
        409, "This tenant already has an agent of that name.", code="name_taken", param="name"
    )


def _check_providers(runtime: Runtime, chains: dict[str, list[str] | None]) -> None:
    """400 unless every name is a provider this server has for that stage."""
    for stage, names in chains.items():
        known = provider_names(runtime.settings, runtime.registry, stage)
        for name in names or ():
            if name not in known:
                raise ApiError(
                    400,
                    f"Invalid value for '{stage}': '{name}' is not a {stage} provider of this "
                    f"server; the {stage} providers are {', '.join(sorted(known)) or 'none'}.",
                    code="invalid_value",
                    param=stage,
                )


async def _visible(runtime: Runtime, principal: Principal, agent_id: str) -> AgentRecord:
    agent = await get_agent(runtime.db, principal.scope.tenant_id, agent_id)
    if agent is None:
        raise _not_found()
    return agent


async def _changeable(runtime: Runtime, principal: Principal, agent_id: str) -> AgentRecord:
    agent = await _visible(runtime, principal, agent_id)
    if not principal.is_admin and agent.user_id != principal.scope.user_id:
        raise ApiError(
            403, "Only the agent's creator or a tenant admin may change it.", code="forbidden"
        )
    return agent


@router.post("", status_code=201, responses=_CHANGES)
async def new_agent(body: AgentIn, principal: PrincipalDep, runtime: RuntimeDep) -> AgentOut:
    """Create an agent in the caller's tenant."""
    _check_providers(runtime, {"llm": body.llm, "stt": body.stt, "tts": body.tts})
    fields = AgentFields(
        name=body.name,
        description=body.description,
        system_prompt=body.system_prompt,
        llm=body.llm,
        stt=body.stt,
        tts=body.tts,
        voice=body.voice.model_dump(),
        greeting=body.greeting,
        turn_detection=body.turn_detection.overrides(),
        tools=body.tools,
    )
    try:
        agent = await create_agent(runtime.db, principal.scope, fields)
    except AgentNameTakenError as exc:
        raise _name_taken() from exc
    return AgentOut.of(agent)


@router.get("")
async def agents(
    principal: PrincipalDep,
    runtime: RuntimeDep,
    limit: Annotated[int, Query(ge=1, le=100)] = 20,
    after: Annotated[
        str | None, Query(max_length=64, description="Last id of the page before")
    ] = None,
    offset: Annotated[int, Query(ge=0, le=1_000_000)] = 0,
) -> Page[AgentOut]:
    """The tenant's agents, oldest first."""
    try:
        found = await list_agents(
            runtime.db, principal.scope.tenant_id, limit + 1, offset, after=after
        )
    except AgentNotFoundError as exc:
        raise ApiError(
            400, "Invalid value for 'after': no such agent.", code="invalid_value", param="after"
        ) from exc
    return page_of(found, limit, AgentOut.of)


@router.get("/{agent_id}")
async def read_agent(agent_id: str, principal: PrincipalDep, runtime: RuntimeDep) -> AgentOut:
    """One agent of the tenant, by id or name."""
    return AgentOut.of(await _visible(runtime, principal, agent_id))


@router.patch("/{agent_id}", responses=_CHANGES)
async def patch_agent(
    agent_id: str, body: AgentPatch, principal: PrincipalDep, runtime: RuntimeDep
) -> AgentOut:
    """Change an agent (its creator or a tenant admin)."""
    agent = await _changeable(runtime, principal, agent_id)
    changes = body.changes()
    _check_providers(runtime, {stage: changes.get(stage) for stage in ("llm", "stt", "tts")})
    try:
        updated = await update_agent(runtime.db, principal.scope.tenant_id, agent.id, changes)
    except AgentNameTakenError as exc:
        raise _name_taken() from exc
    if updated is None:  # deleted meanwhile
        raise _not_found()
    return AgentOut.of(updated)


@router.delete("/{agent_id}", status_code=204, responses=_CHANGES)
async def remove_agent(agent_id: str, principal: PrincipalDep, runtime: RuntimeDep) -> Response:
    """Delete an agent (its creator or a tenant admin); live sessions keep theirs."""
    agent = await _changeable(runtime, principal, agent_id)
    if not await delete_agent(runtime.db, principal.scope.tenant_id, agent.id):
        raise _not_found()
    return Response(status_code=204)
