"""The ``limner`` command line: one entry point for data, training, generation, evaluation and
serving. Each command group lives in its own module; importing them registers their commands on
``app``."""

from __future__ import annotations

import sys

from rich.markup import escape

from limner.cli import accounts, arena, data, evaluation, generation, provenance, service, training  # noqa: F401
from limner.cli.app import app, console
from limner.cli.evaluation import _packed_corpus
from limner.errors import LimnerError

__all__ = ["_packed_corpus", "app", "main"]

# `limner --help` lists the commands in the order a user meets them, not the modules' import order
ORDER = ["generate", "models", "serve", "mcp", "verify", "usage", "eval"]
ORDER += ["train", "train-upsampler", "train-evaluator", "calibrate-tones", "export-weights"]
app.registered_commands.sort(key=lambda c: ORDER.index(c.name) if c.name in ORDER else len(ORDER))


def main() -> None:
    try:
        app()
    except LimnerError as e:
        console.print(f"[red]error:[/red] {escape(e.message)}")
        sys.exit(1)
