"""``/v1/models``: list and retrieve through the official client; unknown models are a 404."""

from __future__ import annotations

import openai
import pytest
from api_helpers import error_of

from limner.engine import Engine
from limner.engine.registry import ModelSpec


def test_list(oai):
    models = oai.models.list()
    assert [m.id for m in models.data] == ["tiny", "dall-e-2", "dall-e-3", "gpt-image-1", "gpt-image-1-mini"]
    m = models.data[0]
    assert m.object == "model" and m.owned_by == "limner" and m.created > 0
    assert m.model_extra == {"backend": "limner", "default": True}
    assert models.data[3].model_extra == {"backend": "limner", "default": False, "alias_of": "tiny"}


def test_retrieve(oai):
    m = oai.models.retrieve("tiny")
    assert m.id == "tiny" and m.object == "model"


def test_unknown_model(client, auth, oai):
    with pytest.raises(openai.NotFoundError) as e:
        oai.models.retrieve("midjourney-v7")
    assert e.value.body["code"] == "model_not_found" and e.value.body["param"] == "model"
    r = client.get("/v1/models/midjourney-v7", headers=auth)
    assert r.status_code == 404
    err = error_of(r)
    assert err["type"] == "invalid_request_error" and "midjourney-v7" in err["message"]


def test_generate_with_unknown_model(oai):
    with pytest.raises(openai.NotFoundError) as e:
        oai.images.generate(prompt="a red apple", model="midjourney-v7")
    assert e.value.body["code"] == "model_not_found"


def test_generate_with_named_model(oai):
    r = oai.images.generate(prompt="a red apple", model="tiny", extra_body={"num_inference_steps": 2})
    assert len(r.data) == 1


def test_models_need_a_key(client):
    assert client.get("/v1/models").status_code == 401
    assert client.get("/v1/models/tiny").status_code == 401


def test_several_models_and_default(settings, tiny_model):
    from fastapi.testclient import TestClient

    from limner.server.app import create_app
    from limner.store.keys import create_key

    settings.engine_factory = lambda: Engine(
        specs=[ModelSpec("tiny", "limner", tiny_model), ModelSpec("tiny-b", "limner", tiny_model)],
        default="tiny-b",
    )
    with TestClient(create_app(settings)) as tc:
        with tc.app.state.db.session() as s:
            key, _ = create_key(s, "k")
        body = tc.get("/v1/models", headers={"api-key": key}).json()
        assert [(m["id"], m["default"]) for m in body["data"]][:2] == [("tiny", False), ("tiny-b", True)]
        assert {m["id"]: m.get("alias_of") for m in body["data"]}["gpt-image-1"] == "tiny-b"  # the default's
        assert tc.get("/healthz").json()["models"] == ["tiny", "tiny-b"]
