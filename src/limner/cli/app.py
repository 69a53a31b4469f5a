"""The ``limner`` command's shared parts: the Typer apps, the console and its progress bars, the database options."""

from __future__ import annotations

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


DatabaseOpt = Annotated[
    str | None,
    typer.Option("--database-url", help="Default: $LIMNER_DATABASE_URL or SQLite in the data dir."),
]


DataDirOpt = Annotated[Path | None, typer.Option("--data-dir", help="Default: $LIMNER_DATA_DIR or ./limner-data.")]


def _database(database_url: str | None, data_dir: Path | None):
    from limner.server.settings import Settings
    from limner.store.db import Database

    settings = Settings.from_env(database_url=database_url, data_dir=data_dir)
    db = Database(settings.resolved_database_url())
    db.migrate()
    weakref.finalize(db, db.engine.dispose)  # close the pooled connections when the command is done
    return db
