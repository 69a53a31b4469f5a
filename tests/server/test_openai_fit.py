"""Apps written for OpenAI, unmodified: its model names and sizes, its rate-limit headers, a
transparent background, parameters that third-party readers find, metrics for the operator."""

from __future__ import annotations

import io

import pytest
from api_helpers import SIZE, decode, error_of, openai_client
from fastapi.testclient import TestClient
from PIL import Image
from prometheus_client.parser import text_string_to_metric_families

from limner.server.app import create_app

GEN = "/v1/images/generations"


@pytest.fixture
def resizing(settings):
    """A server whose size policy is "resize" (the default is "strict")."""
    settings.size_policy = "resize"
    with TestClient(create_app(settings)) as tc:
        yield tc


def test_openai_model_names_and_sizes_work_unchanged(resizing, make_key):
    from limner.store.keys import create_key

    with resizing.app.state.db.session() as s:
        key, _ = create_key(s, "app")
    client = openai_client(resizing, key)
    r = client.images.generate(model="gpt-image-1", prompt="a red apple", size="1024x1024")
    img = decode(r.data[0].b64_json)
    assert img.size == (1024, 1024)
    assert r.model_extra["resized_from"] == SIZE  # said in the response
    r = client.images.generate(model="dall-e-3", prompt="a red apple", size="1024x1536")
    assert decode(r.data[0].b64_json).size == (1024, 1536)  # another aspect: cropped, not stretched
    listed = {m.id: m.model_extra for m in client.models.list().data}
    assert listed["gpt-image-1"]["alias_of"] == "tiny" and listed["dall-e-3"]["alias_of"] == "tiny"


def test_strict_size_policy_refuses_what_the_model_cannot_make(oai):
    import openai

    with pytest.raises(openai.BadRequestError) as e:
        oai.images.generate(model="gpt-image-1", prompt="a red apple", size="1024x1024")
    assert e.value.body["param"] == "size"


def test_a_key_can_choose_resizing(client):
    from limner.store.keys import create_key

    with client.app.state.db.session() as s:
        key, _ = create_key(s, "app", size_policy="resize")
    r = openai_client(client, key).images.generate(prompt="a red apple", size="512x512")
    assert decode(r.data[0].b64_json).size == (512, 512)


def test_rate_limit_headers_are_sent_and_count_down(client, make_key):
    key = make_key(images_per_minute=5, images_per_day=9)
    seen = []
    for _ in range(3):
        r = client.post(GEN, headers={"Authorization": f"Bearer {key}"}, json={"prompt": "a cat", "size": SIZE})
        assert r.status_code == 200
        seen.append({k: v for k, v in r.headers.items() if k.startswith("x-ratelimit-")})
    assert [s["x-ratelimit-remaining-requests"] for s in seen] == ["4", "3", "2"]
    assert [s["x-ratelimit-remaining-images"] for s in seen] == ["8", "7", "6"]
    assert seen[0]["x-ratelimit-limit-requests"] == "5" and seen[0]["x-ratelimit-limit-images"] == "9"
    assert seen[0]["x-ratelimit-reset-requests"].endswith("s")
    listed = client.get("/v1/models", headers={"Authorization": f"Bearer {key}"})
    assert listed.headers["x-ratelimit-remaining-images"] == "6"  # on every response of the key


def test_a_transparent_background_has_alpha(oai):
    r = oai.images.generate(prompt="a red apple", size=SIZE, background="transparent", extra_body={"seed": 1})
    img = decode(r.data[0].b64_json)
    assert img.mode == "RGBA" and r.background == "transparent"  # (the cut-out itself: tests/engine/test_matting.py)
    assert r.data[0].revised_prompt.endswith("on a plain white background")
    webp = oai.images.generate(prompt="a red apple", size=SIZE, background="transparent", output_format="webp")
    assert decode(webp.data[0].b64_json).mode == "RGBA"


def test_a_transparent_jpeg_is_refused(client, auth):
    r = client.post(GEN, headers=auth, json={"prompt": "a cat", "background": "transparent", "output_format": "jpeg"})
    assert r.status_code == 400 and error_of(r)["param"] == "output_format"


@pytest.mark.parametrize("fmt", ["png", "jpeg", "webp"])
def test_a_third_party_reader_finds_the_parameters(oai, fmt):
    from sd_parsers import ParserManager

    r = oai.images.generate(
        prompt="a red apple", size=SIZE, output_format=fmt, extra_body={"seed": 11, "negative_prompt": "blurry"}
    )
    info = ParserManager().parse(Image.open(io.BytesIO(__import__("base64").b64decode(r.data[0].b64_json))))
    assert info is not None and info.generator.name == "AUTOMATIC1111"
    assert [p.value for p in info.prompts] == ["a red apple"]
    sampler = info.samplers[0]
    assert sampler.parameters["seed"] == "11" and [m.name for m in info.models] == ["tiny"]
    assert "Model hash: " in info.raw_parameters.get("parameters", "") or any(
        "hash" in str(v).lower() for v in info.raw_parameters.values()
    )


def test_typography_is_a_request_parameter(oai):
    r = oai.images.generate(prompt='a sign that says "OPEN"', size=SIZE, extra_body={"typography": "off"})
    assert len(r.data) == 1


def test_metrics_parse_as_prometheus_text(client, auth):
    client.post(GEN, headers=auth, json={"prompt": "a cat", "size": SIZE})
    client.post(GEN, headers=auth, json={"prompt": "a cat", "size": "99x99"})
    text = client.get("/metrics").text
    families = {f.name: f for f in text_string_to_metric_families(text)}
    requests = families["limner_http_requests"]
    routes = {(s.labels["route"], s.labels["status"]) for s in requests.samples if s.name.endswith("_total")}
    assert ("/v1/images/generations", "200") in routes and ("/v1/images/generations", "400") in routes
    assert "limner_http_request_seconds" in families and "limner_engine_queued_images" in families
    images = {s.labels["model"]: s.value for s in families["limner_images"].samples}
    assert images["tiny"] >= 1
    errors = {s.labels["code"]: s.value for s in families["limner_errors"].samples if s.name.endswith("_total")}
    assert sum(errors.values()) >= 1


def test_metrics_can_require_a_token(settings):
    settings.metrics_token = "scrape-me"
    with TestClient(create_app(settings)) as tc:
        assert tc.get("/metrics").status_code == 401
        assert tc.get("/metrics", headers={"Authorization": "Bearer scrape-me"}).status_code == 200
