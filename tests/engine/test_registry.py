import re
from pathlib import Path

import pytest

from limner.engine import Engine, GenerationRequest
from limner.engine.backend import Backend
from limner.engine.builtin import LimnerBackend
from limner.engine.registry import (
    BACKENDS,
    ModelSpec,
    ModelState,
    check,
    load_models_file,
    shipped_models,
    spec_for_path,
)
from limner.engine.request import ModelInfo
from limner.errors import InvalidRequest, UnknownModel


def test_models_file_names_models_with_paths_backends_options_and_defaults(tmp_path):
    path = tmp_path / "conf" / "models.toml"
    path.parent.mkdir()
    path.write_text(
        'default = "sdxl"\n'
        "[models.mine]\n"
        'path = "weights/mine"\n'
        "[models.sdxl]\n"
        'backend = "diffusers"\n'
        'path = "/models/sdxl-base"\n'
        'device = "cuda"\n'
        'dtype = "float16"\n'
        "defaults = { num_inference_steps = 30, guidance_scale = 6.0 }\n"
        "[models.home]\n"
        'path = "~/models/home"\n'
    )
    specs, default = load_models_file(path)
    assert default == "sdxl"
    assert specs == [
        ModelSpec("mine", "limner", path.parent / "weights/mine"),
        ModelSpec(
            "sdxl",
            "diffusers",
            Path("/models/sdxl-base"),
            {"device": "cuda", "dtype": "float16"},
            {"num_inference_steps": 30, "guidance_scale": 6.0},
        ),
        ModelSpec("home", "limner", Path.home() / "models/home"),
    ]


@pytest.mark.parametrize(
    ("text", "message"),
    [
        (None, "models file .* not found"),
        ("[models.x\npath = 1", "is not valid TOML"),
        (
            '[models.x]\nbackend = "onnx"\npath = "p"',
            "model 'x': unknown backend 'onnx' .known: diffusers, limner",
        ),
        ('[models.x]\nbackend = "limner"', "model 'x' has no path"),
    ],
)
def test_models_file_errors_name_the_file_and_the_problem(tmp_path, text, message):
    path = tmp_path / "models.toml"
    if text is not None:
        path.write_text(text)
    with pytest.raises(InvalidRequest, match=message) as err:
        load_models_file(path)
    assert err.value.param == "models"


def test_engine_registers_the_models_file_with_its_default_and_defaults(models_toml):
    with Engine(models_file=models_toml) as engine:
        assert engine.default == "tiny"
        assert [m["name"] for m in engine.models()] == ["tiny", "tiny-sd"]
        image = engine.generate(GenerationRequest("a red apple", seed=1))[0]
        assert image.model == "tiny"
        assert image.parameters["num_inference_steps"] == 3  # from the file's defaults
        assert engine.backend("tiny").info().defaults["num_inference_steps"] == 3
        # a request's own value wins over the file's
        image = engine.generate(GenerationRequest("a red apple", seed=1, num_inference_steps=2))[0]
        assert image.parameters["num_inference_steps"] == 2


def test_a_path_is_recognised_as_limner_weights_or_a_diffusers_model(tiny_limner, tiny_sd, tmp_path):
    assert spec_for_path(tiny_limner) == ModelSpec("tiny", "limner", tiny_limner)
    single = tiny_limner / "denoiser.safetensors"
    assert spec_for_path(single).backend == "limner"  # a bare weights file also loads
    assert spec_for_path(tiny_sd) == ModelSpec("tiny-sd", "diffusers", tiny_sd)
    with pytest.raises(UnknownModel, match="no model named or at"):
        spec_for_path(tmp_path / "nothing-here")


