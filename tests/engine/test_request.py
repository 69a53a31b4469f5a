import io

import pytest
from PIL import Image

from limner.engine.request import GeneratedImage, GenerationRequest, common_settings, parse_size
from limner.errors import InvalidRequest


@pytest.mark.parametrize(
    ("kwargs", "param"),
    [
        ({"prompt": ""}, "prompt"),
        ({"prompt": "   \n"}, "prompt"),
        ({"prompt": None}, "prompt"),
        ({"prompt": "x" * 2001}, "prompt"),
        ({"negative_prompt": None}, "negative_prompt"),
        ({"n": 0}, "n"),
        ({"n": 11}, "n"),
        ({"n": 2.0}, "n"),
        ({"n": True}, "n"),
        ({"size": "big"}, "size"),
        ({"size": "256x"}, "size"),
        ({"size": "256*256"}, "size"),
        ({"size": "4x4"}, "size"),
        ({"size": "256x8192"}, "size"),
        ({"seed": -1}, "seed"),
        ({"seed": 2**63}, "seed"),
        ({"seed": "7"}, "seed"),
        ({"num_inference_steps": -5}, "num_inference_steps"),
        ({"num_inference_steps": 0}, "num_inference_steps"),
        ({"num_inference_steps": 201}, "num_inference_steps"),
        ({"num_inference_steps": 2.5}, "num_inference_steps"),
        ({"steps_scale": 0}, "steps_scale"),
        ({"steps_scale": 4.5}, "steps_scale"),
        ({"steps_scale": True}, "steps_scale"),
        ({"guidance_scale": -1.0}, "guidance_scale"),
        ({"guidance_scale": 31}, "guidance_scale"),
        ({"guidance_scale": "7"}, "guidance_scale"),
        ({"strength": 0.0}, "strength"),
        ({"strength": 1.5}, "strength"),
        ({"mask": Image.new("L", (8, 8))}, "mask"),
    ],
)
def test_validate_names_the_bad_parameter(kwargs, param):
    req = GenerationRequest(**{"prompt": "a red apple", **kwargs})
    with pytest.raises(InvalidRequest) as err:
        req.validate()
    assert err.value.param == param
    assert err.value.status == 400 and err.value.type == "invalid_request_error"


def test_validate_accepts_the_limits():
    for kwargs in (
        {"n": 1, "size": "8x8", "seed": 0, "num_inference_steps": 1, "guidance_scale": 0},
        {"n": 10, "size": "4096X4096", "seed": 2**63 - 1, "num_inference_steps": 200},
        {"guidance_scale": 30.0, "strength": 1.0, "image": Image.new("RGB", (8, 8))},
    ):
        GenerationRequest("a red apple", **kwargs).validate()


def test_steps_scale_is_a_multiple_of_the_models_default_and_named_steps_win():
    defaults = {"num_inference_steps": 6, "guidance_scale": 4.0}
    for scale, steps in ((0.5, 3), (1.5, 9), (0.1, 1), (4, 24), (0.25, 2)):  # halves round up
        assert common_settings(GenerationRequest("a", steps_scale=scale), defaults)["num_inference_steps"] == steps
    named = GenerationRequest("a", steps_scale=0.5, num_inference_steps=20)
    assert common_settings(named, defaults)["num_inference_steps"] == 20


def test_parse_size():
    assert parse_size("256x128") == (256, 128)
    assert parse_size("64X64") == (64, 64)


def test_each_image_gets_its_own_seed():
    assert GenerationRequest("a", n=3, seed=41).seeds() == [41, 42, 43]
    req = GenerationRequest("a", n=2)
    drawn = req.seeds()
    assert req.seed == drawn[0] and drawn == [drawn[0], drawn[0] + 1]
    assert req.seeds() == drawn  # drawn once, then fixed
    assert 0 <= drawn[0] < 2**32


def test_generated_image_encodes_png_with_parameters_and_other_formats_plainly():
    img = GeneratedImage(Image.new("RGB", (8, 8), (200, 10, 10)), 5, "a", "tiny", {"prompt": "a", "seed": 5})
    png = img.encode("png")
    with Image.open(io.BytesIO(png)) as im:
        assert im.format == "PNG" and im.text["parameters"].startswith("a\nSeed: 5")
    for fmt in ("jpeg", "webp"):
        with Image.open(io.BytesIO(img.encode(fmt, quality=80))) as im:
            assert im.format == fmt.upper() and im.size == (8, 8)


def test_steps_scale_survives_a_stored_job_and_a_trip_to_a_replica():
    """The Image Creator's job rows and Ray's RemoteJob carry the API's quality: a job re-run
    after a crash, or drawn on another machine, takes the steps it was asked for."""
    from limner.server.runner import _request_of, spec_of

    req = GenerationRequest("a red apple", seed=3, steps_scale=0.5)
    assert _request_of(spec_of(req, None), None).steps_scale == 0.5
    old_row = {k: v for k, v in spec_of(req, None).items() if k != "steps_scale"}  # from before the field
    assert _request_of(old_row, None).steps_scale == 1.0
    ray_serve = pytest.importorskip("limner.server.ray_serve")
    assert ray_serve.RemoteJob.of(req).request().steps_scale == 0.5
