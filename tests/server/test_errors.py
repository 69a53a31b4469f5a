"""Every error leaves in OpenAI's envelope with OpenAI's status, type and code — never a traceback."""

from __future__ import annotations

import openai
import pytest
from api_helpers import STEPS, error_of, openai_client, png_bytes
from fastapi.testclient import TestClient
from PIL import Image

from limner.engine import Engine
from limner.engine.registry import ModelSpec
from limner.server.app import create_app
from limner.store.keys import revoke

GEN = "/v1/images/generations"


# -- 400 -------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("body", "param"),
    [
        ({"prompt": "a cat", "n": 0}, "n"),
        ({"prompt": "a cat", "n": 11}, "n"),
        ({"prompt": ""}, "prompt"),
        ({"prompt": "a cat", "quality": "ultra"}, "quality"),
        ({"prompt": "a cat", "response_format": "gif"}, "response_format"),
        ({"prompt": "a cat", "output_compression": 101}, "output_compression"),
        ({"prompt": "a cat", "num_inference_steps": 0}, "num_inference_steps"),
        ({"prompt": "a cat", "guidance_scale": 31}, "guidance_scale"),
        ({"prompt": "a cat", "seed": -1}, "seed"),
        ({"prompt": "a cat", "partial_images": 4}, "partial_images"),
    ],
)
def test_bad_values_name_their_parameter(client, auth, body, param):
    r = client.post(GEN, json=body, headers=auth)
    assert r.status_code == 400
    err = error_of(r)
    assert err["type"] == "invalid_request_error"
    assert err["param"] == param and err["code"] == "invalid_value"
    assert param in err["message"]


def test_bad_values_through_openai(oai):
    for n in (0, 11):
        with pytest.raises(openai.BadRequestError) as e:
            oai.images.generate(prompt="a cat", n=n)
        assert e.value.status_code == 400 and e.value.body["param"] == "n"


def test_unknown_parameter_is_named(oai):
    with pytest.raises(openai.BadRequestError) as e:
        oai.images.generate(prompt="a cat", extra_body={"colour": "red"})
    assert e.value.body["code"] == "unknown_parameter"
    assert e.value.body["param"] == "colour" and "'colour'" in e.value.body["message"]


def test_unknown_multipart_parameter_is_named(client, auth):
    r = client.post(
        "/v1/images/edits",
        headers=auth,
        data={"prompt": "a cat", "colour": "red"},
        files={"image": ("a.png", png_bytes(Image.new("RGB", (128, 128))), "image/png")},
    )
    assert r.status_code == 400
    err = error_of(r)
    assert err["code"] == "unknown_parameter" and err["param"] == "colour"


def test_missing_prompt(client, auth):
    r = client.post(GEN, json={"n": 1}, headers=auth)
    assert r.status_code == 400
    err = error_of(r)
    assert err["code"] == "missing_required_parameter" and err["param"] == "prompt"


def test_size_the_model_cannot_make(oai):
    with pytest.raises(openai.BadRequestError) as e:
        oai.images.generate(prompt="a cat", size="1024x1024")
    assert e.value.body["param"] == "size" and "128x128" in e.value.body["message"]


def test_malformed_size(client, auth):
    r = client.post(GEN, json={"prompt": "a cat", "size": "big"}, headers=auth)
    assert r.status_code == 400 and error_of(r)["param"] == "size"


def test_transparent_background_needs_a_format_with_alpha(oai):
    with pytest.raises(openai.BadRequestError) as e:
        oai.images.generate(prompt="a cat", background="transparent", output_format="jpeg")
    assert e.value.body["param"] == "output_format"
    assert oai.images.generate(prompt="a cat", background="opaque", extra_body={"seed": 1})


def test_unknown_sampler(client, auth):
    r = client.post(GEN, json={"prompt": "a cat", "sampler": "ddim"}, headers=auth)
    assert r.status_code == 400 and error_of(r)["param"] == "sampler"


