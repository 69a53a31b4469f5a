"""``POST /v1/images/verify`` and the provenance every door stamps: images from the API carry a
signed C2PA manifest (PNG, JPEG, WebP) and the watermark; verify reports both, and what a mark
resolves to only to operator keys; the switches per key and per server; bad uploads are 4xx."""

from __future__ import annotations

import base64
import io
import json
from collections.abc import Callable
from pathlib import Path

import c2pa
import numpy as np
import pytest
from api_helpers import SIZE, STEPS, error_of, png_bytes
from PIL import ExifTags, Image, ImageFilter

from limner.engine import Engine
from limner.engine.registry import ModelSpec
from limner.server.app import create_app
from limner.store.db import ApiKey, Mark

TRAINED = "http://cv.iptc.org/newscodes/digitalsourcetype/trainedAlgorithmicMedia"


class PictureEngine(Engine):
    """The tiny untrained model paints saturated colour noise, clipped at 0 and 255, where no mark
    within 38 dB can be found (a trained model's pictures have smooth areas, bench/watermark.py);
    here its images are blurred and toned down into pictures of that kind, after sampling."""

    def generate(self, request, timeout=None):
        images = super().generate(request, timeout)
        for im in images:
            grey = Image.new("RGB", im.image.size, (128, 128, 128))
            im.image = Image.blend(im.image.filter(ImageFilter.GaussianBlur(8)), grey, 0.5)
        return images


@pytest.fixture
def engine_factory(tiny_model: Path) -> Callable[[], Engine]:
    return lambda: PictureEngine(specs=[ModelSpec("tiny", "limner", tiny_model)], window_ms=5)


def _generate(client, auth, fmt="png", **extra) -> bytes:
    body = {"prompt": "a red apple", "size": SIZE, "num_inference_steps": STEPS, "seed": 3, "output_format": fmt}
    r = client.post("/v1/images/generations", json={**body, **extra}, headers=auth)
    assert r.status_code == 200, r.text
    return base64.b64decode(r.json()["data"][0]["b64_json"])


def _verify(client, auth, data: bytes, name="image.png"):
    return client.post("/v1/images/verify", files={"image": (name, data)}, headers=auth)


def _set(client, key_name: str, **values) -> None:
    with client.app.state.db.session() as s:
        row = s.query(ApiKey).filter_by(name=key_name).one()
        for k, v in values.items():
            setattr(row, k, v)


def test_an_api_image_verifies_with_its_manifest_and_watermark(client, auth):
    data = _generate(client, auth)
    r = _verify(client, auth, data)
    assert r.status_code == 200, r.text
    report = r.json()
    m, w = report["manifest"], report["watermark"]
    assert (m["present"], m["valid"], m["tampered"], m["trusted"], m["state"]) == (True, True, False, True, "Trusted")
    created = m["actions"][0]
    assert created["action"] == "c2pa.created" and created["digitalSourceType"] == TRAINED
    assert m["generator"]["model"] == "tiny"
    assert w["found"] and w["confidence"] > 0.999
    assert "resolves_to" not in w or w["resolves_to"] is None  # not an operator key


def test_only_an_operator_key_sees_what_the_mark_resolves_to(client, auth, make_key):
    data = _generate(client, auth)
    operator = make_key("ops")
    _set(client, "ops", operator=True)
    report = _verify(client, {"Authorization": f"Bearer {operator}"}, data).json()
    who = report["watermark"]["resolves_to"]
    assert who["key"]["name"] == "test" and who["model"] == "tiny" and who["seed"] == 3


@pytest.mark.parametrize("fmt", ["png", "jpeg", "webp"])
def test_c2pas_own_reader_validates_every_format(client, auth, fmt):
    data = _generate(client, auth, fmt)
    root = client.app.state.provenance.trusted_roots().decode()
    with (
        c2pa.Context.from_dict({"verify": {"remote_manifest_fetch": False}, "trust": {"user_anchors": root}}) as ctx,
        c2pa.Reader(f"image/{fmt}", io.BytesIO(data), context=ctx) as reader,
    ):
        assert reader.get_validation_state() == "Trusted"
        store = json.loads(reader.json())
    active = store["manifests"][store["active_manifest"]]
    labels = [a["label"] for a in active["assertions"]]
    assert "c2pa.actions.v2" in labels and "org.limner.generator" in labels


def test_the_a1111_parameters_stay_beside_the_manifest(client, auth):
    png = Image.open(io.BytesIO(_generate(client, auth)))
    assert "Seed: 3" in png.text["parameters"]  # type: ignore[attr-defined]
    jpeg = Image.open(io.BytesIO(_generate(client, auth, "jpeg")))
    assert b"S\x00e\x00e\x00d" in jpeg.getexif().get_ifd(ExifTags.IFD.Exif)[ExifTags.Base.UserComment]


def test_an_edit_carries_c2pa_edited_with_its_source_as_ingredient(client, auth, oai):
    source = _generate(client, auth)
    r = client.post(
        "/v1/images/edits",
        data={"prompt": "a green apple", "size": SIZE, "num_inference_steps": str(STEPS)},
        files={"image": ("source.png", source)},
        headers=auth,
    )
    assert r.status_code == 200, r.text
    edited = base64.b64decode(r.json()["data"][0]["b64_json"])
    m = _verify(client, auth, edited).json()["manifest"]
    assert m["valid"]
    assert [a["action"] for a in m["actions"]] == ["c2pa.opened", "c2pa.edited"]
    assert m["actions"][1]["digitalSourceType"] == TRAINED
    assert m["ingredients"] == ["source.png"]


