"""``limner generate`` and ``limner models``."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from limner.cli.app import DatabaseOpt, DataDirOpt, _database, app, fail, progress_bar
from limner.errors import LimnerError


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
