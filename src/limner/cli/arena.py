"""``limner arena``: the pool, the leaderboard and the preference pairs."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table

from limner.cli.app import DatabaseOpt, DataDirOpt, PhaseProgress, _database, arena_app, console, fail, progress_bar


def _arena(models: Path | None, database_url: str | None, data_dir: Path | None):
    from limner.arena.battles import Arena
    from limner.engine import Engine
    from limner.moderation import Policy
    from limner.provenance import Provenance
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
        mark=Provenance.from_settings(settings).mark,
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
