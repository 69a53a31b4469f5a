"""The same core flow on PostgreSQL: migrate, create a key, generate, exact quotas under load.

Runs when LIMNER_TEST_POSTGRES_URL names a server (``eval "$(scripts/postgres start)"`` starts a
throwaway one); each run works in a schema of its own and drops it afterwards.
"""

from __future__ import annotations

import os
import re
from concurrent.futures import ThreadPoolExecutor

import pytest
from api_helpers import openai_client
from fastapi.testclient import TestClient
from sqlalchemy import select
from typer.testing import CliRunner

from limner.cli import app as cli
from limner.server.app import create_app
from limner.store.db import ApiKey, Usage
from limner.store.keys import create_key
from limner.store.migrations import current

URL = os.environ.get("LIMNER_TEST_POSTGRES_URL")
pytestmark = pytest.mark.skipif(
    not URL,
    reason="set LIMNER_TEST_POSTGRES_URL (e.g. postgresql+psycopg://limner:limner@127.0.0.1:5433/limner_test; "
    "scripts/postgres start prints it) to run the PostgreSQL tests",
)
GEN = "/v1/images/generations"


@pytest.fixture
def pg_client(settings, pg_url):
    settings.database_url = pg_url
    with TestClient(create_app(settings)) as tc:
        assert tc.app.state.db.engine.dialect.name == "postgresql"
        yield tc


def test_migrated_to_head(pg_client):
    from alembic.script import ScriptDirectory

    from limner.store.migrations import alembic_config

    head = ScriptDirectory.from_config(alembic_config()).get_current_head()
    assert current(pg_client.app.state.db.engine) == head


def test_generate_and_record(pg_client):
    with pg_client.app.state.db.session() as s:
        key, _ = create_key(s, "pg")
    oai = openai_client(pg_client, key)
    r = oai.images.generate(prompt="a red apple", n=2, extra_body={"num_inference_steps": 2})
    assert len(r.data) == 2
    url = (
        oai.images.generate(prompt="a red apple", response_format="url", extra_body={"num_inference_steps": 1})
        .data[0]
        .url
    )
    assert pg_client.get(url).status_code == 200
    with pg_client.app.state.db.session() as s:
        rows = list(s.scalars(select(Usage).order_by(Usage.id)))
    assert [(u.images, u.pixels, u.status) for u in rows] == [(2, 2 * 128 * 128, "ok"), (1, 128 * 128, "ok")]


@pytest.mark.parametrize("window", ["images_per_day", "images_per_minute"])
def test_quota_under_concurrency(pg_client, window, monkeypatch):
    from limner.store import days

    monkeypatch.setattr(days, "now", lambda: 1_800_000_030.0)
    with pg_client.app.state.db.session() as s:
        key, _ = create_key(s, "burst", **{window: 7})

    def one(_: int):
        return pg_client.post(GEN, json={"prompt": "a red apple", "num_inference_steps": 1}, headers={"api-key": key})

    with ThreadPoolExecutor(20) as pool:
        codes = sorted(r.status_code for r in pool.map(one, range(20)))
    assert codes == [200] * 7 + [429] * 13
    with pg_client.app.state.db.session() as s:
        row = s.scalars(select(ApiKey).where(ApiKey.name == "burst")).one()
        assert (row.used_day, row.used_minute) == (7, 7)


def test_cli_on_postgres(pg_client, pg_url, monkeypatch):
    monkeypatch.setenv("COLUMNS", "200")
    runner = CliRunner()
    out = runner.invoke(cli, ["keys", "create", "--name", "pg-cli", "--database-url", pg_url])
    assert out.exit_code == 0, out.output
    key = re.search(r"^(lim-\S+)$", out.output, re.M).group(1)
    assert (
        pg_client.post(GEN, json={"prompt": "a pear", "num_inference_steps": 1}, headers={"api-key": key}).status_code
        == 200
    )
    usage = runner.invoke(cli, ["usage", "--database-url", pg_url])
    assert usage.exit_code == 0, usage.output
    row = next(line for line in usage.output.splitlines() if "pg-cli" in line)
    assert [c.strip() for c in row.split("│") if c.strip()][1:4] == ["pg-cli", "1", "1"]
    listing = runner.invoke(cli, ["keys", "list", "--database-url", pg_url])
    key_id = re.search(r"│\s*(\d+)\s*│\s*pg-cli", listing.output).group(1)
    assert runner.invoke(cli, ["keys", "revoke", key_id, "--database-url", pg_url]).exit_code == 0
    assert pg_client.get("/v1/models", headers={"api-key": key}).status_code == 401
