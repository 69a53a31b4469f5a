"""The OpenAPI document describes every route, and the app keeps its promises: schemathesis sends
generated requests to every operation and checks there is no 5xx and no response off-schema."""

from __future__ import annotations

import pytest
import schemathesis
from hypothesis import HealthCheck, settings
from schemathesis.checks import not_a_server_error, response_schema_conformance
from schemathesis.python.asgi import shutdown_lifespans

from limner.server.app import create_app
from limner.server.settings import Settings
from limner.store.db import Database
from limner.store.keys import create_key

ROUTES = {
    ("post", "/v1/images/generations"),
    ("post", "/v1/images/edits"),
    ("post", "/v1/images/variations"),
    ("post", "/v1/images/verify"),
    ("get", "/v1/models"),
    ("get", "/v1/models/{model_id}"),
    ("get", "/v1/files/{file_id}/content"),
    ("get", "/healthz"),
}


def test_openapi_lists_every_route(app):
    doc = app.openapi()
    found = {(m, p) for p, ops in doc["paths"].items() for m in ops}
    assert found >= ROUTES
    for method, path in ROUTES:
        op = doc["paths"][path][method]
        assert op.get("summary"), (method, path)
        ok = op["responses"]["200"]
        assert ok.get("content"), (method, path)
    gen = doc["paths"]["/v1/images/generations"]["post"]
    assert gen["requestBody"]["content"]["application/json"]["schema"] == {
        "$ref": "#/components/schemas/GenerationBody"
    }
    body = doc["components"]["schemas"]["GenerationBody"]
    assert {"prompt", "n", "size", "response_format", "seed", "negative_prompt"} <= set(body["properties"])
    assert body["required"] == ["prompt"] and body["additionalProperties"] is False
    images = doc["components"]["schemas"]["ImagesResponse"]
    assert {"created", "data", "usage"} <= set(images["required"])


@pytest.mark.parametrize(("path", "mask"), [("/v1/images/edits", True), ("/v1/images/variations", False)])
def test_multipart_schemas(app, path, mask):
    op = app.openapi()["paths"][path]["post"]
    schema = op["requestBody"]["content"]["multipart/form-data"]["schema"]
    assert schema["properties"]["image"] == {
        "type": "string",
        "format": "binary",
        "description": "The image to edit (PNG, WebP or JPEG).",
    }
    assert ("mask" in schema["properties"]) is mask
    assert ("prompt" in schema["required"]) is mask
    assert op["responses"]["200"]["content"]["application/json"]["schema"] == {
        "$ref": "#/components/schemas/ImagesResponse"
    }


@pytest.fixture
def schema_key(settings) -> str:
    """A key with room for everything schemathesis sends, made before the app starts."""
    db = Database(settings.resolved_database_url())
    db.migrate()
    with db.session() as s:
        key, _ = create_key(s, "schemathesis")
    db.engine.dispose()
    return key


@pytest.fixture
def live_app(app, schema_key):
    """The test app; schemathesis starts its lifespan on the first call, this stops it."""
    yield app
    shutdown_lifespans()


# The document is the same for every app; the requests go to each test's own app (``live_app``).
# The Images API, /healthz and the arena's JSON API.
schema = schemathesis.openapi.from_dict(create_app(Settings()).openapi()).include(
    path_regex=r"^/(v1/|healthz$|arena/api/)"
)


@schema.parametrize()
@settings(
    max_examples=15,
    derandomize=True,
    deadline=None,
    suppress_health_check=list(HealthCheck),
)
def test_api_conforms(case, live_app, schema_key):
    case.call_and_validate(
        app=live_app,
        headers={"Authorization": f"Bearer {schema_key}"},
        checks=[not_a_server_error, response_schema_conformance],
    )


def test_every_parameter_and_error_code_is_documented():
    """docs/api.md names every request field and every error code the service can send."""
    import re
    from pathlib import Path

    from limner.server.multipart import EXTRA_FIELDS, FILE_FIELDS
    from limner.server.schemas import GenerationBody

    doc = (Path(__file__).parents[2] / "docs" / "api.md").read_text()
    fields = set(GenerationBody.model_fields) | EXTRA_FIELDS | FILE_FIELDS
    missing = sorted(f for f in fields if f"`{f}`" not in doc)
    assert not missing, f"undocumented parameters: {missing}"
    src = Path(__file__).parents[2] / "src" / "limner"
    api = [*src.glob("*.py"), *src.glob("server/*.py"), *src.glob("server/api/*.py")]
    code = "\n".join(p.read_text() for p in api if p.name != "runner.py")  # Creator jobs answer with pages
    codes = set(
        re.findall(
            r'"(invalid_\w+|missing_\w+|unknown_parameter|\w+_not_found|\w+_too_large|rate_limit_exceeded|engine_overloaded|too_many_\w+)"',
            code,
        )
    )
    codes |= {"moderation_blocked", "model_not_found"}
    undocumented = sorted(c for c in codes if f"`{c}`" not in doc)
    assert not undocumented, f"undocumented error codes: {undocumented}"
