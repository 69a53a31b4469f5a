"""``limner eval``."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from limner.cli.app import PhaseProgress, app, console, fail, progress_bar


def _packed_corpus(corpus: Path, resolution: int = 64) -> None:
    """A built corpus with its packed train and val sets: packed now if missing (as `limner
    train` does), or one line saying which command makes the corpus."""
    from limner.data.trainset import pack, version_of

    if not (corpus / "manifest.json").exists():
        fail(f"no built corpus at {corpus}: run `limner data fetch` then `limner data build --out {corpus}`")
    for split in ("train", "val"):
        path = corpus / f"trainset-{resolution}-{split}.npz"
        if not path.exists() or version_of(path) < 2:
            console.print(f"packing the {split} split of {corpus} at {resolution} px → {path} (once)")
            pack(corpus, path, resolution, split)


@app.command("eval")
def evaluate(
    model: Annotated[str, typer.Option(help="Model name or path, or a reference: real, noise, nearest-train.")],
    out: Annotated[Path, typer.Option(help="Folder for metrics.json and report.html.")],
    limit: Annotated[int | None, typer.Option(help="Use only the first N prompts of each set.")] = None,
    baseline: Annotated[Path | None, typer.Option(help="A previous report folder to compare with.")] = None,
    corpus: Annotated[Path, typer.Option(help="Built corpus (validation split, training images).")] = Path(
        "data/corpus"
    ),
    prompts: Annotated[Path, typer.Option(help="Folder with the prompt sets.")] = Path("bench/prompts"),
    evaluator: Annotated[Path | None, typer.Option(help="Evaluator weights.")] = None,
    shape_evaluator: Annotated[Path | None, typer.Option(help="Shape-evaluator weights (--grey).")] = None,
    tone_reader: Annotated[Path | None, typer.Option(help="Skin-tone reader (limner calibrate-tones).")] = None,
    models: Annotated[Path | None, typer.Option(help="A models.toml naming more models.")] = None,
    typography: Annotated[str, typer.Option(help="auto, glyph or off (the ablation).")] = "auto",
    seed: Annotated[
        int, typer.Option(help="Prompt i of each set is drawn with seed SEED + i (another seed: the run-to-run noise).")
    ] = 1000,
    speed: Annotated[bool, typer.Option("--speed/--no-speed", help="Time the model at batch 1 and 4.")] = True,
    references: Annotated[
        bool,
        typer.Option(
            "--references/--no-references",
            help="Measure (or read the cached) real, noise and nearest-train references on the same prompts.",
        ),
    ] = True,
) -> None:
    """Measure a model on the benchmark prompt sets; write metrics.json and report.html."""
    import json

    from limner.engine import Engine
    from limner.eval.run import REFERENCE_MODELS
    from limner.eval.run import evaluate as run_eval

    _packed_corpus(corpus)
    engine = None if model in REFERENCE_MODELS else Engine(models_file=models)
    with progress_bar() as bar:
        metrics = run_eval(
            model,
            out,
            corpus=corpus,
            prompts_dir=prompts,
            limit=limit,
            baseline=baseline,
            evaluator_path=evaluator,
            shape_evaluator_path=shape_evaluator,
            tone_reader_path=tone_reader,
            engine=engine,
            progress=PhaseProgress(bar),
            typography=typography,
            with_references=references,
            seed=seed,
            speed=speed,
        )
    if engine:
        engine.close()
    summary = {k: metrics[k] for k in ("fidelity", "shape", "frechet", "text", "memorisation") if k in metrics}
    summary["skin_tone_accuracy"] = metrics["skin_tone"]["accuracy"]
    print(json.dumps(summary, indent=1))
    console.print(f"report: {out / 'report.html'}")