def test_shipped_models_are_the_weight_folders_holding_a_denoiser(tmp_path, monkeypatch, tiny_limner):
    root = tmp_path / "weights"
    for name in ("limner-2", "limner-1"):
        denoiser = (tiny_limner / "denoiser.safetensors").read_bytes()
        (root / name).mkdir(parents=True)
        (root / name / "denoiser.safetensors").write_bytes(denoiser)
    (root / "limner-0-partial").mkdir()
    (root / "MODEL_CARD.md").write_text("# cards are not models\n")
    monkeypatch.setenv("LIMNER_WEIGHTS", str(root))
    assert shipped_models() == [
        ModelSpec("limner-1", "limner", root / "limner-1"),
        ModelSpec("limner-2", "limner", root / "limner-2"),
    ]
    assert Engine().default == "limner-2"  # the newest name
    monkeypatch.setenv("LIMNER_WEIGHTS", str(tmp_path / "absent"))
    assert shipped_models() == []


class EchoBackend(LimnerBackend):
    """An added backend: registers and is called exactly like the built-in ones."""

    kind = "echo"

    def info(self) -> ModelInfo:
        return ModelInfo(self.name, self.kind, str(self.path), ["32x32"], ["text2img"], 0, {})


def test_an_added_backend_goes_through_the_same_path_as_the_built_ins(tiny_limner, monkeypatch):
    monkeypatch.setitem(BACKENDS, "echo", EchoBackend)
    spec = ModelSpec("echo-1", "echo", tiny_limner, {"device": "cpu"}, {"guidance_scale": 2.0})
    with Engine(specs=[spec]) as engine:
        images = engine.generate(GenerationRequest("a", size="32x32", num_inference_steps=2))
        assert isinstance(engine.backend("echo-1"), EchoBackend)
        assert images[0].parameters["guidance_scale"] == 2.0
        assert engine.models()[0]["backend"] == "echo"


def test_a_backend_named_as_module_and_class_in_models_toml_loads_and_meets_the_protocol(tiny_limner, tmp_path):
    toml = tmp_path / "models.toml"
    toml.write_text(f'[models.echo]\nbackend = "test_registry:EchoBackend"\npath = "{tiny_limner}"\n')
    with Engine(specs=[], models_file=toml) as engine:
        engine.generate(GenerationRequest("a", model="echo", size="32x32", num_inference_steps=2))
        assert type(engine.backend("echo")) is EchoBackend
        assert isinstance(engine.backend("echo"), Backend)  # info, resolve, batch_key, generate, name, kind
    toml.write_text(f'[models.x]\nbackend = "no_such_module:Thing"\npath = "{tiny_limner}"\n')
    with pytest.raises(InvalidRequest, match=r"models.toml.*model 'x'.*'no_such_module:Thing' cannot be loaded"):
        load_models_file(toml)
    toml.write_text(f'[models.x]\nbackend = "sdxl-turbo"\npath = "{tiny_limner}"\n')
    with pytest.raises(InvalidRequest, match=r"unknown backend 'sdxl-turbo' \(known: .*diffusers.*limner"):
        load_models_file(toml)


def test_a_backend_declared_by_an_installed_package_entry_point_loads(tiny_limner, tmp_path, monkeypatch):
    """A package that declares ``[project.entry-points."limner.backends"] echo-ep = "pkg.mod:Class"``
    is found by name, with nothing else to configure."""
    from importlib.metadata import EntryPoint

    from limner.engine import registry

    point = EntryPoint("echo-ep", "test_registry:EchoBackend", "limner.backends")
    monkeypatch.setattr(registry, "entry_points", lambda group: [point] if group == "limner.backends" else [])
    monkeypatch.delitem(BACKENDS, "echo-ep", raising=False)
    toml = tmp_path / "models.toml"
    toml.write_text(f'[models.echo]\nbackend = "echo-ep"\npath = "{tiny_limner}"\n')
    with Engine(specs=[], models_file=toml) as engine:
        assert type(engine.backend("echo")) is EchoBackend
    assert BACKENDS["echo-ep"] is EchoBackend
    BACKENDS.pop("echo-ep")


