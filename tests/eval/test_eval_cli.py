"""`limner eval` on what a fresh machine has: no corpus is one line naming the commands; a built
corpus without packed sets is packed first, as `limner train` does."""

from __future__ import annotations

import shutil
from pathlib import Path

from typer.testing import CliRunner

from limner import cli


def test_without_a_corpus_eval_names_the_commands_that_make_one(tmp_path: Path) -> None:
    result = CliRunner().invoke(
        cli.app, ["eval", "--model", "noise", "--out", str(tmp_path / "r"), "--corpus", str(tmp_path / "none")]
    )
    assert result.exit_code == 1
    assert "no built corpus at" in result.output and "limner data build" in result.output
    assert "Traceback" not in result.output


def test_a_freshly_built_corpus_is_packed_before_measuring(tmp_path: Path, built_corpus: Path) -> None:
    corpus = tmp_path / "corpus"
    shutil.copytree(built_corpus, corpus)
    assert not (corpus / "trainset-64-train.npz").exists()
    cli._packed_corpus(corpus)
    assert (corpus / "trainset-64-train.npz").exists() and (corpus / "trainset-64-val.npz").exists()
