"""`limner eval` end to end on the fixture corpus, with an evaluator trained for a few steps."""

import json
import shutil
from pathlib import Path

import numpy as np
import pytest

from limner.data.trainset import pack
from limner.engine import Engine
from limner.engine.registry import ModelSpec
from limner.eval.evaluator import Evaluator, train_evaluator
from limner.eval.metrics import frechet_distance
from limner.eval.paired import FRECHET, compare
from limner.eval.report import SUMMARY
from limner.eval.run import evaluate
from limner.eval.tone import calibrate_corpus
from limner.model.checkpoint import save_weights
from limner.model.denoiser import PRESETS, Denoiser
from limner.model.upsampler import UPSAMPLER_PRESETS, Upsampler

pytestmark = pytest.mark.skipif(shutil.which("tesseract") is None, reason="tesseract-ocr is not installed")


@pytest.fixture(scope="module")
def eval_corpus(tmp_path_factory, built_corpus: Path) -> Path:
    corpus = tmp_path_factory.mktemp("eval-corpus")
    for f in built_corpus.iterdir():
        shutil.copy(f, corpus / f.name)
    pack(corpus, corpus / "trainset-64-train.npz", 64, "train")
    pack(corpus, corpus / "trainset-64-val.npz", 64, "val")
    return corpus


@pytest.fixture(scope="module")
def evaluator_weights(eval_corpus: Path) -> Path:
    out = eval_corpus / "evaluator.safetensors"
    train_evaluator(eval_corpus / "trainset-64-train.npz", out, steps=20, batch=16)
    return out


@pytest.fixture(scope="module")
def shape_weights(eval_corpus: Path, evaluator_weights: Path) -> Path:
    out = eval_corpus / "shape-evaluator.safetensors"
    train_evaluator(
        eval_corpus / "trainset-64-train.npz",
        out,
        steps=20,
        batch=16,
        colour=False,
        val_every=10,
        init=evaluator_weights,  # as the shipped one: from the colour evaluator
    )
    return out


@pytest.fixture(scope="module")
def tone_reader(eval_corpus: Path) -> Path:
    out = eval_corpus / "skin-tone-reader.safetensors"
    calibrate_corpus(eval_corpus, out)
    return out


@pytest.fixture(scope="module")
def prompts_dir(tmp_path_factory) -> Path:
    d = tmp_path_factory.mktemp("prompts")
    rows = {
        "concepts": [
            {"id": f"c{i}", "prompt": p} for i, p in enumerate(["a red apple", "a rocket", "a cat face", "a star"])
        ],
        "typography": [
            {"id": "t0", "prompt": 'a poster with the title "OPEN"', "text": ["OPEN"], "words": ["OPEN"]},
            {"id": "t1", "prompt": 'a sign that says "EXIT NOW"', "text": ["EXIT NOW"], "words": ["EXIT", "NOW"]},
        ],
        "skin_tones": [
            {"id": "s0", "prompt": "a waving hand, dark skin tone", "tone": "dark"},
            {"id": "s1", "prompt": "a thumbs up, light skin tone", "tone": "light"},
        ],
    }
    for name, items in rows.items():
        (d / f"{name}.jsonl").write_text("".join(json.dumps(r) + "\n" for r in items))
    return d


def test_evaluator_weights_round_trip(evaluator_weights: Path, shape_weights: Path):
    model, meta = Evaluator.load(evaluator_weights)
    assert meta["steps"] == 20 and sum(p.numel() for p in model.parameters()) < 3_000_000
    assert model.cfg.colour
    shape, meta = Evaluator.load(shape_weights)
    assert not shape.cfg.colour and shape.convs[0][0].in_channels == 1
    assert meta["init"] == str(evaluator_weights)
    assert "val_top1" in meta["history"][-1]  # the held-out split beside the trainset is scored (NaN: one image)


def test_a_colour_evaluator_is_refused_as_the_shape_instrument(
    tmp_path, eval_corpus, evaluator_weights, tone_reader, prompts_dir
):
    with pytest.raises(ValueError, match="--grey"):
        evaluate(
            "noise",
            tmp_path / "x",
            corpus=eval_corpus,
            prompts_dir=prompts_dir,
            evaluator_path=evaluator_weights,
            shape_evaluator_path=evaluator_weights,
            tone_reader_path=tone_reader,
            speed=False,
        )


@pytest.mark.parametrize("model", ["noise", "nearest-train"])
def test_reference_models_write_a_full_report(
    tmp_path, model, eval_corpus, evaluator_weights, shape_weights, tone_reader, prompts_dir
):
    m = evaluate(
        model,
        tmp_path / model,
        corpus=eval_corpus,
        prompts_dir=prompts_dir,
        evaluator_path=evaluator_weights,
        shape_evaluator_path=shape_weights,
        tone_reader_path=tone_reader,
        speed=False,
    )
    saved = json.loads((tmp_path / model / "metrics.json").read_text())
    assert saved["model"] == model and saved == json.loads(json.dumps(m))
    for key in ("fidelity", "shape", "frechet", "text", "skin_tone", "memorisation"):
        assert key in saved
    html = (tmp_path / model / "report.html").read_text()
    assert "<table>" in html and "data:image/png;base64," in html and "data:image/webp;base64," in html


