from pathlib import Path

import pytest

from limner.engine import Engine, GenerationRequest
from limner.engine.backend import Backend
from limner.engine.builtin import LimnerBackend
from limner.engine.registry import (
    BACKENDS,
    ModelSpec,
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
