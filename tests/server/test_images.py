"""``/v1/images/*`` through the official ``openai`` client: generations, edits, variations and
streaming, against the tiny untrained model."""

from __future__ import annotations

import io
import json

import numpy as np
import openai
import pytest
from api_helpers import SIZE, STEPS, decode, png_bytes
from PIL import Image

FAST = {"num_inference_steps": STEPS}


def pixels(b64: str) -> np.ndarray:
    return np.asarray(decode(b64).convert("RGB"))


# -- generations ------------------------------------------------------------------------------------


def test_generate_b64_json(oai):
    r = oai.images.generate(prompt="a red apple", extra_body=FAST)
    assert len(r.data) == 1
    img = decode(r.data[0].b64_json)
    assert img.format == "PNG" and f"{img.width}x{img.height}" == SIZE
    assert r.data[0].url is None
    assert r.data[0].revised_prompt == "a red apple"
    assert r.created > 0 and r.size == SIZE and r.output_format == "png"


def test_generate_png_carries_parameters(oai):
    r = oai.images.generate(prompt="a red apple", extra_body={"seed": 3, **FAST})
    img = decode(r.data[0].b64_json)
    assert "a red apple" in img.text["parameters"]
    assert "Seed: 3" in img.text["parameters"]
    meta = json.loads(img.text["limner"])
    assert meta["seed"] == 3 and meta["model"] == "tiny" and meta["num_inference_steps"] == STEPS


def test_generate_usage(oai):
    r = oai.images.generate(prompt="three red apples", n=2, extra_body=FAST)
    u = r.usage
    assert u is not None
    assert u.input_tokens == 3 and u.input_tokens_details.text_tokens == 3
    assert u.total_tokens == u.input_tokens + u.output_tokens
    extra = u.model_extra or {}
    assert extra["images"] == 2 and extra["pixels"] == 2 * 128 * 128 and extra["seconds"] >= 0


def test_generate_url_downloads_png_with_metadata(client, oai):
    r = oai.images.generate(prompt="a red apple", response_format="url", extra_body=FAST)
    assert r.data[0].b64_json is None
    url = r.data[0].url
    assert url.startswith(str(client.base_url) + "/v1/files/file-")
    got = client.get(url)  # no key: the signature is the credential
    assert got.status_code == 200 and got.headers["content-type"] == "image/png"
    img = Image.open(io.BytesIO(got.content))
    assert {"parameters", "limner"} <= set(img.text)
    assert json.loads(img.text["limner"])["prompt"] == "a red apple"


def test_generate_url_uses_public_url(client, settings, oai):
    settings.public_url = "https://images.example.org"
    r = oai.images.generate(prompt="a red apple", response_format="url", extra_body=FAST)
    assert r.data[0].url.startswith("https://images.example.org/v1/files/file-")


@pytest.mark.parametrize(("fmt", "pil"), [("jpeg", "JPEG"), ("webp", "WEBP"), ("png", "PNG")])
def test_output_formats_decode(oai, fmt, pil):
    r = oai.images.generate(prompt="a red apple", output_format=fmt, output_compression=20, extra_body=FAST)
    img = decode(r.data[0].b64_json)
    assert img.format == pil and img.size == (128, 128)
    assert r.output_format == fmt


def test_seed_reproducible_through_the_api(oai):
    a = oai.images.generate(prompt="a red apple", extra_body={"seed": 7, **FAST})
    b = oai.images.generate(prompt="a red apple", extra_body={"seed": 7, **FAST})
    c = oai.images.generate(prompt="a red apple", extra_body={"seed": 8, **FAST})
    assert np.array_equal(pixels(a.data[0].b64_json), pixels(b.data[0].b64_json))
    assert not np.array_equal(pixels(a.data[0].b64_json), pixels(c.data[0].b64_json))