def test_noise_spells_nothing_and_memorisation_catches_nearest_train(
    tmp_path, eval_corpus, evaluator_weights, shape_weights, tone_reader, prompts_dir
):
    noise = evaluate(
        "noise",
        tmp_path / "n",
        corpus=eval_corpus,
        prompts_dir=prompts_dir,
        evaluator_path=evaluator_weights,
        shape_evaluator_path=shape_weights,
        tone_reader_path=tone_reader,
        speed=False,
    )
    near = evaluate(
        "nearest-train",
        tmp_path / "m",
        corpus=eval_corpus,
        prompts_dir=prompts_dir,
        evaluator_path=evaluator_weights,
        shape_evaluator_path=shape_weights,
        tone_reader_path=tone_reader,
        speed=False,
    )
    assert noise["text"]["word_accuracy"] == 0.0
    assert noise["memorisation"]["share"] == 0.0
    assert near["memorisation"]["share"] == 1.0  # every image *is* a training image


def test_a_model_is_generated_measured_and_compared_with_a_baseline(
    tmp_path, eval_corpus, evaluator_weights, shape_weights, tone_reader, prompts_dir
):
    import torch

    torch.manual_seed(0)
    weights = tmp_path / "tiny"
    save_weights(weights / "denoiser.safetensors", Denoiser(PRESETS["tiny"]), "denoiser")
    save_weights(weights / "upsampler.safetensors", Upsampler(UPSAMPLER_PRESETS["tiny"]), "upsampler")
    engine = Engine(specs=[ModelSpec("tiny", "limner", weights, defaults={"num_inference_steps": 4})])
    first = evaluate(
        "tiny",
        tmp_path / "a",
        corpus=eval_corpus,
        prompts_dir=prompts_dir,
        evaluator_path=evaluator_weights,
        shape_evaluator_path=shape_weights,
        tone_reader_path=tone_reader,
        engine=engine,
        speed=True,
    )
    assert first["speed"]["batch4"]["images_per_second"] > 0
    assert set(first["references"]) == {"real", "noise", "nearest-train"}  # every report carries them
    assert first["references"]["nearest-train"]["memorised share"] == 1.0
    assert set(first["references"]["real"]) == set(SUMMARY)  # shape fidelity and both tone readers among them
    assert "skin-tone accuracy, ITA reader (v4)" in SUMMARY and "shape fidelity (grey, top-1 of 32)" in SUMMARY
    assert first["text"]["word_accuracy"] == 1.0  # typography=auto sets the exact strings
    second = evaluate(
        "tiny",
        tmp_path / "b",
        corpus=eval_corpus,
        prompts_dir=prompts_dir,
        evaluator_path=evaluator_weights,
        shape_evaluator_path=shape_weights,
        tone_reader_path=tone_reader,
        engine=engine,
        speed=False,
        baseline=tmp_path / "a",
        typography="off",
    )
    assert second["typography"] == "off" and second["text"]["word_accuracy"] < 1.0
    assert "baseline" in (tmp_path / "b" / "report.html").read_text()
    engine.close()

    # per-prompt results: they add up to the summary, and pair two runs on the same seed
    rows = json.loads((tmp_path / "a" / "per_prompt.json").read_text())
    assert [r["seed"] for r in rows["concepts"]] == [1000 + i for i in range(len(rows["concepts"]))]
    assert np.mean([r["fidelity"] for r in rows["concepts"]]) == pytest.approx(first["fidelity"]["generated"])
    assert np.mean([r["word_accuracy"] for r in rows["typography"]]) == pytest.approx(first["text"]["word_accuracy"])
    tones = np.mean([r["read"] == r["tone"] for r in rows["skin_tones"]])
    assert tones == pytest.approx(first["skin_tone"]["accuracy"])
    same = compare([tmp_path / "a"], [tmp_path / "a"], rounds=50, frechet_rounds=5)["metrics"]
    assert all(m["change"] == 0 and m["interval"] == [0, 0] for k, m in same.items() if k != FRECHET)
    moved = compare([tmp_path / "a"], [tmp_path / "b"], rounds=200, frechet_rounds=5)["metrics"]
    change = moved["OCR word accuracy"]
    assert change["change"] == pytest.approx(second["text"]["word_accuracy"] - first["text"]["word_accuracy"])
    assert change["interval"][0] <= change["change"] <= change["interval"][1] < 0  # typography off spells worse
    with pytest.raises(ValueError, match="per-prompt"):
        compare([tmp_path / "a"], [tmp_path / "nothing"])


