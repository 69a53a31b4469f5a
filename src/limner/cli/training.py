"""``limner train``, ``tune``, ``train-upsampler``, ``train-evaluator``, ``calibrate-tones`` and ``export-weights``."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from limner.cli.app import app, console, fail


@app.command("train")
def train(
    preset: Annotated[str, typer.Option(help="Model size: tiny, small or base.")] = "small",
    data: Annotated[Path, typer.Option(help="Corpus folder, or a packed trainset-R-train.npz.")] = Path("data/corpus"),
    out: Annotated[Path, typer.Option(help="Run folder (checkpoint, samples, history).")] = Path("runs/small"),
    steps: Annotated[int, typer.Option(help="Stop after this many steps.")] = 100_000,
    minutes: Annotated[float | None, typer.Option(help="Stop after this many minutes.")] = None,
    batch: Annotated[int, typer.Option(help="Global batch size.")] = 64,
    lr: Annotated[float, typer.Option(help="Peak learning rate.")] = 5e-4,
    warmup: Annotated[int, typer.Option(help="Warm-up steps.")] = 500,
    sample_every: Annotated[int, typer.Option(help="Write a sample grid every N steps.")] = 500,
    save_every: Annotated[int, typer.Option(help="Checkpoint and validate every N steps.")] = 500,
    init: Annotated[str | None, typer.Option(help="Start from these inference weights.")] = None,
    ema: Annotated[float, typer.Option(help="EMA decay (lower for a short fine-tune).")] = 0.999,
    tone_weight: Annotated[
        float, typer.Option(help="Draw images with a skin tone this many times as often as the rest.")
    ] = 1.0,
    keep_every: Annotated[int, typer.Option(help="Also keep the EMA weights of every N-th step (0: none).")] = 0,
    resume: Annotated[bool, typer.Option(help="Continue the run in OUT from its checkpoint.")] = False,
    seed: Annotated[int, typer.Option()] = 0,
    compile: Annotated[bool, typer.Option(help="torch.compile the network (GPUs).")] = False,
) -> None:
    """Train the denoiser (bf16 autocast; CPU or GPU; torchrun for many GPUs)."""
    from limner.train import TrainConfig
    from limner.train import main as train_main

    if resume and not (out / "checkpoint.pt").exists():
        fail(f"--resume: no checkpoint at {out / 'checkpoint.pt'}")
    train_main(
        TrainConfig(
            preset=preset,
            data=str(data),
            out=str(out),
            steps=steps,
            minutes=minutes,
            batch=batch,
            lr=lr,
            warmup=warmup,
            sample_every=sample_every,
            save_every=save_every,
            init=init,
            ema=ema,
            tone_weight=tone_weight,
            keep_every=keep_every,
            resume=resume,
            seed=seed,
            compile=compile,
        )
    )


@app.command("tune")
def tune(
    pairs: Annotated[Path, typer.Option(help="Folder written by `limner arena export --format preference-pairs`.")],
    init: Annotated[Path, typer.Option(help="The model to tune: a weights folder or a denoiser file.")],
    out: Annotated[Path, typer.Option(help="Run folder (checkpoint, ema.safetensors, history).")] = Path("runs/dpo"),
    method: Annotated[str, typer.Option(help="dpo (Diffusion-DPO) or sft (the preferred images only).")] = "dpo",
    beta: Annotated[float, typer.Option(help="DPO β: how far the model may move from its start.")] = 2000.0,
    steps: Annotated[int, typer.Option()] = 300,
    minutes: Annotated[float | None, typer.Option(help="Stop after this many minutes.")] = None,
    batch: Annotated[int, typer.Option(help="Pairs per step.")] = 16,
    lr: Annotated[float, typer.Option()] = 2e-5,
    ema: Annotated[float, typer.Option(help="EMA decay.")] = 0.99,
    val_share: Annotated[float, typer.Option(help="Share of the prompts held out for validation.")] = 0.15,
    seed: Annotated[int, typer.Option()] = 0,
    resume: Annotated[bool, typer.Option(help="Continue the run in OUT from its checkpoint.")] = False,
) -> None:
    """Tune the built-in denoiser on arena preference pairs (Diffusion-DPO, or winners only)."""
    from limner.errors import LimnerError
    from limner.tune import TuneConfig
    from limner.tune import main as tune_main

    if resume and not (out / "checkpoint.pt").exists():
        fail(f"--resume: no checkpoint at {out / 'checkpoint.pt'}")
    cfg = TuneConfig(
        pairs=str(pairs),
        init=str(init),
        out=str(out),
        method=method,
        beta=beta,
        steps=steps,
        minutes=minutes,
        batch=batch,
        lr=lr,
        ema=ema,
        val_share=val_share,
        seed=seed,
        resume=resume,
    )
    try:
        result = tune_main(cfg)
    except LimnerError as e:
        fail(str(e))
    console.print(
        f"{result['step']} steps; held-out pair accuracy {result.get('val_accuracy', 'n/a')}; "
        f"weights in {out / 'ema.safetensors'} (ship with `limner export-weights`)"
    )


@app.command("train-upsampler")
def train_upsampler(
    preset: Annotated[str, typer.Option(help="tiny, small or base.")] = "base",
    data: Annotated[Path, typer.Option(help="Corpus folder.")] = Path("data/corpus"),
    out: Annotated[Path, typer.Option(help="Run folder.")] = Path("runs/upsampler"),
    steps: Annotated[int, typer.Option()] = 20_000,
    minutes: Annotated[float | None, typer.Option()] = None,
    batch: Annotated[int, typer.Option()] = 32,
    resume: Annotated[bool, typer.Option()] = False,
) -> None:
    """Train the ×4 upsampler on corpus images."""
    from limner.train_upsampler import UpsamplerTrainConfig
    from limner.train_upsampler import main as up_main

    print(
        up_main(
            UpsamplerTrainConfig(
                preset=preset,
                data=str(data),
                out=str(out),
                steps=steps,
                minutes=minutes,
                batch=batch,
                resume=resume,
            )
        )
    )


@app.command("export-weights")
def export_weights(
    denoiser: Annotated[Path, typer.Option(help="EMA weights of a run (ema.safetensors or its shards).")],
    upsampler: Annotated[Path, typer.Option(help="Upsampler weights.")],
    out: Annotated[Path, typer.Option(help="Folder to write, e.g. weights/limner-1.")],
    steps: Annotated[int, typer.Option(help="Default sampling steps.")] = 20,
    guidance_scale: Annotated[float, typer.Option(help="Default guidance.")] = 4.0,
    sampler: Annotated[str, typer.Option(help="Default sampler.")] = "euler",
    note: Annotated[str, typer.Option(help="Training history to record, free text.")] = "",
    sampling: Annotated[
        Path | None,
        typer.Option(
            help="A sampling.json to put beside the weights, e.g. the parent's "
            "weights/limner-1/sampling.json: a fine-tune then draws as its parent was measured to draw best."
        ),
    ] = None,
) -> None:
    """Write a shippable model folder: float16 denoiser and upsampler with configs and defaults inside."""
    import json

    from limner.engine.builtin import SAMPLING_FILE, LimnerBackend
    from limner.errors import LimnerError
    from limner.model.checkpoint import load_denoiser, load_upsampler, save_weights

    settings = None
    if sampling is not None:
        try:  # the checks a model folder's own sampling.json gets when it loads
            settings = LimnerBackend.read_sampling_file(sampling)
        except LimnerError as e:
            fail(str(e), 2)
    den, meta = load_denoiser(denoiser)
    up, up_meta = load_upsampler(upsampler)
    meta.pop("config", None)
    up_meta.pop("config", None)
    meta["sampling"] = {"num_inference_steps": steps, "guidance_scale": guidance_scale, "sampler": sampler}
    if note:
        meta["training"] = note
    written = save_weights(out / "denoiser.safetensors", den, "denoiser", meta)
    written += save_weights(out / "upsampler.safetensors", up, "upsampler", up_meta)
    if settings is not None:
        (out / SAMPLING_FILE).write_text(json.dumps(settings, indent=2) + "\n")
        written.append(out / SAMPLING_FILE)
    total = sum(p.stat().st_size for p in written)
    for p in written:
        print(p)
    console.print(f"{total / 2**20:.1f} MiB in {out}")


@app.command("train-evaluator")
def train_evaluator_cmd(
    data: Annotated[Path, typer.Option(help="Packed 64 px training set.")] = Path("data/corpus/trainset-64-train.npz"),
    out: Annotated[
        Path | None,
        typer.Option(
            help="Weights file to write (weights/evaluator.safetensors; with --grey, weights/shape-evaluator.safetensors)."
        ),
    ] = None,
    steps: Annotated[int, typer.Option()] = 3000,
    batch: Annotated[int, typer.Option()] = 256,
    colour: Annotated[
        bool, typer.Option("--colour/--grey", help="--grey: the shape-fidelity instrument, which sees no colour.")
    ] = True,
    init: Annotated[Path | None, typer.Option(help="Start from these evaluator weights (e.g. the colour one).")] = None,
    lr: Annotated[float, typer.Option()] = 1e-3,
    val_every: Annotated[int, typer.Option(help="Score the held-out split every N steps.")] = 500,
) -> None:
    """Train a fidelity evaluator (prompt fidelity, or with --grey shape fidelity) on real training images only."""
    from limner.eval.evaluator import train_evaluator

    if not data.exists():
        fail(f"{data} not found: it is made on the first `limner train --data CORPUS`, or by limner.data.trainset.pack")
    out = out or Path("weights/evaluator.safetensors" if colour else "weights/shape-evaluator.safetensors")
    train_evaluator(data, out, steps=steps, batch=batch, lr=lr, colour=colour, init=init, val_every=val_every)
    print(out)


@app.command("calibrate-tones")
def calibrate_tones_cmd(
    corpus: Annotated[Path, typer.Option(help="Built corpus: calibrated on its train split.")] = Path("data/corpus"),
    out: Annotated[Path, typer.Option(help="Reader file to write.")] = Path("weights/skin-tone-reader.safetensors"),
) -> None:
    """Calibrate the skin-tone reader on real training emoji with known tones; print its held-out accuracy."""
    from limner.eval.tone import calibrate_corpus

    if not list(corpus.glob("train-[0-9]*.tar")):
        fail(f"no training shards in {corpus}: run `limner data build` first")
    reader = calibrate_corpus(corpus, out)
    console.print(
        f"{reader.meta['images']} training images, {reader.meta['seconds']} s; "
        f"held-out accuracy {reader.meta.get('val_accuracy', 'n/a')}"
    )
    print(out)
