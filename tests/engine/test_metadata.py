import io
import json

import numpy as np
from PIL import Image

from limner.engine.metadata import a1111_parameters, png_with_metadata, read_metadata

PARAMS = {
    "prompt": "a red apple, 3D render",
    "negative_prompt": "blurry",
    "model": "limner-1",
    "version": "0.1.0",
    "seed": 42,
    "num_inference_steps": 20,
    "guidance_scale": 4.0,
    "sampler": "dpmpp_2m",
    "size": "256x256",
    "mode": "text2img",
    "strength": 1.0,
    "backend": "limner",
}


def test_parameters_text_is_automatic1111s_format():
    assert a1111_parameters(PARAMS) == (
        "a red apple, 3D render\n"
        "Negative prompt: blurry\n"
        "Steps: 20, Sampler: DPM++ 2M, CFG scale: 4.0, Seed: 42, Size: 256x256, "
        "Model: limner-1, Version: limner 0.1.0"
    )


def test_no_negative_line_without_one_and_strength_only_when_editing():
    text = a1111_parameters({**PARAMS, "negative_prompt": "", "mode": "img2img", "strength": 0.6})
    assert text.splitlines() == [
        "a red apple, 3D render",
        "Steps: 20, Sampler: DPM++ 2M, CFG scale: 4.0, Seed: 42, Size: 256x256, "
        "Model: limner-1, Denoising strength: 0.6, Version: limner 0.1.0",
    ]
    # a scheduler name from a diffusers pipeline is shown as it is
    assert "Sampler: EulerDiscreteScheduler," in a1111_parameters({**PARAMS, "sampler": "EulerDiscreteScheduler"})


def test_png_carries_both_chunks_and_the_pixels_unchanged():
    img = Image.new("RGB", (16, 16), (10, 200, 30))
    img.putpixel((3, 4), (1, 2, 3))
    png = png_with_metadata(img, PARAMS)
    with Image.open(io.BytesIO(png)) as im:
        assert im.text["parameters"] == a1111_parameters(PARAMS)
        assert json.loads(im.text["limner"]) == PARAMS
        assert np.array_equal(np.asarray(im.convert("RGB")), np.asarray(img))
    assert read_metadata(png) == PARAMS


def test_read_metadata_of_a_plain_png_is_empty():
    buf = io.BytesIO()
    Image.new("RGB", (4, 4)).save(buf, format="PNG")
    assert read_metadata(buf.getvalue()) == {}