STRICT = """default = "sdxl"

[models.sdxl]
backend = "diffusers"
path = "sdxl"
{extra}
"""


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (
            "defaults = { num_inference_steps = 30, guidence_scale = 6.0 }",
            r"models.toml:6: model 'sdxl': defaults has unknown key 'guidence_scale'; did you mean 'guidance_scale'\?",
        ),
        ('devise = "cuda"', r"models.toml:6: model 'sdxl' has unknown key 'devise'; did you mean 'device'\?"),
        ("[models.sdxl.defaults]\nsteps = 30", r"models.toml:7: model 'sdxl': defaults has unknown key 'steps'"),
        ('defaults = { num_inference_steps = "30" }', r"models.toml:6: .*num_inference_steps must be an integer"),
        ("defaults = { guidance_scale = 40 }", r"models.toml:6: .*guidance_scale must be a number from 0 to 30"),
        ("defaults = { loras = { ink = true } }", r"models.toml:6: .*loras.ink must be a number, not True"),
        ('dtype = "float8"', r"models.toml:6: model 'sdxl': dtype must be one of 'auto', 'float32', .*not 'float8'"),
        ("cpu_offload = true", r"models.toml:6: model 'sdxl': cpu_offload must be one of 'none', 'model'"),
        ("device = 0", r"models.toml:6: model 'sdxl': device must be a string, not 0"),
        ("loras = 3", r"models.toml:6: model 'sdxl': loras must be a table, not 3"),
        (
            "defaults = { guidance_interval = [0.2, 0.8] }",
            r"models.toml:6: model 'sdxl': defaults.guidance_interval is a setting of Limner models, not of 'diffusers'",
        ),
        (
            '[models.other]\npath = "x"\ndefaults = { guidance_interval = [0.8, 0.2] }',
            r"models.toml:8: .*guidance_interval must be two noise levels \[lo, hi\] with 0 ≤ lo < hi ≤ 1",
        ),
        (
            '[models.other]\npath = "x"\ndefaults = { guidance_interval = 0.5 }',
            r"models.toml:8: .*guidance_interval must be a list, not 0.5",
        ),
        ('[models.other]\npath = "x"\ndefaults = { shift = 0 }', r"models.toml:8: .*shift must be above 0"),
        (
            '[models.other]\npath = "x"\ndefaults = { sigmas = [1.0, 0.5, 0.6] }',
            r"models.toml:8: .*sigmas must be 1 to 200 noise levels falling from 1 \(pure noise\) to above 0",
        ),
        (
            '[models.other]\npath = "x"\ndefaults = { sigmas = [1.0, 0.5, 0.0] }',
            r"models.toml:8: .*sigmas must be 1 to 200 noise levels",
        ),
        (
            '[models.other]\npath = "x"\ndefaults = { sigmas = [0.9, 0.5], num_inference_steps = 2 }',
            r"models.toml:8: .*sigmas must be 1 to 200 noise levels falling from 1",
        ),
        (
            '[models.other]\npath = "x"\ndefaults = { sigmas = [1.0, 0.5], num_inference_steps = 6 }',
            r"models.toml:8: .*sigmas has 2 noise levels but num_inference_steps is 6",
        ),
        (
            '[models.other]\npath = "x"\ndefaults = { sigmas = [1.0, 0.5] }',
            r"models.toml:8: .*sigmas has 2 noise levels but num_inference_steps is not set: set it to 2",
        ),
        (
            '[models.other]\npath = "x"\ndefaults = { tone_guidance = -1.0 }',
            r"models.toml:8: .*tone_guidance must be from 0 \(off\) to 30",
        ),
        (
            '[models.other]\nbackend = "limner"\npath = "x"\nvariant = "fp16"',
            r"models.toml:9: model 'other' has unknown key 'variant'",
        ),
    ],
)
def test_models_file_is_strict_naming_file_line_and_key(tmp_path, extra, message):
    path = tmp_path / "models.toml"
    path.write_text(STRICT.format(extra=extra))
    with pytest.raises(InvalidRequest, match=message) as err:
        load_models_file(path)
    assert err.value.param == "models" and "\n" not in err.value.message


def test_models_file_top_level_is_strict_too(tmp_path):
    path = tmp_path / "models.toml"
    path.write_text('defualt = "x"\n')
    with pytest.raises(
        InvalidRequest, match=r"models.toml:1: has unknown top-level key 'defualt'; did you mean 'default'"
    ):
        load_models_file(path)