def test_validation_errors_become_400(client, auth):
    """FastAPI's own 422 never leaves the service: wrong types are a 400 in the envelope."""
    r = client.post(GEN, json={"prompt": "a cat", "n": "many"}, headers=auth)
    assert r.status_code == 400
    err = error_of(r)
    assert err["param"] == "n" and err["code"] == "invalid_value"
    r = client.post(GEN, json=["a cat"], headers=auth)
    assert r.status_code == 400 and error_of(r)["type"] == "invalid_request_error"


def test_malformed_json(client, auth):
    r = client.post(GEN, content=b'{"prompt": "a cat",', headers={**auth, "content-type": "application/json"})
    assert r.status_code == 400
    err = error_of(r)
    assert err["code"] == "invalid_json" and err["param"] is None


def test_bad_multipart_values(client, auth):
    files = {"image": ("a.png", png_bytes(Image.new("RGB", (128, 128))), "image/png")}
    r = client.post("/v1/images/edits", headers=auth, data={"prompt": "a cat", "n": "lots"}, files=files)
    assert r.status_code == 400 and error_of(r)["param"] == "n"
    r = client.post("/v1/images/edits", headers=auth, data={"prompt": "a cat", "strength": "2"}, files=files)
    assert r.status_code == 400 and error_of(r)["param"] == "strength"
    r = client.post("/v1/images/edits", headers=auth, data={"prompt": "a cat", "strength": "half"}, files=files)
    assert r.status_code == 400 and error_of(r)["param"] == "strength"


def test_edit_without_image(client, auth):
    r = client.post("/v1/images/edits", headers=auth, data={"prompt": "a cat"})
    assert r.status_code == 400
    err = error_of(r)
    assert err["param"] == "image" and err["code"] == "missing_required_parameter"


# -- 401 / 403 / 404 --------------------------------------------------------------------------------


def test_no_key(client):
    r = client.post(GEN, json={"prompt": "a cat"})
    assert r.status_code == 401
    err = error_of(r)
    assert err["code"] == "missing_api_key" and err["type"] == "invalid_request_error"


def test_wrong_key_through_openai(client):
    bad = openai_client(client, "lim-" + "A" * 43)
    with pytest.raises(openai.AuthenticationError) as e:
        bad.images.generate(prompt="a cat")
    assert e.value.status_code == 401 and e.value.body["code"] == "invalid_api_key"
    with pytest.raises(openai.AuthenticationError):
        openai_client(client, "sk-not-ours").models.list()


def test_revoked_key(client, key, oai):
    assert oai.models.list().data
    with client.app.state.db.session() as s:
        from limner.store.keys import find_key

        assert revoke(s, find_key(s, key).id)
    with pytest.raises(openai.AuthenticationError) as e:
        oai.models.list()
    assert e.value.body["code"] == "invalid_api_key"


def test_api_key_header_works_like_bearer(client, key):
    r = client.post(GEN, json={"prompt": "a cat", "num_inference_steps": STEPS}, headers={"api-key": key})
    assert r.status_code == 200
    r = client.get("/v1/models", headers={"api-key": "lim-wrongwrongwrong"})
    assert r.status_code == 401 and error_of(r)["code"] == "invalid_api_key"


def test_unknown_route_and_method(client, auth):
    r = client.get("/v1/nothing-here", headers=auth)
    assert r.status_code == 404 and error_of(r)["type"] == "invalid_request_error"
    r = client.get(GEN, headers=auth)
    assert r.status_code == 405 and error_of(r)["message"] == "Method not allowed."


# -- 413 --------------------------------------------------------------------------------------------


def test_oversized_upload(client, settings, auth):
    settings.max_upload_bytes = 2000
    noise = Image.effect_noise((128, 128), 60).convert("RGB")
    r = client.post(
        "/v1/images/edits",
        headers=auth,
        data={"prompt": "a cat"},
        files={"image": ("big.png", png_bytes(noise), "image/png")},
    )
    assert r.status_code == 413
    err = error_of(r)
    assert err["code"] == "file_too_large" and err["param"] == "image"
    assert "2,000 bytes" in err["message"]


