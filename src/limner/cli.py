"""The ``limner`` command line: one entry point for data, training, generation, evaluation and serving."""

from __future__ import annotations

import sys
import weakref
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.markup import escape
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
users_app = typer.Typer(help="Image Creator accounts.", no_args_is_help=True)
app.add_typer(users_app, name="users")
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


DatabaseOpt = Annotated[
    str | None,
    typer.Option("--database-url", help="Default: $LIMNER_DATABASE_URL or SQLite in the data dir."),
]
DataDirOpt = Annotated[Path | None, typer.Option("--data-dir", help="Default: $LIMNER_DATA_DIR or ./limner-data.")]


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
    database_url: DatabaseOpt = None,
    data_dir: DataDirOpt = None,
) -> None:
    """Generate images and write them as PNG files (with their parameters inside, a signed C2PA
    manifest and the invisible watermark, recorded in the data folder's database)."""
    from PIL import Image

    from limner.engine import Engine, GenerationRequest
    from limner.provenance import Provenance
    from limner.server.settings import Settings

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
    settings = Settings.from_env(database_url=database_url, data_dir=data_dir)
    if settings.watermark or settings.content_credentials:
        db = _database(database_url, data_dir)
        with db.session() as s:
            Provenance.from_settings(settings).stamp(s, images, request_id="cli", source=src)
    output.mkdir(parents=True, exist_ok=True)
    stem = "".join(c if c.isalnum() else "-" for c in prompt.lower())[:40].strip("-") or "image"
    for img in images:
        path = output / f"{stem}-{img.seed}.png"
        path.write_bytes(img.png_bytes())
        print(path)


@app.command("models")
def list_models(
    models: Annotated[Path | None, typer.Option(help="A models.toml naming more models.")] = None,
    load: Annotated[bool, typer.Option(help="Load each model to show its sizes, modes and parameters.")] = False,
) -> None:
    """List the configured models and whether each will load (its backend looks at the files;
    nothing is loaded unless --load)."""
    from limner.engine import Engine

    try:
        engine = Engine(models_file=models, batching=False)
    except LimnerError as e:
        fail(escape(e.message))
    default = engine.default
    table = Table(title="models")
    if not load:
        for col in ("name", "backend", "state", "what it is / what is wrong"):
            table.add_column(col)
        for st in engine.states():
            mark = " (default)" if st.name == default else ""
            state = "[green]ready" if st.ready else "[red]will not load"
            table.add_row(st.name + mark, st.backend, state, escape(st.detail))
        Console().print(table)
        return
    for col in ("name", "backend", "sizes", "modes", "parameters", "path"):
        table.add_column(col)
    for entry in engine.models():
        try:
            info = engine.backend(entry["name"]).info()
        except LimnerError as e:
            table.add_row(entry["name"], entry["backend"], "-", f"[red]{escape(e.message)}", "-", entry["path"])
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


@users_app.command("reset-link")
def users_reset_link(
    email: Annotated[str, typer.Argument(help="The account's email.")],
    hours: Annotated[float, typer.Option(help="How long the link works.")] = 1.0,
    url: Annotated[
        str | None, typer.Option(help="The server's address as users reach it. Default: $LIMNER_PUBLIC_URL.")
    ] = None,
    database_url: DatabaseOpt = None,
    data_dir: DataDirOpt = None,
) -> None:
    """Print a link that lets the account choose a new password (once, for HOURS). Hand it to
    the person yourself: anyone with the link can set the password."""
    from sqlalchemy import select

    from limner.server.settings import Settings
    from limner.server.web.reset import reset_link
    from limner.store.db import User

    settings = Settings.from_env(database_url=database_url, data_dir=data_dir)
    base = url or settings.public_url
    if not base:
        fail("say where users reach the server: --url https://images.example.org (or set LIMNER_PUBLIC_URL)")
    if not 0 < hours <= 72:
        fail("--hours must be more than 0 and at most 72")
    db = _database(database_url, data_dir)
    with db.session() as s:
        user = s.scalar(select(User).where(User.email == email.strip().lower()))
        if user is None:
            fail(f"no account has the email {email!r}")
        link = reset_link(settings, user, str(base), hours)
    console.print(f"a reset link for {user.email}, valid {hours:g} h and once:", highlight=False)
    print(link)


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