def test_one_changed_pixel_after_signing_is_reported_as_tampered(client, auth):
    from tamper import change_one_pixel

    data = _generate(client, auth)
    m = _verify(client, auth, change_one_pixel(data, "png")).json()["manifest"]
    assert m["present"] and m["tampered"] and not m["valid"]


def test_a_key_can_turn_off_its_watermark_and_its_manifest(client, auth):
    _set(client, "test", watermark=False)
    report = _verify(client, auth, _generate(client, auth)).json()
    assert report["manifest"]["valid"] and not report["watermark"]["found"]
    _set(client, "test", watermark=None, content_credentials=False)
    report = _verify(client, auth, _generate(client, auth)).json()
    assert not report["manifest"]["present"] and report["watermark"]["found"]


def test_the_server_can_turn_both_off(settings):
    from fastapi.testclient import TestClient

    settings.watermark = False
    settings.content_credentials = False
    with TestClient(create_app(settings)) as tc:
        with tc.app.state.db.session() as s:  # type: ignore[attr-defined]
            from limner.store.keys import create_key

            plain, _ = create_key(s, "plain")
        auth = {"Authorization": f"Bearer {plain}"}
        report = _verify(tc, auth, _generate(tc, auth)).json()
    assert not report["manifest"]["present"] and not report["watermark"]["found"]
    assert not (settings.data_dir / "c2pa-key.pem").exists()


def test_the_signing_key_is_made_once_and_readable_by_the_service_only(client):
    key = client.app.state.settings.data_dir / "c2pa-key.pem"  # type: ignore[attr-defined]
    assert key.stat().st_mode & 0o777 == 0o600
    assert b"PRIVATE KEY" in key.read_bytes()


def test_an_image_from_elsewhere_has_neither(client, auth):
    plain = png_bytes(Image.new("RGB", (96, 80), (200, 120, 40)))
    report = _verify(client, auth, plain).json()
    assert not report["manifest"]["present"] and not report["watermark"]["found"]
    assert (report["width"], report["height"], report["format"]) == (96, 80, "png")


@pytest.mark.parametrize(
    ("files", "data", "code"),
    [
        (None, None, "missing_required_parameter"),  # not multipart at all: no image in it
        ({"image": ("a.png", b"x")}, {"image": "text"}, "invalid_value"),
        ({}, {"x": "1"}, "unknown_parameter"),
        ({"image": ("a.txt", b"not an image")}, None, "invalid_image"),
        ({"image": ("a.png", b"\x89PNG\r\n\x1a\n" + b"\x00" * 40)}, None, "invalid_image"),
        ({"mask": ("a.png", b"x")}, None, "unknown_parameter"),
    ],
)
def test_bad_uploads_get_a_400(client, auth, files, data, code):
    if files is None:
        r = client.post("/v1/images/verify", content=b"{}", headers={**auth, "Content-Type": "application/json"})
    else:
        r = client.post("/v1/images/verify", files=files or None, data=data, headers=auth)
    assert r.status_code == 400, r.text
    assert error_of(r)["code"] == code


def test_verify_needs_a_key(client):
    r = _verify(client, {}, png_bytes(Image.new("RGB", (8, 8))))
    assert r.status_code == 401


def test_the_same_picture_by_the_same_key_keeps_its_mark(client, auth, make_key):
    first, again = _generate(client, auth), _generate(client, auth)
    assert np.array_equal(np.asarray(Image.open(io.BytesIO(first))), np.asarray(Image.open(io.BytesIO(again))))
    other = _generate(client, {"Authorization": f"Bearer {make_key('other')}"})
    assert not np.array_equal(np.asarray(Image.open(io.BytesIO(first))), np.asarray(Image.open(io.BytesIO(other))))
    with client.app.state.db.session() as s:
        assert s.query(Mark).count() == 2


def test_limner_verify_and_keys_set_on_the_servers_data_folder(client, auth, settings, tmp_path, monkeypatch):
    from typer.testing import CliRunner

    from limner.cli import app as cli

    monkeypatch.setenv("LIMNER_SECRET", settings.secret)  # the service's secret: the CLI reads the marks with it
    monkeypatch.delenv("LIMNER_DATABASE_URL", raising=False)
    image = tmp_path / "apple.png"
    image.write_bytes(_generate(client, auth))
    run = CliRunner()
    out = run.invoke(cli, ["verify", str(image), "--data-dir", str(settings.data_dir)])
    assert out.exit_code == 0, out.output
    assert "Content Credentials valid (trusted signer" in out.output
    assert "c2pa.created [trainedAlgorithmicMedia]" in out.output and "watermark: found" in out.output
    assert '"name": "test"' in out.output and '"seed": 3' in out.output  # what it resolves to
    elsewhere = run.invoke(cli, ["verify", str(image), "--data-dir", str(tmp_path / "empty")])
    assert "watermark: found" in elsewhere.output and "resolves to" not in elsewhere.output

    with client.app.state.db.session() as s:
        key_id = s.query(ApiKey).filter_by(name="test").one().id
    out = run.invoke(
        cli, ["keys", "set", str(key_id), "--operator", "--no-manifest", "--data-dir", str(settings.data_dir)]
    )
    assert out.exit_code == 0 and "operator yes, watermark server's, manifest off" in out.output
    with client.app.state.db.session() as s:
        row = s.get(ApiKey, key_id)
        assert (row.operator, row.watermark, row.content_credentials) == (True, None, False)
    bad = run.invoke(cli, ["verify", str(tmp_path / "missing.png"), "--data-dir", str(settings.data_dir)])
    assert bad.exit_code == 1 and "missing.png" in bad.output