def test_oversized_body_refused_before_reading(client, settings, auth):
    settings.max_upload_bytes = 1000  # the body limit is 4 uploads + 1 MiB of form
    r = client.post(
        "/v1/images/edits",
        headers=auth,
        data={"prompt": "a cat"},
        files={"image": ("big.png", b"\0" * (2**20 + 8000), "image/png")},
    )
    assert r.status_code == 413 and error_of(r)["code"] == "request_too_large"
    assert r.headers["x-request-id"]


def test_oversized_upload_through_openai(client, settings, oai):
    settings.max_upload_bytes = 2000
    noise = Image.effect_noise((128, 128), 60).convert("RGB")
    with pytest.raises(openai.APIStatusError) as e:
        oai.images.edit(image=("big.png", png_bytes(noise), "image/png"), prompt="a cat")
    assert e.value.status_code == 413


# -- 500 --------------------------------------------------------------------------------------------


class BrokenEngine(Engine):
    def generate(self, request, timeout=None):
        raise RuntimeError("CUDA error at /opt/secret/kernel.cu:42 token=hunter2")


@pytest.fixture
def broken(settings, tiny_model):
    settings.engine_factory = lambda: BrokenEngine(specs=[ModelSpec("tiny", "limner", tiny_model)])
    with TestClient(create_app(settings), raise_server_exceptions=False) as tc:
        with tc.app.state.db.session() as s:
            from limner.store.keys import create_key

            key, _ = create_key(s, "broken", images_per_day=5)
        yield tc, key


def _assert_opaque_500(r) -> None:
    assert r.status_code == 500
    err = error_of(r)
    assert err["type"] == "server_error"
    for leak in ("Traceback", "RuntimeError", "secret", "hunter2", "kernel.cu", 'File "'):
        assert leak not in r.text
    assert r.headers["x-request-id"]


def test_internal_error_is_opaque(broken):
    tc, key = broken
    r = tc.post(GEN, json={"prompt": "a cat"}, headers={"api-key": key, "x-request-id": "boom-1"})
    _assert_opaque_500(r)
    assert r.headers["x-request-id"] == "boom-1"


def test_internal_error_through_openai(broken):
    tc, key = broken
    with pytest.raises(openai.InternalServerError) as e:
        openai_client(tc, key).images.generate(prompt="a cat")
    assert e.value.body["type"] == "server_error"


def test_internal_error_in_edit_and_stream(broken):
    tc, key = broken
    files = {"image": ("a.png", png_bytes(Image.new("RGB", (128, 128))), "image/png")}
    _assert_opaque_500(tc.post("/v1/images/edits", headers={"api-key": key}, data={"prompt": "a"}, files=files))
    _assert_opaque_500(tc.post(GEN, json={"prompt": "a cat", "stream": True}, headers={"api-key": key}))


def test_internal_error_refunds_the_quota(broken):
    tc, key = broken
    for _ in range(7):  # more than the key's 5 a day: every failure gave its image back
        assert tc.post(GEN, json={"prompt": "a cat"}, headers={"api-key": key}).status_code == 500


# -- the request id ---------------------------------------------------------------------------------


def test_request_id_on_every_error(client, auth):
    for r in (
        client.post(GEN, json={"prompt": "a cat"}),
        client.post(GEN, json={"prompt": "a cat", "n": 0}, headers=auth),
        client.get("/v1/models/nope", headers=auth),
        client.get("/nowhere"),
    ):
        assert r.status_code >= 400 and r.headers["x-request-id"].startswith("req_")
    r = client.post(GEN, json={"prompt": "a cat"}, headers={"x-request-id": "abc-123"})
    assert r.status_code == 401 and r.headers["x-request-id"] == "abc-123"