def test_models_file_types_the_diffusers_options_and_resolves_paths_from_its_folder(tmp_path):
    path = tmp_path / "models.toml"
    path.write_text(
        "[models.one]\n"
        'backend = "diffusers"\n'
        'path = "sd15.safetensors"\n'
        'config = "sd15-config"\n'
        'loras = { ink = "loras/ink.safetensors" }\n'
        'cpu_offload = "model"\n'
        'defaults = { guidance_scale = 7, loras = { ink = 1 }, sampler = "DPMSolverMultistepScheduler" }\n'
    )
    (spec,), _ = load_models_file(path)
    assert spec.path == tmp_path / "sd15.safetensors"
    assert spec.options == {
        "config": tmp_path / "sd15-config",
        "loras": {"ink": tmp_path / "loras/ink.safetensors"},
        "cpu_offload": "model",
    }
    assert spec.defaults == {"guidance_scale": 7.0, "loras": {"ink": 1.0}, "sampler": "DPMSolverMultistepScheduler"}
    assert isinstance(spec.defaults["guidance_scale"], float)


def test_check_looks_at_each_model_without_loading_it(tiny_limner, tiny_sd, tmp_path, monkeypatch):
    import diffusers

    def no_loading(*a, **k):
        raise AssertionError("check loaded a model")

    monkeypatch.setattr(diffusers.DiffusionPipeline, "from_pretrained", no_loading)
    monkeypatch.setattr("limner.engine.builtin.LimnerBackend.__init__", no_loading)

    state = check(ModelSpec("tiny", "limner", tiny_limner))
    assert state.ready and re.fullmatch(r"Limner \S+ denoiser(, \d+ training steps)?", state.detail), state.detail
    impostor = tmp_path / "impostor"
    impostor.mkdir()
    (impostor / "denoiser.safetensors").write_bytes((tiny_sd / "unet/diffusion_pytorch_model.safetensors").read_bytes())
    sd = check(ModelSpec("tiny-sd", "diffusers", tiny_sd))
    assert sd == ModelState(
        "tiny-sd",
        "diffusers",
        True,
        "diffusers StableDiffusionPipeline (pipeline folder), scheduler EulerDiscreteScheduler",
    )
    assert check(ModelSpec("gone", "limner", tmp_path / "gone")) == ModelState(
        "gone", "limner", False, f"model 'gone': {tmp_path / 'gone'} does not exist"
    )
    bad = [
        (ModelSpec("t", "limner", tmp_path), "holds no readable Limner denoiser"),
        (ModelSpec("t", "limner", impostor), "denoiser.safetensors is not a Limner denoiser .format 'pt'."),
        (ModelSpec("t", "limner", tiny_limner, defaults={"sampler": "ddim"}), "unknown sampler 'ddim'; choose from"),
        (
            ModelSpec("t", "diffusers", tiny_sd, defaults={"sampler": "ddim"}),
            "sampler 'ddim' is not one of .*LMSDiscrete",
        ),
        (
            ModelSpec("t", "diffusers", tiny_sd, defaults={"loras": {"ink": 1.0}}),
            "names 'ink', which loras does not list",
        ),
        (ModelSpec("t", "diffusers", tiny_sd, {"loras": {"ink": tmp_path / "ink.pt"}}), "must be a .safetensors file"),
        (ModelSpec("t", "diffusers", tiny_sd, {"config": tiny_sd}), "config is for single-file checkpoints"),
        (ModelSpec("t", "diffusers", tiny_sd, {"device": "cpu", "cpu_offload": "model"}), "needs a CUDA device"),
        (
            ModelSpec("t", "diffusers", tiny_limner / "denoiser.safetensors"),
            "is not a Stable Diffusion 1.x/2.x or SDXL",
        ),
    ]
    for spec, message in bad:
        state = check(spec)
        assert not state.ready and re.search(message, state.detail), (spec, state.detail)
        assert "\n" not in state.detail
