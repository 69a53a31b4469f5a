"""``limner arena seed-pool | leaderboard | export`` on the same data folder as the app."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from arena_helpers import MODELS, POOL, battle_and_vote
from typer.testing import CliRunner

from limner.cli import app as cli

runner = CliRunner()


@pytest.fixture
def limner(settings, model_dirs, tmp_path, monkeypatch):
    """Run the CLI against the test app's data folder, with the two tiny models in a models.toml
    (and no shipped weights)."""
    monkeypatch.delenv("LIMNER_DATABASE_URL", raising=False)
    monkeypatch.setenv("LIMNER_WEIGHTS", str(tmp_path / "no-weights"))
    monkeypatch.setenv("COLUMNS", "200")
    models = tmp_path / "models.toml"
    models.write_text(
        "".join(
            f'[models.{name}]\npath = "{path}"\ndefaults = {{ num_inference_steps = 2 }}\n'
            for name, path in model_dirs.items()
        )
    )

    def run(*args: str, ok: bool = True) -> str:
        result = runner.invoke(cli, [*args, "--models", str(models), "--data-dir", str(settings.data_dir)])
        assert (result.exit_code == 0) == ok, result.output
        return result.output

    return run


def test_seed_vote_board_export(client, limner, tmp_path):
    prompts = tmp_path / "prompts.jsonl"
    prompts.write_text("".join(json.dumps({"id": k, "prompt": p}) + "\n" for k, p in enumerate(POOL)))
    out = limner("arena", "seed-pool", "--prompts", str(prompts), "--limit", "2")
    assert "4 images added to the pool" in out
    assert "0 images added" in limner("arena", "seed-pool", "--prompts", str(prompts), "--limit", "2")

    assert "0 votes" in limner("arena", "leaderboard")
    for outcome in ("a", "b", "a", "tie"):
        battle_and_vote(client, outcome)
    board = limner("arena", "leaderboard")
    assert "4 votes" in board and all(name in board for name in MODELS)
    assert "0 votes" in limner("arena", "leaderboard", "--category", "scenes")  # not in the first two prompts

    export = tmp_path / "pairs"
    assert "3 preference pairs" in limner("arena", "export", "--out", str(export), "--format", "preference-pairs")
    rows = [json.loads(line) for line in (export / "pairs.jsonl").read_text().splitlines()]
    assert len(rows) == 3
    assert all(Path(export / r["winner"]).is_file() and Path(export / r["loser"]).is_file() for r in rows)
    assert "only export format" in limner("arena", "export", "--out", str(export), "--format", "csv", ok=False)