def test_n_images_are_distinct(oai):
    r = oai.images.generate(prompt="a red apple", n=3, extra_body={"seed": 1, **FAST})
    assert len(r.data) == 3
    arrays = [pixels(d.b64_json).tobytes() for d in r.data]
    assert len(set(arrays)) == 3
    seeds = [json.loads(decode(d.b64_json).text["limner"])["seed"] for d in r.data]
    assert seeds == [1, 2, 3]  # image i uses seed + i


def test_limner_extras_reach_the_engine(oai):
    r = oai.images.generate(
        prompt="a red apple",
        size="32x32",
        extra_body={
            "seed": 5,
            "negative_prompt": "green",
            "num_inference_steps": 3,
            "guidance_scale": 2.5,
            "sampler": "heun",
        },
    )
    img = decode(r.data[0].b64_json)
    meta = json.loads(img.text["limner"])
    assert img.size == (32, 32) and r.size == "32x32"
    assert meta["negative_prompt"] == "green" and meta["num_inference_steps"] == 3
    assert meta["guidance_scale"] == 2.5 and meta["sampler"] == "heun"


def test_quality_scales_the_models_default_steps(oai):
    """low: half the model's default steps (the test model's 20), high: one and a half times;
    steps named outright win over quality."""
    for quality, steps in (("low", 10), ("high", 30), ("auto", 20)):
        r = oai.images.generate(prompt="a red apple", quality=quality)
        assert json.loads(decode(r.data[0].b64_json).text["limner"])["num_inference_steps"] == steps
        assert r.quality == quality
    r = oai.images.generate(prompt="a red apple", quality="low", extra_body={"num_inference_steps": 3})
    assert json.loads(decode(r.data[0].b64_json).text["limner"])["num_inference_steps"] == 3


def test_user_and_size_auto_accepted(oai):
    r = oai.images.generate(prompt="a red apple", size="auto", user="u-1", extra_body=FAST)
    assert r.size == SIZE


def test_request_id_on_success(client, auth):
    r = client.post(
        "/v1/images/generations",
        json={"prompt": "a red apple", **FAST},
        headers={**auth, "x-request-id": "trace-42.a:b"},
    )
    assert r.status_code == 200 and r.headers["x-request-id"] == "trace-42.a:b"
    r = client.post("/v1/images/generations", json={"prompt": "a red apple", **FAST}, headers=auth)
    assert r.headers["x-request-id"].startswith("req_")


def test_insane_request_id_is_replaced(client, auth):
    r = client.get("/v1/models", headers={**auth, "x-request-id": "x" * 65})
    assert r.headers["x-request-id"].startswith("req_")
    r = client.get("/v1/models", headers={**auth, "x-request-id": "a b<script>"})
    assert r.headers["x-request-id"].startswith("req_")


# -- edits and variations ---------------------------------------------------------------------------


def _source_and_mask() -> tuple[Image.Image, Image.Image]:
    src = Image.new("RGB", (128, 128), (200, 30, 30))
    mask = Image.new("RGBA", (128, 128), (0, 0, 0, 255))
    mask.paste((0, 0, 0, 0), (0, 0, 64, 128))  # left half transparent: repaint it
    return src, mask


def test_edit_with_mask_keeps_opaque_pixels(oai):
    src, mask = _source_and_mask()
    r = oai.images.edit(
        image=("source.png", png_bytes(src), "image/png"),
        mask=("mask.png", png_bytes(mask), "image/png"),
        prompt="a blue square",
        extra_body={"seed": 1, **FAST},
    )
    out = pixels(r.data[0].b64_json)
    keep, repaint = out[:, 64:], out[:, :64]
    assert (keep == np.array([200, 30, 30], dtype=np.uint8)).all()
    assert (np.abs(repaint.astype(int) - [200, 30, 30]).sum(-1) > 30).mean() > 0.9
    meta = json.loads(decode(r.data[0].b64_json).text["limner"])
    assert meta["mode"] == "inpaint" and meta["strength"] == 1.0


def test_edit_without_mask_is_image_to_image(oai):
    src, _ = _source_and_mask()
    r = oai.images.edit(
        image=("source.png", png_bytes(src), "image/png"),
        prompt="a blue square",
        n=2,
        extra_body={"strength": 0.5, **FAST},
    )
    assert len(r.data) == 2
    meta = json.loads(decode(r.data[0].b64_json).text["limner"])
    assert meta["mode"] == "img2img" and meta["strength"] == 0.5