@keys_app.command("set")
def keys_set(
    key_id: Annotated[int, typer.Argument(help="The id shown by `limner keys list`.")],
    operator: Annotated[
        bool | None, typer.Option("--operator/--no-operator", help="May see what a watermark resolves to.")
    ] = None,
    watermark: Annotated[
        bool | None, typer.Option("--watermark/--no-watermark", help="Watermark this key's images.")
    ] = None,
    manifest: Annotated[
        bool | None, typer.Option("--manifest/--no-manifest", help="Sign this key's images with a C2PA manifest.")
    ] = None,
    server_default: Annotated[
        bool, typer.Option("--server-default", help="Watermark and manifest as the server's settings say.")
    ] = False,
    database_url: DatabaseOpt = None,
    data_dir: DataDirOpt = None,
) -> None:
    """Set a key's provenance switches: the operator flag, its watermark and its manifest."""
    from limner.store.db import ApiKey

    db = _database(database_url, data_dir)
    with db.session() as s:
        row = s.get(ApiKey, key_id)
        if row is None:
            fail(f"no key with id {key_id}")
        if server_default:
            row.watermark = row.content_credentials = None
        if operator is not None:
            row.operator = operator
        if watermark is not None:
            row.watermark = watermark
        if manifest is not None:
            row.content_credentials = manifest
        shown = {None: "server's", True: "on", False: "off"}
        console.print(
            f"key {key_id}: operator {'yes' if row.operator else 'no'}, watermark {shown[row.watermark]}, "
            f"manifest {shown[row.content_credentials]}"
        )


@app.command("verify")
def verify_files(
    files: Annotated[list[Path], typer.Argument(help="PNG, JPEG or WebP images.")],
    as_json: Annotated[bool, typer.Option("--json", help="Print the reports as JSON.")] = False,
    database_url: DatabaseOpt = None,
    data_dir: DataDirOpt = None,
) -> None:
    """Check images for Content Credentials (C2PA) and Limner's watermark; with the server's data
    folder (or database URL), say what each watermark resolves to — for the operator's eyes."""
    import json

    from limner.provenance import ledger
    from limner.provenance.verify import verify
    from limner.server.settings import Settings
    from limner.server.uploads import read_image

    settings = Settings.from_env(database_url=database_url, data_dir=data_dir)
    root = settings.data_dir / "c2pa-root.pem"
    roots = root.read_bytes() if root.exists() else None
    resolve = None
    if settings.database_url or (settings.data_dir / "limner.db").exists():
        db = _database(database_url, data_dir)
        cipher = ledger.Cipher(settings.resolved_secret())

        def resolve(payload: int) -> dict | None:
            with db.session() as s:
                return ledger.resolve(s, cipher, payload)

    failed = False
    for path in files:
        try:
            data = path.read_bytes()
            report = verify(data, read_image(data, param=str(path), max_pixels=settings.max_upload_pixels),
                            trusted_roots=roots, resolve=resolve)  # fmt: skip
        except (OSError, LimnerError) as e:
            console.print(f"[red]{path}: {getattr(e, 'message', e)}")
            failed = True
            continue
        if as_json:
            print(json.dumps({"file": str(path), **report}, sort_keys=True))
            continue
        m, w = report["manifest"], report["watermark"]
        if not m["present"]:
            cred = "no Content Credentials"
        elif m["tampered"]:
            cred = f"Content Credentials TAMPERED ({', '.join(m['failures']) or m['error']})"
        else:
            trust = "trusted signer" if m["trusted"] else "untrusted signer"
            cred = f"Content Credentials {'valid' if m['valid'] else 'invalid'} ({trust}: {m['signer']})"
        print(f"{path}: {cred}")
        for a in m["actions"]:
            source = a.get("digitalSourceType", "").rsplit("/", 1)[-1]
            print(
                f"  {a['action']}"
                + (f" [{source}]" if source else "")
                + (f" {a['description']}" if a.get("description") else "")
            )
        for ingredient in m["ingredients"]:
            print(f"  ingredient: {ingredient}")
        if w["found"]:
            print(f"  watermark: found (confidence {w['confidence']:.9f})")
            if "resolves_to" in w:
                print(f"  resolves to: {json.dumps(w['resolves_to'], sort_keys=True)}")
        else:
            print("  watermark: not found")
    if failed:
        raise typer.Exit(1)


@app.command("usage")
def usage(
    days: Annotated[int, typer.Option(help="How many days back.")] = 30,
    as_json: Annotated[bool, typer.Option("--json", help="One JSON object per line instead of a table.")] = False,
    database_url: DatabaseOpt = None,
    data_dir: DataDirOpt = None,
) -> None:
    """Requests, images, megapixels, seconds and failures per key and UTC day."""
    import json

    from limner.store.usage import usage_by_day

    if days < 1:
        fail("--days must be at least 1")
    db = _database(database_url, data_dir)
    with db.session() as s:
        rows = usage_by_day(s, days)
    if as_json:
        for row in rows:
            print(json.dumps(row.as_dict()))
        return
    table = Table(title=f"usage, last {days} days")
    for col in ("day", "key", "requests", "images", "megapixels", "seconds", "failed"):
        table.add_column(col)
    for r in rows:
        table.add_row(
            r.day,
            r.key or "(web)",
            str(r.requests),
            str(r.images),
            f"{r.megapixels:.2f}",
            f"{r.seconds:.1f}",
            str(r.failed),
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
        console.print(f"[red]error:[/red] {escape(e.message)}")
        sys.exit(1)


if __name__ == "__main__":
    main()
