"""``limner keys``, ``limner usage`` and ``limner db upgrade`` on the same data folder as the app."""

from __future__ import annotations

import re

import pytest
from typer.testing import CliRunner

from limner.cli import app as cli

runner = CliRunner()
GEN = "/v1/images/generations"


@pytest.fixture
def limner(settings, monkeypatch):
    """Run the CLI against the test app's data folder."""
    monkeypatch.delenv("LIMNER_DATABASE_URL", raising=False)
    monkeypatch.setenv("COLUMNS", "200")  # rich tables at full width

    def run(*args: str) -> str:
        result = runner.invoke(cli, [*args, "--data-dir", str(settings.data_dir)])
        assert result.exit_code == 0, result.output
        return result.output

    return run


def _created_key(output: str) -> str:
    return re.search(r"^(lim-\S+)$", output, re.M).group(1)


def test_keys_create_list_revoke(client, limner):
    out = limner("keys", "create", "--name", "ci-bot", "--images-per-minute", "5", "--images-per-day", "50")
    key = _created_key(out)
    assert "store it now" in out
    assert client.get("/v1/models", headers={"api-key": key}).status_code == 200

    listing = limner("keys", "list")
    row = next(line for line in listing.splitlines() if "ci-bot" in line)
    assert re.search(r"\b5\b", row) and re.search(r"\b50\b", row)
    assert f"lim-{key[4:12]}" in row and key not in listing
    key_id = re.search(r"│\s*(\d+)\s*│\s*ci-bot", listing).group(1)

    out = limner("keys", "revoke", key_id)
    assert f"key {key_id} revoked" in out
    r = client.get("/v1/models", headers={"api-key": key})
    assert r.status_code == 401  # at once: no restart, no cache
    assert "yes" in next(line for line in limner("keys", "list").splitlines() if "ci-bot" in line)


def test_revoke_unknown_key(settings, monkeypatch):
    monkeypatch.delenv("LIMNER_DATABASE_URL", raising=False)
    result = runner.invoke(cli, ["keys", "revoke", "42", "--data-dir", str(settings.data_dir)])
    assert result.exit_code == 1 and "no key with id 42" in result.output


def test_usage_shows_recorded_generations(client, limner):
    key = _created_key(limner("keys", "create", "--name", "reporter"))
    headers = {"api-key": key}
    body = {"prompt": "a red apple", "num_inference_steps": 1}
    assert client.post(GEN, json={**body, "n": 3}, headers=headers).status_code == 200
    assert client.post(GEN, json={**body, "size": "32x32"}, headers=headers).status_code == 200
    client.app.state.policy.output_checks.append(lambda img: "test")
    assert client.post(GEN, json=body, headers=headers).status_code == 400  # a failed request
    out = limner("usage")
    row = next(line for line in out.splitlines() if "reporter" in line)
    cells = [c.strip() for c in row.split("│") if c.strip()]
    # day, key, requests, images, megapixels, seconds, failed
    assert cells[1:5] == ["reporter", "3", "4", f"{(3 * 128 * 128 + 32 * 32) / 1e6:.2f}"]
    assert float(cells[5]) >= 0 and cells[6] == "1"


def test_db_upgrade(tmp_path, monkeypatch):
    from alembic.script import ScriptDirectory

    from limner.store.migrations import alembic_config

    head = ScriptDirectory.from_config(alembic_config()).get_current_head()
    monkeypatch.delenv("LIMNER_DATABASE_URL", raising=False)
    for _ in range(2):  # creates the schema, then finds nothing to do
        result = runner.invoke(cli, ["db", "upgrade", "--data-dir", str(tmp_path / "fresh")])
        assert result.exit_code == 0 and f"database at revision {head}" in result.output
    assert (tmp_path / "fresh" / "limner.db").exists()
