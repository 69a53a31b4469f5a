import numpy as np
import pytest
from PIL import Image
from tiny_diffusers import DIFFUSERS_NUMPY_WARNING

from limner.engine.diffusers_backend import DiffusersBackend
from limner.engine.request import GenerationRequest
from limner.errors import Cancelled, CheckpointError, InvalidRequest

pytestmark = pytest.mark.filterwarnings(DIFFUSERS_NUMPY_WARNING)


@pytest.fixture(scope="module")
def backend(tiny_sd) -> DiffusersBackend:
    return DiffusersBackend("tiny-sd", tiny_sd, device="cpu", defaults={"num_inference_steps": 3})


def request(**kw) -> GenerationRequest:
    return GenerationRequest(**{"prompt": "a red apple", "seed": 1, **kw})


def pixels(backend: DiffusersBackend, req: GenerationRequest) -> list[np.ndarray]:
    result = backend.generate([req])[0]
    assert isinstance(result, list)
    return [np.asarray(g.image) for g in result]


def test_info_reads_size_modes_and_parameters_from_the_pipeline(backend, tiny_sd):
    info = backend.info()
    assert (info.name, info.backend, info.path) == ("tiny-sd", "diffusers", str(tiny_sd))
    assert info.sizes == ["16x16"]  # UNet sample size 8 × VAE factor 2
    assert info.modes == ["text2img", "img2img", "inpaint"]
    assert info.defaults == {"num_inference_steps": 3, "guidance_scale": 5.0}
    assert info.description == "diffusers StableDiffusionPipeline"
    assert 0 < info.parameters < 200_000


def test_a_folder_that_is_no_pipeline_is_a_checkpoint_error(tmp_path):
    with pytest.raises(CheckpointError, match="cannot load a diffusers pipeline"):
        DiffusersBackend("broken", tmp_path, device="cpu")


@pytest.mark.parametrize(
    ("kwargs", "param"),
    [({"size": "18x18"}, "size"), ({"sampler": "euler"}, "sampler")],
)
def test_requests_the_pipeline_cannot_do_are_refused(backend, kwargs, param):
    with pytest.raises(InvalidRequest) as err:
        backend.resolve(request(**kwargs))
    assert err.value.param == param


def test_seeded_images_are_reproducible_and_independent_of_their_batch(backend):
    two = backend.generate([request(n=2, seed=5)])[0]
    assert [g.seed for g in two] == [5, 6]
    first = [np.asarray(g.image) for g in two]
    assert first[0].shape == (16, 16, 3)
    assert np.array_equal(pixels(backend, request(seed=5))[0], first[0])
    assert np.array_equal(pixels(backend, request(seed=6))[0], first[1])
    assert not np.array_equal(first[0], first[1])


def test_guidance_and_prompt_change_the_image(backend):
    base = pixels(backend, request())[0]
    assert not np.array_equal(pixels(backend, request(prompt="a blue car"))[0], base)
    assert not np.array_equal(pixels(backend, request(guidance_scale=1.5))[0], base)


def test_other_sizes_divisible_by_the_vae_factor_work(backend):
    assert pixels(backend, request(size="24x32"))[0].shape == (32, 24, 3)


def test_progress_and_cancellation(backend):
    events = []
    pixels(backend, request(num_inference_steps=4, on_progress=events.append))
    assert [(e.step, e.total) for e in events] == [(i, 4) for i in range(1, 5)]

    req = request(num_inference_steps=4)
    seen = []

    def cancel_after_one(p):
        seen.append(p.step)
        req.cancel.set()

    req.on_progress = cancel_after_one
    with pytest.raises(Cancelled):
        backend.generate([req])
    assert seen == [1]


def test_inpainting_keeps_the_source_outside_the_mask_exactly(backend):
    rng = np.random.default_rng(0)
    src = Image.fromarray(rng.integers(0, 256, (16, 16, 3), dtype=np.uint8))
    mask = Image.new("L", (16, 16), 0)
    mask.paste(255, (4, 4, 12, 10))
    inside = np.asarray(mask) > 127
    out = pixels(backend, request(image=src, mask=mask, strength=1.0))[0]
    assert np.array_equal(out[~inside], np.asarray(src)[~inside])
    assert not np.array_equal(out[inside], np.asarray(src)[inside])


def test_img2img_records_its_mode_and_strength(backend):
    src = Image.new("RGB", (16, 16), (200, 30, 30))
    image = backend.generate([request(image=src, strength=0.5, num_inference_steps=4)])[0][0]
    assert image.parameters["mode"] == "img2img" and image.parameters["strength"] == 0.5
    assert image.parameters["sampler"] == "EulerDiscreteScheduler"
    assert image.parameters["backend"] == "diffusers"
