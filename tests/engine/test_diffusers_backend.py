import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from tiny_diffusers import (
    DIFFUSERS_NUMPY_WARNING,
    export_single_file,
    make_tiny_flux,
    make_tiny_lcm,
    make_tiny_lora,
    save_fp16_variant,
)

from limner.engine import Engine, diffusers_backend
from limner.engine.diffusers_backend import DiffusersBackend
from limner.engine.registry import ModelSpec, check
from limner.engine.request import GenerationRequest
from limner.errors import Cancelled, InvalidRequest, LimnerError

pytestmark = pytest.mark.filterwarnings(DIFFUSERS_NUMPY_WARNING)


@pytest.fixture(scope="module")
def loras(tiny_sd, tmp_path_factory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("loras")
    return {
        name: make_tiny_lora(tiny_sd, root / f"{name}.safetensors", seed) for seed, name in enumerate(["ink", "pixel"])
    }


@pytest.fixture(scope="module")
def backend(tiny_sd, loras) -> DiffusersBackend:
    """The tiny pipeline with two LoRA adapters, none of them on unless a request asks."""
    return DiffusersBackend("tiny-sd", tiny_sd, device="cpu", loras=loras, defaults={"num_inference_steps": 3})


def request(**kw) -> GenerationRequest:
    return GenerationRequest(**{"prompt": "a red apple", "seed": 1, **kw})


def pixels(backend: DiffusersBackend, req: GenerationRequest) -> list[np.ndarray]:
    result = backend.generate([req])[0]
    assert isinstance(result, list)
    return [np.asarray(g.image) for g in result]


@pytest.fixture(scope="module")
def base(backend) -> np.ndarray:
    """The seed-1 apple without any adapter."""
    return pixels(backend, request())[0]


def test_info_reads_size_modes_scheduler_and_adapters_from_the_pipeline(backend, tiny_sd):
    info = backend.info()
    assert (info.name, info.backend, info.path) == ("tiny-sd", "diffusers", str(tiny_sd))
    assert info.sizes == ["16x16"]  # UNet sample size 8 × VAE factor 2
    assert info.modes == ["text2img", "img2img", "inpaint"]
    assert info.defaults == {"num_inference_steps": 3, "guidance_scale": 5.0, "sampler": "EulerDiscreteScheduler"}
    assert info.description == "diffusers StableDiffusionPipeline; LoRA adapters: ink, pixel"
    assert info.loras == ["ink", "pixel"]  # what list_models (MCP) shows an assistant
    assert 0 < info.parameters < 200_000


def test_a_folder_that_is_no_pipeline_says_so_before_loading(tmp_path):
    with pytest.raises(LimnerError, match=r"has no model_index\.json: not a diffusers pipeline folder"):
        DiffusersBackend("broken", tmp_path, device="cpu")


@pytest.mark.parametrize(
    ("kwargs", "param", "message"),
    [
        ({"size": "18x18"}, "size", "divisible by 4"),
        ({"sampler": "euler"}, "sampler", "choose a diffusers scheduler from .*DPMSolverMultistepScheduler"),
        ({"loras": {"watercolour": 1.0}}, "loras", "unknown LoRA adapter 'watercolour'.*it has ink, pixel"),
    ],
)
def test_requests_the_pipeline_cannot_do_are_refused(backend, kwargs, param, message):
    with pytest.raises(InvalidRequest, match=message) as err:
        backend.resolve(request(**kwargs))
    assert err.value.param == param


def test_seeded_images_are_reproducible_and_independent_of_their_batch(backend, base):
    two = backend.generate([request(n=2)])[0]
    assert [g.seed for g in two] == [1, 2]
    first = [np.asarray(g.image) for g in two]
    assert first[0].shape == (16, 16, 3)
    assert np.array_equal(first[0], base)
    assert np.array_equal(pixels(backend, request(seed=2))[0], first[1])
    assert not np.array_equal(first[0], first[1])


def test_guidance_and_prompt_change_the_image(backend, base):
    assert not np.array_equal(pixels(backend, request(prompt="a blue car"))[0], base)
    assert not np.array_equal(pixels(backend, request(guidance_scale=1.5))[0], base)


def test_other_sizes_divisible_by_the_vae_factor_work(backend):
    assert pixels(backend, request(size="24x32"))[0].shape == (32, 24, 3)


def test_a_scheduler_is_chosen_per_request_by_its_diffusers_name_and_leaves_no_state(backend, base):
    req = request(sampler="DPMSolverMultistepScheduler")
    image = backend.generate([req])[0][0]
    assert image.parameters["sampler"] == "DPMSolverMultistepScheduler"
    assert not np.array_equal(np.asarray(image.image), base)
    assert backend.batch_key(req) != backend.batch_key(request())
    again = backend.generate([request()])[0][0]  # the pipeline's own scheduler again, fresh
    assert again.parameters["sampler"] == "EulerDiscreteScheduler"
    assert np.array_equal(np.asarray(again.image), base)


def test_lora_adapters_apply_per_request_with_their_scales(backend, base):
    ink = backend.generate([request(loras={"ink": 1.0})])[0][0]
    assert ink.parameters["loras"] == {"ink": 1.0}
    assert not np.array_equal(np.asarray(ink.image), base)
    half = pixels(backend, request(loras={"ink": 0.5}))[0]
    both = pixels(backend, request(loras={"ink": 1.0, "pixel": 1.0}))[0]
    assert len({a.tobytes() for a in (base, np.asarray(ink.image), half, both)}) == 4
    assert np.array_equal(pixels(backend, request(loras={"ink": 0.0}))[0], base)  # scale 0 is no adapter
    assert np.array_equal(pixels(backend, request())[0], base)  # and nothing stays on after a request
    assert backend.batch_key(request(loras={"ink": 1.0})) != backend.batch_key(request())


def test_a_models_default_loras_apply_unless_the_request_names_its_own(tiny_sd, loras, base):
    styled = DiffusersBackend(
        "styled", tiny_sd, device="cpu", loras=loras, defaults={"num_inference_steps": 3, "loras": {"ink": 1.0}}
    )
    assert np.array_equal(pixels(styled, request())[0], pixels(styled, request(loras={"ink": 1.0}))[0])
    assert np.array_equal(pixels(styled, request(loras={}))[0], base)


def test_progress_previews_and_cancellation(backend, monkeypatch):
    events = []
    final = pixels(backend, request(num_inference_steps=4, previews=True, on_progress=events.append))[0]
    assert [(e.step, e.total) for e in events] == [(i, 4) for i in range(1, 5)]
    assert all(e.previews is not None and e.previews[0].size == (16, 16) for e in events)
    # the last preview is the last latents through the VAE: the image itself, up to rounding
    last = np.asarray(events[-1].previews[0], dtype=np.int16)
    assert np.abs(last - final).max() <= 1
    assert not np.array_equal(np.asarray(events[0].previews[0]), np.asarray(events[-1].previews[0]))

    monkeypatch.setattr(diffusers_backend, "PREVIEW_SIDE", 8)  # latents shrink before decoding
    monkeypatch.setattr(diffusers_backend, "PREVIEWS_PER_RUN", 2)  # decoded every 2nd step, shown until the next
    events = []
    pixels(backend, request(num_inference_steps=4, previews=True, on_progress=events.append))
    assert [e.previews is not None for e in events] == [False, True, True, True]
    assert events[1].previews[0].size == (8, 8)
    assert events[2].previews[0] is events[1].previews[0]

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


def test_img2img_records_its_mode_and_strength_and_counts_the_steps_it_runs(backend):
    src = Image.new("RGB", (16, 16), (200, 30, 30))
    events = []
    req = request(image=src, strength=0.5, num_inference_steps=4, on_progress=events.append)
    image = backend.generate([req])[0][0]
    assert image.parameters["mode"] == "img2img" and image.parameters["strength"] == 0.5
    assert image.parameters["sampler"] == "EulerDiscreteScheduler"
    assert image.parameters["backend"] == "diffusers"
    assert [(e.step, e.total) for e in events] == [(1, 2), (2, 2)]  # strength 0.5 of 4 steps


def test_a_single_file_checkpoint_loads_with_a_local_config_and_makes_the_same_images(tiny_sd, tmp_path, base):
    single = export_single_file(tiny_sd, tmp_path / "tiny-sd.safetensors")
    assert check(ModelSpec("one", "diffusers", single)).detail.startswith(
        "model 'one': a single-file checkpoint needs config = a local StableDiffusionPipeline folder"
    )
    state = check(ModelSpec("one", "diffusers", single, {"config": tiny_sd}))
    assert state.ready and state.detail == (
        "diffusers StableDiffusionPipeline (single file), scheduler EulerDiscreteScheduler"
    )
    one = DiffusersBackend("one", single, device="cpu", config=tiny_sd, defaults={"num_inference_steps": 3})
    assert one.info().description == "diffusers StableDiffusionPipeline"
    assert np.array_equal(pixels(one, request())[0], base)  # the adapters of `backend`, off, change nothing


def test_an_fp16_variant_loads_by_name(tiny_sd, tmp_path):
    folder = save_fp16_variant(tiny_sd, tmp_path / "tiny-fp16")
    assert check(ModelSpec("half", "diffusers", folder)).detail.endswith(
        "holds only fp16 weights; set variant = 'fp16'"
    )
    assert check(ModelSpec("half", "diffusers", folder, {"variant": "fp16"})).ready
    assert "no 'fp8' weights" in check(ModelSpec("half", "diffusers", folder, {"variant": "fp8"})).detail
    half = DiffusersBackend("half", folder, device="cpu", variant="fp16", defaults={"num_inference_steps": 2})
    import torch
    from safetensors.torch import load_file

    saved = load_file(tiny_sd / "unet" / "diffusion_pytorch_model.safetensors")["conv_in.weight"]
    assert half.dtype == torch.float32  # the fp16 files, read into the dtype asked for (auto on CPU)
    assert torch.equal(half.text2img.unet.conv_in.weight.detach(), saved.half().float())
    assert pixels(half, request(num_inference_steps=2))[0].shape == (16, 16, 3)


def test_a_parameter_the_pipeline_does_not_take_is_refused_not_dropped(tmp_path):
    lcm = DiffusersBackend("lcm", make_tiny_lcm(tmp_path), device="cpu", defaults={"num_inference_steps": 2})
    with pytest.raises(InvalidRequest, match=r"lcm \(LatentConsistencyModelPipeline\) takes no negative_prompt") as e:
        lcm.resolve(request(negative_prompt="blurry"))
    assert e.value.param == "negative_prompt"
    assert pixels(lcm, request())[0].shape == (16, 16, 3)  # without it, the pipeline runs

    class Unseeded:  # a pipeline that takes neither a generator nor a step count
        def __call__(self, prompt, width=None, height=None, guidance_scale=None, output_type="pil"): ...

    lcm.text2img = Unseeded()
    with pytest.raises(InvalidRequest, match=r"lcm \(Unseeded\) takes no num_inference_steps; omit it"):
        lcm.resolve(request(num_inference_steps=3))
    with pytest.raises(InvalidRequest, match=r"takes no seed; it cannot draw a given seed"):
        lcm.resolve(request())


def test_cpu_offload_needs_a_cuda_device(tiny_sd):
    with pytest.raises(LimnerError, match="cpu_offload needs a CUDA device, and this one runs on cpu"):
        DiffusersBackend("tiny-sd", tiny_sd, device="cpu", cpu_offload="model")


def test_without_the_extra_a_diffusers_model_is_one_line_naming_it(tiny_sd, monkeypatch):
    monkeypatch.setitem(sys.modules, "diffusers", None)  # `import diffusers` now fails, as when not installed
    want = "model 'tiny-sd' needs the diffusers extra \\(missing: diffusers\\): pip install \"limner\\[diffusers\\]\""
    spec = ModelSpec("tiny-sd", "diffusers", tiny_sd, {"device": "cpu"})
    state = check(spec)
    assert not state.ready and "\n" not in state.detail
    assert (
        state.detail
        == "model 'tiny-sd' needs the diffusers extra (missing: diffusers): pip install \"limner[diffusers]\""
    )
    with Engine(specs=[spec]) as engine, pytest.raises(LimnerError, match=want) as err:
        engine.generate(request())  # per request, the same line
    assert err.value.code == "missing_extra"


def test_without_the_extra_the_cli_says_so_in_one_line(models_toml, tmp_path, monkeypatch, capsys):
    from limner import cli

    monkeypatch.setitem(sys.modules, "diffusers", None)
    monkeypatch.setenv("COLUMNS", "200")  # one line of the terminal for one line of message
    argv = ["limner", "generate", "a", "--models", str(models_toml), "--model", "tiny-sd", "-o", str(tmp_path)]
    monkeypatch.setattr(sys, "argv", argv)
    with pytest.raises(SystemExit) as exit_:
        cli.main()
    assert exit_.value.code == 1
    err = [line for line in capsys.readouterr().err.splitlines() if line.startswith("error")]
    # the extra's brackets survive the console's markup
    assert err == [
        "error: model 'tiny-sd' needs the diffusers extra (missing: diffusers): pip install \"limner[diffusers]\""
    ]


def test_the_images_api_selects_loras_and_refuses_what_the_pipeline_cannot_take(
    backend, tiny_sd, loras, tmp_path, base
):
    import base64
    import io

    from fastapi.testclient import TestClient

    from limner.engine.registry import ModelSpec
    from limner.server.app import create_app
    from limner.server.settings import Settings
    from limner.store.keys import create_key

    specs = [
        ModelSpec("tiny-sd", "diffusers", tiny_sd, {"device": "cpu", "loras": loras}, {"num_inference_steps": 3}),
        ModelSpec("lcm", "diffusers", make_tiny_lcm(tmp_path), {"device": "cpu"}, {"num_inference_steps": 2}),
    ]
    settings = Settings(
        data_dir=tmp_path / "data",
        secret="s",
        engine_factory=lambda: Engine(specs=specs),
        watermark=False,  # compared with the backend's own pixels: no mark on them
        content_credentials=False,
    )
    with TestClient(create_app(settings)) as client:
        with client.app.state.db.session() as s:  # type: ignore[attr-defined]
            key, _ = create_key(s, "test")
        headers = {"Authorization": f"Bearer {key}"}

        def generate(**body) -> tuple[int, dict]:
            r = client.post(
                "/v1/images/generations", headers=headers, json={"prompt": "a red apple", "seed": 1, **body}
            )
            return r.status_code, r.json()

        def pixels_of(answer: dict) -> np.ndarray:
            return np.asarray(Image.open(io.BytesIO(base64.b64decode(answer["data"][0]["b64_json"]))).convert("RGB"))

        status, plain = generate(model="tiny-sd")
        assert status == 200 and np.array_equal(pixels_of(plain), base)
        status, inked = generate(model="tiny-sd", loras={"ink": 1.0})
        assert status == 200 and not np.array_equal(pixels_of(inked), base)
        assert np.array_equal(pixels_of(inked), pixels(backend, request(loras={"ink": 1.0}))[0])

        status, err = generate(model="tiny-sd", loras={"watercolour": 1.0})
        assert status == 400 and err["error"]["param"] == "loras"
        assert "unknown LoRA adapter 'watercolour'" in err["error"]["message"]

        def edit(**fields) -> tuple[int, dict]:  # a form: object-valued fields travel as JSON text
            photo = io.BytesIO()
            Image.fromarray(base).save(photo, format="PNG")
            form = {"prompt": "a red apple", "seed": "1", "model": "tiny-sd", **fields}
            r = client.post("/v1/images/edits", headers=headers, data=form, files={"image": photo.getvalue()})
            return r.status_code, r.json()

        status, plain = edit()
        status_inked, inked = edit(loras='{"ink": 1.0}')
        assert (status, status_inked) == (200, 200) and not np.array_equal(pixels_of(inked), pixels_of(plain))
        for bad in ("ink", '["ink"]', "[" * 3000, '{"ink": ' + "1" * 5000 + "}", '{"ink": 11}'):
            status, err = edit(loras=bad)
            assert status == 400 and err["error"]["param"] == "loras", (bad[:20], err)
        status, err = generate(model="lcm", negative_prompt="blurry")
        assert status == 400 and err["error"]["param"] == "negative_prompt"
        assert "takes no negative_prompt" in err["error"]["message"]
        status, _ = generate(model="tiny-sd", sampler="DDIMScheduler")
        assert status == 200  # a diffusers scheduler by name
        status, err = generate(model="tiny-sd", sampler="heun")
        assert status == 400 and err["error"]["param"] == "sampler"


def test_single_files_are_told_apart_by_their_keys_and_pickles_are_refused(tiny_sd, tmp_path):
    import torch
    from safetensors.torch import save_file

    sdxl = tmp_path / "sdxl.safetensors"
    save_file(
        {"model.diffusion_model.input_blocks.0.0.weight": torch.zeros(1), "conditioner.embedders.1.x": torch.zeros(1)},
        sdxl,
    )
    assert check(ModelSpec("xl", "diffusers", sdxl)).detail.startswith(
        "model 'xl': a single-file checkpoint needs config = a local StableDiffusionXLPipeline folder"
    )
    assert check(ModelSpec("xl", "diffusers", sdxl, {"config": tiny_sd})).detail == (
        f"model 'xl': {sdxl} is a StableDiffusionXLPipeline checkpoint but config {tiny_sd} holds a "
        "StableDiffusionPipeline"
    )
    vae = tmp_path / "vae.safetensors"
    save_file({"encoder.conv_in.weight": torch.zeros(1)}, vae)
    assert "is not a Stable Diffusion 1.x/2.x or SDXL single file" in check(ModelSpec("v", "diffusers", vae)).detail
    pickle = tmp_path / "model.ckpt"
    pickle.write_bytes(b"\x80\x04")
    assert "pickled .ckpt files can run code" in check(ModelSpec("p", "diffusers", pickle)).detail


def test_flux_refuses_a_negative_prompt_and_previews_its_packed_latents(tmp_path):
    flux = DiffusersBackend("flux", make_tiny_flux(tmp_path), device="cpu", defaults={"num_inference_steps": 3})
    assert flux.info().description == "diffusers FluxPipeline"
    with pytest.raises(InvalidRequest, match="uses a negative prompt only with true_cfg_scale") as e:
        flux.resolve(request(negative_prompt="blurry", size="16x16"))
    assert e.value.param == "negative_prompt"
    with pytest.raises(InvalidRequest, match="has no guidance embedding and ignores guidance_scale") as e:
        flux.resolve(request(guidance_scale=3.5, size="16x16"))  # as FLUX.1 schnell
    assert e.value.param == "guidance_scale"
    events = []
    final = pixels(flux, request(size="16x16", previews=True, on_progress=events.append))[0]
    assert [(e.step, e.total) for e in events] == [(1, 3), (2, 3), (3, 3)]
    # FLUX's latents are 2×2 patches packed into tokens: unpacked, the last one decodes to the image
    assert np.abs(np.asarray(events[-1].previews[0], dtype=np.int16) - final).max() <= 1
