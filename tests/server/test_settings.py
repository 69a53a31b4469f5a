"""Settings: every field from its LIMNER_* variable, and every variable documented."""

from __future__ import annotations

from dataclasses import fields
from pathlib import Path

import pytest

from limner.server.settings import ALIASES, Settings

DOC = Path(__file__).parents[2] / "docs" / "deployment.md"


def _env_name(field: str) -> str:
    return ALIASES.get(field, "LIMNER_" + field.upper())


def test_every_setting_reads_its_variable(monkeypatch):
    monkeypatch.setenv("LIMNER_MAX_QUEUED_JOBS", "7")
    monkeypatch.setenv("LIMNER_JOB_LEASE_SECONDS", "2.5")
    monkeypatch.setenv("LIMNER_COOKIE_SECURE", "0")
    monkeypatch.setenv("LIMNER_DAILY_BOOSTS", "3")
    monkeypatch.setenv("LIMNER_MODELS", "/etc/limner/models.toml")
    s = Settings.from_env(data_dir=Path("/tmp/x"))
    assert (s.max_queued_jobs, s.job_lease_seconds, s.cookie_secure, s.creator_daily_boosts) == (7, 2.5, False, 3)
    assert s.models_file == Path("/etc/limner/models.toml") and s.data_dir == Path("/tmp/x")


def test_a_value_that_does_not_parse_names_the_variable(monkeypatch):
    monkeypatch.setenv("LIMNER_MAX_QUEUED_JOBS", "lots")
    with pytest.raises(ValueError, match="LIMNER_MAX_QUEUED_JOBS='lots' is not a valid int"):
        Settings.from_env()


def test_every_setting_is_documented():
    doc = DOC.read_text()
    missing = [
        _env_name(f.name)
        for f in fields(Settings)
        if f.name != "engine_factory" and f"`{_env_name(f.name)}`" not in doc
    ]
    assert not missing, f"docs/deployment.md does not document {missing}"
