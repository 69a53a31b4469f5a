"""Shared fixtures: the miniature source tree and one corpus built from it per test session."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from limner.data.build import BuildParams, build

FIXTURES = Path(__file__).parent / "fixtures"
REPO = Path(__file__).parent.parent

# Small enough that the whole corpus builds in about a second; typography sized so both the
# scenes and their glyph canvases are exercised.
CORPUS_PARAMS = BuildParams(size=64, typography=12, seed=0, workers=1)


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