def test_edit_mask_size_mismatch(oai):
    src, mask = _source_and_mask()
    with pytest.raises(openai.BadRequestError) as e:
        oai.images.edit(
            image=("source.png", png_bytes(src), "image/png"),
            mask=("mask.png", png_bytes(mask.resize((64, 64))), "image/png"),
            prompt="a blue square",
        )
    assert e.value.status_code == 400
    assert e.value.body["param"] == "mask" and e.value.body["code"] == "invalid_mask"


def test_edit_mask_without_alpha(oai):
    src, mask = _source_and_mask()
    with pytest.raises(openai.BadRequestError) as e:
        oai.images.edit(
            image=("source.png", png_bytes(src), "image/png"),
            mask=("mask.png", png_bytes(mask.convert("L")), "image/png"),
            prompt="a blue square",
        )
    assert e.value.body["param"] == "mask" and "alpha" in e.value.body["message"]


def test_edit_accepts_image_array_field(client, auth):
    src, mask = _source_and_mask()
    r = client.post(
        "/v1/images/edits",
        headers=auth,
        data={"prompt": "a blue square", "num_inference_steps": str(STEPS)},
        files=[
            ("image[]", ("source.png", png_bytes(src), "image/png")),
            ("mask", ("mask.png", png_bytes(mask), "image/png")),
        ],
    )
    assert r.status_code == 200, r.text
    assert pixels(r.json()["data"][0]["b64_json"])[0, 127].tolist() == [200, 30, 30]


def test_edit_rejects_two_images(client, auth):
    src, _ = _source_and_mask()
    r = client.post(
        "/v1/images/edits",
        headers=auth,
        data={"prompt": "a blue square"},
        files=[("image[]", ("a.png", png_bytes(src), "image/png"))] * 2,
    )
    assert r.status_code == 400 and r.json()["error"]["param"] == "image"


def test_edit_rejects_non_image(client, auth):
    r = client.post(
        "/v1/images/edits",
        headers=auth,
        data={"prompt": "a blue square"},
        files={"image": ("a.png", b"not an image", "image/png")},
    )
    assert r.status_code == 400
    assert r.json()["error"]["param"] == "image" and r.json()["error"]["code"] == "invalid_image"


def test_edit_url_response(client, oai):
    src, mask = _source_and_mask()
    r = oai.images.edit(
        image=("source.png", png_bytes(src), "image/png"),
        mask=("mask.png", png_bytes(mask), "image/png"),
        prompt="a blue square",
        response_format="url",
        extra_body=FAST,
    )
    got = client.get(r.data[0].url)
    assert got.status_code == 200 and got.content[:8] == b"\x89PNG\r\n\x1a\n"


@pytest.mark.filterwarnings("ignore:deprecated:DeprecationWarning")  # openai marks it deprecated
def test_variations(oai):
    first = oai.images.generate(prompt="a red apple", extra_body={"seed": 2, **FAST})
    source = decode(first.data[0].b64_json)  # carries its prompt in the PNG chunks
    r = oai.images.create_variation(
        image=("apple.png", png_bytes_with_text(source), "image/png"),
        n=2,
        extra_body=FAST,
    )
    assert len(r.data) == 2
    meta = json.loads(decode(r.data[0].b64_json).text["limner"])
    assert meta["mode"] == "img2img" and meta["prompt"] == "a red apple"
    assert meta["strength"] == 0.6


@pytest.mark.filterwarnings("ignore:deprecated:DeprecationWarning")
def test_variations_of_a_plain_image(oai):
    src, _ = _source_and_mask()
    r = oai.images.create_variation(image=("plain.png", png_bytes(src), "image/png"))
    meta = json.loads(decode(r.data[0].b64_json).text["limner"])
    assert meta["prompt"] == "an image"


