"""Hostile input: a caller names a folder of the server's disk as ``model`` (hardening item 0).

Over HTTP only configured models are reachable; nothing about the server's disk — whether a path
exists, what lies there, where the weights live — reaches a response."""

from __future__ import annotations

import shutil

import pytest
from api_helpers import SIZE, error_of
from fastapi.testclient import TestClient

from limner.engine import Engine
from limner.engine.registry import ModelSpec
from limner.server.app import create_app
from limner.store.keys import create_key

pytestmark = pytest.mark.hostile


def _generate(client, auth, model: str):
    return client.post(
        "/v1/images/generations",
        headers=auth,
        json={"prompt": "a red apple", "model": model, "size": SIZE, "num_inference_steps": 1},
    )


def test_a_weights_folder_on_disk_is_not_a_model(client, auth, tiny_model, tmp_path):
    copy = tmp_path / "elsewhere"
    shutil.copytree(tiny_model, copy)
    r = _generate(client, auth, str(copy))
    assert r.status_code == 404 and error_of(r)["code"] == "model_not_found"
    engine = client.app.state.engine
    assert list(engine.specs) == ["tiny"]  # nothing was loaded or remembered
    assert str(copy) not in client.get("/healthz").text
    assert str(copy) not in client.get("/v1/models", headers=auth).text


def test_existing_and_missing_paths_answer_alike(client, auth, tmp_path):
    """A 404 for both, with the same words: the answer does not tell whether a path exists."""
    answers = []
    for path in ("/root", "/etc", str(tmp_path / "no-such-folder"), "/" + "x" * 150):
        r = _generate(client, auth, path)
        err = error_of(r)
        answers.append((r.status_code, err["code"], err["message"].split("; ")[-1]))
    assert len(set(answers)) == 1 and answers[0][:2] == (404, "model_not_found")
    assert error_of(_generate(client, auth, "/" + "y" * 4000))["code"] == "invalid_value"  # names are short


def test_a_model_that_fails_to_load_names_no_server_path(settings, tmp_path):
    broken = tmp_path / "secret-place" / "broken"
    broken.mkdir(parents=True)
    (broken / "denoiser.safetensors").write_bytes(b"not a checkpoint")
    settings.engine_factory = lambda: Engine(specs=[ModelSpec("broken", "limner", broken)])
    with TestClient(create_app(settings), raise_server_exceptions=False) as tc:
        with tc.app.state.db.session() as s:
            key, _ = create_key(s, "k")
        r = _generate(tc, {"Authorization": f"Bearer {key}"}, "broken")
        assert r.status_code == 500
        assert "secret-place" not in r.text and str(tmp_path) not in r.text
        assert r.headers["x-request-id"]  # what the caller quotes to the operator, who has the log


def test_paths_stay_a_python_convenience(tiny_model):
    engine = Engine(specs=[])
    assert engine.resolve_name(str(tiny_model)) == str(tiny_model)
    with pytest.raises(Exception, match="unknown model"):
        Engine(specs=[], allow_paths=False).resolve_name(str(tiny_model))
