"""The import rule of docs/architecture.md: each layer imports only the layers below it. An AST
walk over src/limner, function-local imports included, fails on any edge against the rule."""

from __future__ import annotations

import ast
from pathlib import Path

SRC = Path(__file__).parents[1] / "src" / "limner"

# layer → the layers it may import ("limner" is the package root, "version" its version: a leaf)
ALLOWED: dict[str, set[str]] = {
    "errors": set(),
    "version": set(),
    "model": {"errors"},
    "typography": {"errors"},
    "data": {"errors", "typography", "model"},
    "store": {"errors"},
    "engine": {"errors", "model", "typography", "version"},
    "moderation": {"errors", "engine", "model"},
    "eval": {"errors", "engine", "model", "data", "typography"},
    "provenance": {"errors", "store", "version"},
    "arena": {"errors", "engine", "store", "moderation", "typography"},
    "server": {"errors", "engine", "store", "moderation", "arena", "typography", "model", "provenance", "version"},
    "train": {"errors", "model", "data"},
    "train_upsampler": {"errors", "model", "data"},
    "train_gpu": {"errors", "model", "data", "train"},
    "tune": {"errors", "model"},
    "cli": {"*"},
    "limner": {"engine", "version"},
}
# Edges still against the rule, each with why it stays for now (empty when the tree is clean).
EXCEPTIONS: dict[tuple[str, str], str] = {}


def layer_of(module: str) -> str:
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else "limner"


def module_of(path: Path) -> str:
    return ".".join(p for p in path.relative_to(SRC.parent).with_suffix("").parts if p != "__init__")


def edges() -> dict[tuple[str, str], set[str]]:
    """(importing layer, imported layer) → the modules that import across."""
    found: dict[tuple[str, str], set[str]] = {}
    for path in sorted(SRC.rglob("*.py")):
        module = module_of(path)
        here = layer_of(module)
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                targets = [node.module]
            elif isinstance(node, ast.Import):
                targets = [a.name for a in node.names]
            else:
                continue
            for target in targets:
                if target == "limner" or target.startswith("limner."):
                    there = layer_of(target)
                    if there != here:
                        found.setdefault((here, there), set()).add(module)
    return found


def test_every_layer_is_known():
    layers = {layer_of(module_of(p)) for p in SRC.rglob("*.py")}
    assert layers <= set(ALLOWED), f"layers without a rule: {layers - set(ALLOWED)}"


def test_imports_follow_the_layers():
    against = {
        edge: sorted(mods)
        for edge, mods in edges().items()
        if edge[1] not in ALLOWED[edge[0]] and "*" not in ALLOWED[edge[0]] and edge not in EXCEPTIONS
    }
    assert not against, f"imports against docs/architecture.md: {against}"


def test_the_exceptions_still_exist():
    """An exception that no longer happens is removed from the list (and from the doc)."""
    stale = [edge for edge in EXCEPTIONS if edge not in edges()]
    assert not stale, f"these exceptions are gone; delete them: {stale}"


def test_no_cycle_between_layers():
    graph: dict[str, set[str]] = {}
    for a, b in edges():
        graph.setdefault(a, set()).add(b)

    def reaches(start: str, goal: str, seen: set[str]) -> bool:
        return any(n == goal or (n not in seen and reaches(n, goal, seen | {n})) for n in graph.get(start, ()))

    cycles = sorted(
        (a, b) for a, b in edges() if reaches(b, a, {b}) and (a, b) not in EXCEPTIONS and (b, a) not in EXCEPTIONS
    )  # the package root included: it imports the engine, so nothing may import it back
    assert not cycles, f"import cycles between folders: {cycles}"
