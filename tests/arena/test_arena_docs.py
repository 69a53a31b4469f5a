"""docs/arena.md keeps up with the code: every API field, error code, CLI command and screenshot."""

from __future__ import annotations

import re
from pathlib import Path

from limner.arena import battles
from limner.arena.categories import CATEGORIES
from limner.server import arena as arena_routes
from limner.server.arena import BattleOut, BoardOut, StandingOut, VoteIn, VoteOut

DOCS = Path(__file__).resolve().parents[2] / "docs"


def test_every_api_field_error_code_and_category_is_documented():
    text = (DOCS / "arena.md").read_text()
    for model in (BattleOut, VoteIn, VoteOut, BoardOut, StandingOut):
        for field in model.model_fields:
            assert f'"{field}"' in text, f"{model.__name__}.{field}"
    sources = (Path(battles.__file__), Path(arena_routes.__file__))
    codes = {c for path in sources for c in re.findall(r'code ?= ?"(\w+)"', path.read_text())}
    assert {"already_voted", "invalid_token", "live_cap_reached", "sign_in_required", "battle_rate_limited"} <= codes
    for code in codes:
        assert f"`{code}`" in text, code
    for category in CATEGORIES:
        assert f"| {category} |" in text, category
    for name in ("DAILY_CAP", "LIVE_DAILY_CAP"):
        assert name in text
    assert f"{battles.DAILY_CAP} votes" in text and f"{battles.LIVE_DAILY_CAP} live battles" in text
    for command in ("seed-pool", "leaderboard", "export --out"):
        assert f"limner arena {command}" in text, command


def test_every_screenshot_the_docs_show_exists():
    text = (DOCS / "arena.md").read_text()
    shots = re.findall(r"\(?(screenshots/arena-[\w-]+\.png)", text)
    assert len(set(shots)) >= 5
    for shot in shots:
        assert (DOCS / shot).is_file(), shot
