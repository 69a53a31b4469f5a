"""Hostile input, the smaller holes (hardening item 10): control characters, forged metadata
lines, the Host header in links, signed links in the access log, the database's permissions,
scripts from a third-party origin on /docs, and a models file without a default."""

from __future__ import annotations

import logging
import stat

import pytest
from api_helpers import SIZE, decode, error_of

from limner.engine import Engine
from limner.engine.registry import ModelSpec
from limner.server.app import RedactSignatures

pytestmark = pytest.mark.hostile
GEN = "/v1/images/generations"


@pytest.mark.parametrize("char", ["\x00", "\x1b", "\u202e", "\x7f", "\x85"])
@pytest.mark.parametrize("field", ["prompt", "negative_prompt"])
def test_control_characters_are_refused(client, auth, char, field):
    body = {"prompt": "a red apple", "size": SIZE, field: f"a cat{char}[31m"}
    r = client.post(GEN, headers=auth, json=body)
    assert r.status_code == 400 and error_of(r)["param"] == field
    assert f"U+{ord(char):04X}" in error_of(r)["message"]


def test_a_prompt_cannot_write_metadata_lines_of_its_own(client, auth):
    prompt = "a cat\nNegative prompt: nothing\nSteps: 999, Sampler: Euler, Seed: 1"
    r = client.post(GEN, headers=auth, json={"prompt": prompt, "size": SIZE, "num_inference_steps": 2})
    assert r.status_code == 200, r.text
    text = decode(r.json()["data"][0]["b64_json"]).text["parameters"]
    lines = text.splitlines()
    assert lines[0].startswith("a cat Negative prompt: nothing Steps: 999")
    assert [ln for ln in lines if ln.startswith("Steps:")] == [lines[-1]] and "Steps: 2," in lines[-1]
    assert not any(ln.startswith("Negative prompt:") for ln in lines)


def test_links_do_not_follow_the_host_header(client, auth):
    r = client.post(
        GEN,
        headers={**auth, "Host": "evil.example"},
        json={"prompt": "a cat", "size": SIZE, "num_inference_steps": 1, "response_format": "url"},
    )
    assert r.status_code == 200, r.text
    url = r.json()["data"][0]["url"]
    assert "evil.example" not in url and url.startswith("http://testserver/v1/files/")


def test_signed_links_are_redacted_in_the_access_log():
    record = logging.LogRecord(
        "uvicorn.access", logging.INFO, "", 0, '%s - "%s %s HTTP/%s" %d', ("1.2.3.4", "GET",
        "/v1/files/file-1/content?expires=99&signature=abcdef0123", "1.1", 200), None,
    )  # fmt: skip
    RedactSignatures().filter(record)
    line = record.getMessage()
    assert "abcdef0123" not in line and "signature=[redacted]" in line and "expires=99" in line


def test_the_database_and_data_folder_are_private(client, settings):
    db = settings.data_dir / "limner.db"
    assert stat.S_IMODE(db.stat().st_mode) == 0o600
    assert stat.S_IMODE(settings.data_dir.stat().st_mode) & 0o077 == 0


def test_api_docs_load_no_third_party_scripts(client):
    for page in ("/docs", "/redoc"):
        html = client.get(page).text
        assert "cdn" not in html.lower() and "https://" not in html.split("<body")[1]
    assert client.get("/docs/assets/swagger-ui-bundle.js").status_code == 200
    assert client.get("/docs/assets/redoc.standalone.js").status_code == 200


def test_a_models_file_without_default_keeps_the_shipped_default(tmp_path, tiny_model):
    toml = tmp_path / "models.toml"
    toml.write_text(f'[models.zzz]\npath = "{tiny_model}"\n[models.aaa]\npath = "{tiny_model}"\n')
    shipped = [ModelSpec("limner-1", "limner", tiny_model), ModelSpec("limner-2", "limner", tiny_model)]
    assert Engine(specs=shipped, models_file=toml).default == "limner-2"
    assert Engine(specs=[], models_file=toml).default == "zzz"  # the file's first, not the last name


def test_a_models_file_whose_default_names_no_model_is_an_error(tmp_path, tiny_model):
    toml = tmp_path / "models.toml"
    toml.write_text(f'default = "nope"\n[models.tiny]\npath = "{tiny_model}"\n')
    with pytest.raises(Exception, match="names no model"):
        Engine(specs=[], models_file=toml)


def test_url_images_are_deleted_after_their_retention(client, auth, monkeypatch):
    import datetime as dt
    from pathlib import Path

    from limner.server import janitor
    from limner.store.db import StoredFile

    r = client.post(
        GEN, headers=auth, json={"prompt": "a cat", "size": SIZE, "num_inference_steps": 1, "response_format": "url"}
    )
    assert r.status_code == 200
    state = client.app.state
    with state.db.session() as s:
        (row,) = s.query(StoredFile).all()
        path = Path(row.path)
    assert janitor.sweep_files(state) == 0 and path.exists()  # young: kept
    later = janitor.utcnow() + dt.timedelta(hours=state.settings.file_retention_hours + 1)
    monkeypatch.setattr(janitor, "utcnow", lambda: later)
    assert janitor.sweep_files(state) == 1 and not path.exists()
    with state.db.session() as s:
        assert s.query(StoredFile).count() == 0