def test_variations_refuse_prompt(client, auth):
    src, _ = _source_and_mask()
    r = client.post(
        "/v1/images/variations",
        headers=auth,
        data={"prompt": "a dog"},
        files={"image": ("a.png", png_bytes(src), "image/png")},
    )
    assert r.status_code == 400
    assert r.json()["error"]["code"] == "unknown_parameter"
    assert r.json()["error"]["param"] == "prompt"


def png_bytes_with_text(img: Image.Image) -> bytes:
    from PIL import PngImagePlugin

    info = PngImagePlugin.PngInfo()
    for k, v in img.text.items():
        info.add_text(k, v)
    buf = io.BytesIO()
    img.save(buf, format="PNG", pnginfo=info)
    return buf.getvalue()


# -- streaming --------------------------------------------------------------------------------------


def test_stream_partial_images(oai):
    stream = oai.images.generate(
        prompt="a red apple",
        stream=True,
        partial_images=2,
        extra_body={"num_inference_steps": 6, "seed": 4},
    )
    events = list(stream)
    assert [e.type for e in events] == [
        "image_generation.partial_image",
        "image_generation.partial_image",
        "image_generation.completed",
    ]
    assert [e.partial_image_index for e in events[:2]] == [0, 1]
    partial = decode(events[0].b64_json)
    assert partial.size == (128, 128)
    done = events[-1]
    assert done.size == SIZE and done.output_format == "png"
    assert done.usage is not None and done.usage.input_tokens == 3
    final = decode(done.b64_json)
    assert json.loads(final.text["limner"])["seed"] == 4
    # the streamed image is the same as the non-streamed one with the same seed
    plain = oai.images.generate(prompt="a red apple", extra_body={"num_inference_steps": 6, "seed": 4})
    assert np.array_equal(pixels(done.b64_json), pixels(plain.data[0].b64_json))


def test_stream_without_partials_and_n(oai):
    events = list(oai.images.generate(prompt="a red apple", n=2, stream=True, extra_body=FAST))
    assert [e.type for e in events] == ["image_generation.completed"] * 2


def test_stream_edit(oai):
    src, mask = _source_and_mask()
    events = list(
        oai.images.edit(
            image=("source.png", png_bytes(src), "image/png"),
            mask=("mask.png", png_bytes(mask), "image/png"),
            prompt="a blue square",
            stream=True,
            partial_images=1,
            extra_body=FAST,
        )
    )
    assert [e.type for e in events] == ["image_edit.partial_image", "image_edit.completed"]


def test_stream_error_before_first_byte_keeps_status(oai):
    with pytest.raises(openai.BadRequestError) as e:
        oai.images.generate(prompt="a red apple", size="64x64", stream=True, partial_images=1)
    assert e.value.body["param"] == "size"


def test_stream_error_after_partials_is_an_error_event(client, oai):
    client.app.state.policy.output_checks.append(lambda img: "test_category")
    stream = oai.images.generate(
        prompt="a red apple", stream=True, partial_images=2, extra_body={"num_inference_steps": 6}
    )
    seen = []
    with pytest.raises(openai.APIError) as e:
        for event in stream:
            seen.append(event.type)
    assert seen == ["image_generation.partial_image"] * 2
    assert e.value.body["code"] == "moderation_blocked"
    assert e.value.body["type"] == "image_generation_user_error"


def test_a_prompt_longer_than_the_encoder_reads_says_what_was_read(oai):
    """The text encoder reads 48 tokens; the rest of a longer prompt is cut, and revised_prompt
    (as OpenAI's) says so by giving the part that was read."""
    long = " ".join(["a red apple on a wooden table in soft morning light"] * 6)
    r = oai.images.generate(prompt=long, size=SIZE, extra_body={"num_inference_steps": 1})
    read = r.data[0].revised_prompt
    assert long.startswith(read) and 100 < len(read) < len(long)
    short = oai.images.generate(prompt="a red apple", size=SIZE, extra_body={"num_inference_steps": 1})
    assert short.data[0].revised_prompt == "a red apple"
