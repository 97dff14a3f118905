"""``GET /v1/models``: the realtime, STT and TTS model ids we accept."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter

from voxdialog.api.deps import RuntimeDep, ScopeDep
from voxdialog.api.errors import ApiError

router = APIRouter(prefix="/v1/models", tags=["models"])
_CREATED = 1767225600


def _ids(runtime: RuntimeDep) -> list[str]:
    ids = [runtime.settings.model_name]
    ids += [model_id for model_id, _stage in runtime.registry.list_models() if model_id not in ids]
    return ids


def _model(model_id: str) -> dict[str, Any]:
    return {"id": model_id, "object": "model", "created": _CREATED, "owned_by": "voxdialog"}


@router.get("")
async def list_models(runtime: RuntimeDep, scope: ScopeDep) -> dict[str, Any]:
    """All model ids."""
    return {"object": "list", "data": [_model(i) for i in _ids(runtime)]}


@router.get("/{model_id}")
async def get_model(model_id: str, runtime: RuntimeDep, scope: ScopeDep) -> dict[str, Any]:
    """One model, or 404 ``model_not_found``."""
    if model_id not in _ids(runtime):
        raise ApiError(
            404, f"The model '{model_id}' does not exist.", code="model_not_found", param="model"
        )
    return _model(model_id)