def test_generation_keeps_within_the_engines_bounded_queue():
    """A full prompt set is longer than the engine's queue (256 images): the eval submits as it
    collects, in order, and never has more waiting than the queue takes."""
    from types import SimpleNamespace

    from limner.errors import Busy
    from limner.eval.sources import generate_images

    class Pending:  # an image is drawn when its caller collects it
        def __init__(self, engine, seed):
            self.engine, self.seed = engine, seed

        def result(self):
            self.engine.waiting.remove(self)
            return [SimpleNamespace(image=self.seed)]  # stands in for the image

    class QueueOf10:
        def __init__(self):
            self.waiting: list[Pending] = []
            self.seeds: list[int] = []

        def submit(self, request):
            if len(self.waiting) >= 10:
                raise Busy("10 images are already waiting for this model; retry shortly")
            self.seeds.append(request.seed)
            self.waiting.append(Pending(self, request.seed))
            return self.waiting[-1]

    engine = QueueOf10()
    out = generate_images("m", [f"p{i}" for i in range(50)], list(range(50)), None, engine=engine, batch=2)
    assert out == list(range(50)) and engine.seeds == list(range(50)) and not engine.waiting


def _run_folder(folder: Path, seed: int, fidelity: list[bool], read: list[str], concepts: np.ndarray, real: np.ndarray):
    folder.mkdir()
    rows = {
        "concepts": [{"prompt": f"c{i}", "seed": seed + i, "fidelity": f, "shape": f} for i, f in enumerate(fidelity)],
        "typography": [
            {
                "prompt": f"t{i}",
                "seed": seed + i,
                "word_accuracy": 1.0,
                "ned": None if i == 0 else 0.0,
                "ned_whole": 0.1,
            }
            for i in range(3)
        ],
        "skin_tones": [{"prompt": f"s{i}", "seed": seed + i, "tone": "light", "read": r} for i, r in enumerate(read)],
    }
    (folder / "per_prompt.json").write_text(json.dumps(rows))
    np.savez_compressed(folder / "features.npz", concepts=concepts, real=real)


def test_paired_comparison_reads_the_change_per_prompt_and_its_interval(tmp_path):
    rng = np.random.default_rng(0)
    real = rng.normal(size=(200, 4))
    drawn = rng.normal(size=(100, 4))
    for seed in (3000, 4000):
        _run_folder(tmp_path / f"old-{seed}", seed, [False] * 100, ["light", "dark"], drawn, real)
        # the new settings get every concept right, one more tone, and drift 0.5 away from the real features
        _run_folder(tmp_path / f"new-{seed}", seed, [True] * 100, ["light", "light"], drawn + 0.5, real)
    got = compare(
        [tmp_path / "old-3000", tmp_path / "old-4000"],
        [tmp_path / "new-3000", tmp_path / "new-4000"],
        frechet_rounds=20,
    )["metrics"]
    assert got["prompt fidelity"]["change"] == 1.0 and got["prompt fidelity"]["interval"] == [1.0, 1.0]
    assert got["prompt fidelity"]["base"] == [0.0, 0.0] and got["prompt fidelity"]["base_spread"] == 0.0
    assert got["skin-tone accuracy"]["change"] == 0.5
    assert got["OCR edit distance, quoted spans"]["prompts"] == 2  # the prompt with nothing to score drops out
    fd = got[FRECHET]
    assert fd["change"] == pytest.approx(frechet_distance(drawn + 0.5, real) - frechet_distance(drawn, real))
    assert 0.5 < fd["interval"][0] < fd["change"] < fd["interval"][1] < 1.5
    with pytest.raises(ValueError, match="not a pair"):
        compare([tmp_path / "old-3000"], [tmp_path / "new-4000"])
    screened = tmp_path / "new-3000" / "per_prompt.json"  # a screen draws no typography: those metrics drop out
    screened.write_text(json.dumps({k: v for k, v in json.loads(screened.read_text()).items() if k != "typography"}))
    got = compare([tmp_path / "old-3000"], [tmp_path / "new-3000"], frechet_rounds=5)["metrics"]
    assert "OCR word accuracy" not in got and got["prompt fidelity"]["change"] == 1.0
    with pytest.raises(ValueError, match="as many"):
        compare([tmp_path / "old-3000"], [])


def test_the_paired_interval_is_narrower_than_the_seed_noise(tmp_path):
    """New = base with 20 of 200 misses turned into hits: the change is +0.1 whatever the base,
    and resampling the same prompts on both sides keeps the interval tight around it."""
    rng = np.random.default_rng(1)
    base = rng.random(200) < 0.5
    new = base.copy()
    new[np.flatnonzero(~base)[:20]] = True
    features = rng.normal(size=(200, 4))
    _run_folder(tmp_path / "old", 3000, base.tolist(), ["light"], features, features)
    _run_folder(tmp_path / "new", 3000, new.tolist(), ["light"], features, features)
    got = compare([tmp_path / "old"], [tmp_path / "new"], frechet_rounds=5)["metrics"]["prompt fidelity"]
    assert got["change"] == pytest.approx(0.1)
    lo, hi = got["interval"]
    assert 0.04 < lo < 0.1 < hi < 0.16  # unpaired resampling would reach down to about 0
