"""``/v1/models``: the models this server can generate with."""

from __future__ import annotations

import time
from typing import Literal

from fastapi import APIRouter
from pydantic import BaseModel

from limner.errors import UnknownModel
from limner.server.deps import EngineDep, Key
from limner.server.errors import ERROR_RESPONSES

router = APIRouter(prefix="/v1/models", tags=["models"], responses=ERROR_RESPONSES)
STARTED = int(time.time())


class ModelObject(BaseModel):
    id: str
    object: Literal["model"] = "model"
    created: int
    owned_by: str
    backend: str
    default: bool
    alias_of: str | None = None  # an OpenAI name ("gpt-image-1" …) standing for this server's model


class ModelList(BaseModel):
    object: Literal["list"] = "list"
    data: list[ModelObject]


def _obj(entry: dict) -> ModelObject:
    return ModelObject(
        id=entry["name"],
        created=STARTED,
        owned_by="limner" if entry["backend"] == "limner" else "local",
        backend=entry["backend"],
        default=entry["default"],
    )


def _all(engine) -> list[ModelObject]:
    """The models, then each alias as a model of its own (what OpenAI clients look up)."""
    models = [_obj(e) for e in engine.models()]
    by_name = {m.id: m for m in models}
    for alias, target in sorted(engine.aliases.items()):
        if target in by_name:
            models.append(by_name[target].model_copy(update={"id": alias, "default": False, "alias_of": target}))
    return models


@router.get("", response_model=ModelList, response_model_exclude_none=True, summary="List models")
def list_models(engine: EngineDep, key: Key) -> ModelList:
    return ModelList(data=_all(engine))


@router.get("/{model_id}", response_model=ModelObject, response_model_exclude_none=True, summary="Retrieve a model")
def get_model(model_id: str, engine: EngineDep, key: Key) -> ModelObject:
    for m in _all(engine):
        if m.id == model_id:
            return m
    raise UnknownModel(f"The model '{model_id}' does not exist.", param="model")
