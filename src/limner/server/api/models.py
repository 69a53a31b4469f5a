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


@router.get("", response_model=ModelList, summary="List models")
def list_models(engine: EngineDep, key: Key) -> ModelList:
    return ModelList(data=[_obj(e) for e in engine.models()])


@router.get("/{model_id}", response_model=ModelObject, summary="Retrieve a model")
def get_model(model_id: str, engine: EngineDep, key: Key) -> ModelObject:
    for e in engine.models():
        if e["name"] == model_id:
            return _obj(e)
    raise UnknownModel(f"The model '{model_id}' does not exist.", param="model")
