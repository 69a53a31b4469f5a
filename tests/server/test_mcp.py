"""The MCP server (``server/mcp/``) through the SDK's own client: connected in memory to the stdio
server, and over streamable HTTP (in-process, on the app's event loop) to ``/mcp`` in the app."""

from __future__ import annotations

import base64
import io
import json
import os
import sys
from collections.abc import Awaitable, Callable, Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import anyio
import httpx2
import numpy as np
import pytest
from api_helpers import SIZE, STEPS, decode, error_of, png_bytes
from fastapi.testclient import TestClient
from mcp import Client, MCPError, StdioServerParameters
from mcp.client.streamable_http import streamable_http_client
from mcp.types import CallToolResult
from PIL import Image
from sqlalchemy import select

from limner.server.body_limit import body_limit
from limner.server.mcp import Door, create_server, local_door
from limner.server.settings import Settings
from limner.store.db import ApiKey, Usage

GEN = "/v1/images/generations"
FAST = {"num_inference_steps": STEPS}
Body = Callable[[Client], Awaitable[Any]]


@pytest.fixture
def door(settings: Settings, tmp_path: Path) -> Iterator[Door]:
    """What ``limner mcp`` draws with, on the test's data folder, writing images to ``out/``."""
    d = local_door(settings, tmp_path / "out")
    yield d
    d.engine.close()
    d.db.engine.dispose()


def stdio(door: Door, body: Body) -> Any:
    """``body(client)`` with the SDK's client connected in memory to the stdio server."""

    async def main() -> Any:
        async with Client(create_server(door), raise_exceptions=True) as c:
            return await body(c)

    return anyio.run(main)


def http(client: TestClient, key: str | None, body: Body, mode: str = "auto") -> Any:
    """``body(client)`` with the SDK's client on ``/mcp`` over streamable HTTP, in-process, on the
    event loop the app's lifespan runs on. ``mode="legacy"``: as clients of the handshake era."""

    async def main() -> Any:
        headers = {"Authorization": f"Bearer {key}"} if key else {}
        transport = httpx2.ASGITransport(app=client.app)
        async with (
            httpx2.AsyncClient(transport=transport, base_url="http://testserver", headers=headers) as h,
            Client(streamable_http_client("http://testserver/mcp", http_client=h), mode=mode) as c,
        ):
            return await body(c)

    return client.portal.call(main)  # type: ignore[union-attr]


def call(tool: str, **arguments: Any) -> Body:
    return lambda c: c.call_tool(tool, arguments)


def images(result: CallToolResult) -> list[Image.Image]:
    assert not result.is_error, result.content
    return [decode(block.data) for block in result.content if block.type == "image"]


def links(result: CallToolResult) -> list[str]:
    return [str(block.uri) for block in result.content if block.type == "resource_link"]


def error(result: CallToolResult) -> dict:
    """The API's error object a tool error carries."""
    assert result.is_error and len(result.content) == 1
    return json.loads(result.content[0].text)["error"]


def source_and_mask() -> tuple[Image.Image, Image.Image]:
    src = Image.new("RGB", (128, 128), (200, 30, 30))
    mask = Image.new("RGBA", (128, 128), (0, 0, 0, 255))
    mask.paste((0, 0, 0, 0), (0, 0, 64, 128))  # left half transparent: repaint it
    return src, mask


def b64(img: Image.Image) -> str:
    return base64.b64encode(png_bytes(img)).decode()


# -- the tools as an assistant sees them ----------------------------------------------------------------


def test_tools_have_schemas_and_descriptions(door):
    tools = {t.name: t for t in stdio(door, lambda c: c.list_tools()).tools}
    assert set(tools) == {"generate_image", "edit_image", "list_models"}
    gen = tools["generate_image"].input_schema
    assert gen["required"] == ["prompt"]  # the Context the SDK injects is no parameter
    assert set(gen["properties"]) == {
        "prompt", "size", "n", "seed", "model", "negative_prompt", "num_inference_steps", "guidance_scale", "loras",
    }  # fmt: skip
    assert gen["properties"]["n"]["maximum"] == 10 and gen["properties"]["prompt"]["maxLength"] == 2000
    assert "double quotes" in gen["properties"]["prompt"]["description"]
    assert "moderation_blocked" in tools["generate_image"].description
    edit = tools["edit_image"].input_schema
    assert edit["required"] == ["image", "prompt"] and "transparent" in edit["properties"]["mask"]["description"]
    assert tools["list_models"].annotations.read_only_hint
    assert not tools["generate_image"].annotations.read_only_hint


def test_list_models_names_sizes_and_no_paths(door):
    result = stdio(door, call("list_models"))
    models = result.structured_content["models"]
    assert [(m["name"], m["default"], m["sizes"]) for m in models] == [("tiny", True, ["128x128", "32x32"])]
    assert {"text2img", "img2img", "inpaint"} <= set(models[0]["modes"])
    assert json.loads(result.content[0].text) == models
    assert "path" not in result.content[0].text and "safetensors" not in result.content[0].text


# -- stdio ---------------------------------------------------------------------------------------------


def test_generate_over_stdio_with_progress(door, tmp_path):
    steps: list[tuple[float, float | None, str | None]] = []

    async def progress(done: float, total: float | None, message: str | None) -> None:
        steps.append((done, total, message))

    async def body(c: Client) -> CallToolResult:
        args = {"prompt": "a red apple", "n": 2, "seed": 7, "size": SIZE, **FAST}
        return await c.call_tool("generate_image", args, progress_callback=progress)

    result = stdio(door, body)
    got = images(result)
    assert [im.size for im in got] == [(128, 128)] * 2 and got[0].format == "PNG"
    assert [(done, total) for done, total, _ in steps] == [(1, 4), (2, 4), (3, 4), (4, 4)]
    assert steps[0][2] == "sampling step 1 of 4"
    records = result.structured_content["images"]
    assert [r["seed"] for r in records] == [7, 8]
    assert records[0]["parameters"]["num_inference_steps"] == STEPS and records[0]["parameters"]["model"] == "tiny"
    assert "seeds 7, 8" in result.content[0].text
    assert json.loads(got[0].text["limner"])["seed"] == 7  # the parameters ride inside the PNG too
    # each image is written to the output folder, and the link says where
    files = [Path(urlsplit(link).path) for link in links(result)]
    assert [f.parent for f in files] == [tmp_path / "out"] * 2
    assert np.array_equal(np.asarray(Image.open(files[1])), np.asarray(got[1]))
    with door.db.session() as s:
        row = s.scalars(select(Usage)).one()
    assert (row.endpoint, row.images, row.key_id, row.status) == ("mcp", 2, None, "ok")


def test_edit_over_stdio_by_the_link_a_result_gave(door):
    first = stdio(door, call("generate_image", prompt="a red apple", seed=3, **FAST))
    (link,) = links(first)
    edited = stdio(door, call("edit_image", image=link, prompt="a green apple", strength=0.5, seed=3, **FAST))
    assert [im.size for im in images(edited)] == [(128, 128)]
    assert edited.structured_content["images"][0]["parameters"]["mode"] == "img2img"
    by_path = stdio(door, call("edit_image", image=urlsplit(link).path, prompt="a green apple", seed=3, **FAST))
    assert by_path.structured_content["images"][0]["parameters"]["strength"] == 0.8  # the API's default


def test_edit_with_mask_keeps_opaque_pixels(door):
    src, mask = source_and_mask()
    result = stdio(door, call("edit_image", image=b64(src), mask=b64(mask), prompt="a blue square", seed=1, **FAST))
    (out,) = images(result)
    px = np.asarray(out.convert("RGB"))
    assert (px[:, 64:] == [200, 30, 30]).all()  # kept exactly
    assert (np.abs(px[:, :64].astype(int) - [200, 30, 30]).sum(-1) > 30).mean() > 0.9  # repainted
    assert result.structured_content["images"][0]["parameters"]["mode"] == "inpaint"


@pytest.mark.parametrize(
    ("arguments", "code", "words"),
    [
        ({"image": "not an image"}, "invalid_image", "'image' must be the link of an image this server made"),
        ({"image": base64.b64encode(b"plain text").decode()}, "invalid_image", "not a PNG, JPEG or WebP image"),
        ({"mask": "resize"}, "invalid_mask", "mask is 64x64 but image is 128x128; they must match"),
        ({"mask": "no alpha"}, "invalid_mask", "mask must have an alpha channel"),
    ],
)
def test_unusable_inputs_are_tool_errors(door, arguments, code, words):
    src, mask = source_and_mask()
    masks = {"resize": b64(mask.resize((64, 64))), "no alpha": b64(mask.convert("L"))}
    args = {"image": b64(src), "prompt": "a blue square", **arguments}
    if "mask" in arguments:
        args["mask"] = masks[arguments["mask"]]
    err = error(stdio(door, lambda c: c.call_tool("edit_image", args)))
    assert err["code"] == code and words in err["message"]
    with door.db.session() as s:
        assert s.scalars(select(Usage)).all() == []  # refused before generation


def test_blocked_prompt_over_stdio(door):
    err = error(stdio(door, call("generate_image", prompt="a gory battlefield")))
    assert err["code"] == "moderation_blocked" and err["type"] == "image_generation_user_error"
    assert err["moderation_details"] == {"moderation_stage": "input", "category": "graphic_violence"}


# -- streamable HTTP in `limner serve` -------------------------------------------------------------------


def test_http_needs_a_valid_key(client, key):
    hello = {"jsonrpc": "2.0", "id": 1, "method": "tools/list", "params": {}}
    accept = {"Accept": "application/json, text/event-stream"}
    r = client.post("/mcp", json=hello, headers=accept)
    assert r.status_code == 401 and error_of(r)["code"] == "missing_api_key"
    r = client.post("/mcp", json=hello, headers={**accept, "Authorization": "Bearer lim-" + "x" * 43})
    assert r.status_code == 401 and error_of(r)["code"] == "invalid_api_key"
    with pytest.raises(ExceptionGroup) as refused:  # the SDK's client: no session without the key
        http(client, None, lambda c: c.list_tools())
    assert refused.group_contains(MCPError, match="error response")
    tools = http(client, key, lambda c: c.list_tools()).tools
    assert {t.name for t in tools} == {"generate_image", "edit_image", "list_models"}


def test_http_image_is_the_apis_and_links_to_the_stored_file(client, key, auth):
    """One call path: the same request makes the same pixels through either door."""
    api = client.post(GEN, json={"prompt": "a red apple", "seed": 11, **FAST}, headers=auth).json()
    steps: list[float] = []

    async def progress(done: float, total: float | None, message: str | None) -> None:
        steps.append(done)

    async def body(c: Client) -> CallToolResult:
        args = {"prompt": "a red apple", "seed": 11, **FAST}
        result = await c.call_tool("generate_image", args, progress_callback=progress)
        with anyio.fail_after(10):  # over HTTP the client runs progress callbacks as tasks of their own
            while len(steps) < STEPS:
                await anyio.sleep(0.01)
        return result

    result = http(client, key, body)
    assert sorted(steps) == [1, 2, 3, 4]  # progress rides the POST's event stream
    (im,) = images(result)
    assert np.array_equal(np.asarray(im), np.asarray(decode(api["data"][0]["b64_json"])))
    (link,) = links(result)
    parts = urlsplit(link)
    assert parts.path.startswith("/v1/files/file-") and "signature=" in parts.query
    stored = client.get(f"{parts.path}?{parts.query}")  # the signed link works without the key
    assert stored.status_code == 200 and stored.headers["content-type"] == "image/png"
    assert np.array_equal(np.asarray(Image.open(io.BytesIO(stored.content))), np.asarray(im))
    with client.app.state.db.session() as s:
        rows = s.scalars(select(Usage).order_by(Usage.id)).all()
        key_id = s.scalars(select(ApiKey.id)).one()
    assert [(r.endpoint, r.images, r.key_id) for r in rows] == [("generations", 1, key_id), ("mcp", 1, key_id)]


def test_http_for_clients_of_the_handshake_era(client, key):
    """Clients that still open with ``initialize`` (protocol 2025-*) get the same tools and keys."""
    steps: list[float] = []

    async def progress(done: float, total: float | None, message: str | None) -> None:
        steps.append(done)

    async def body(c: Client) -> tuple[str, CallToolResult]:
        result = await c.call_tool("generate_image", {"prompt": "a red apple", **FAST}, progress_callback=progress)
        with anyio.fail_after(10):
            while len(steps) < STEPS:
                await anyio.sleep(0.01)
        return c.protocol_version, result

    version, result = http(client, key, body, mode="legacy")
    assert version.startswith("2025-")
    assert [im.size for im in images(result)] == [(128, 128)] and sorted(steps) == [1, 2, 3, 4]
    assert urlsplit(links(result)[0]).path.startswith("/v1/files/file-")


def test_http_edit_by_link_and_a_forged_link(client, key):
    (link,) = links(http(client, key, call("generate_image", prompt="a red apple", seed=2, **FAST)))
    edited = http(client, key, call("edit_image", image=link, prompt="a blue apple", strength=0.6, **FAST))
    assert [im.size for im in images(edited)] == [(128, 128)]
    forged = link.replace("signature=", "signature=0")
    err = error(http(client, key, call("edit_image", image=forged, prompt="a blue apple")))
    assert (err["code"], err["param"]) == ("invalid_signature", "image")
    elsewhere = error(http(client, key, call("edit_image", image="https://example.com/a.png", prompt="a blue apple")))
    assert elsewhere["code"] == "invalid_image"  # nothing is fetched from anywhere else


@pytest.mark.parametrize(
    "arguments",
    [
        {"prompt": "a nude portrait"},
        {"prompt": "a red apple", "size": "300x300"},
        {"prompt": "a red apple", "size": "banana"},
        {"prompt": "a red apple", "model": "no-such-model"},
        {"prompt": "a red apple", "loras": {"ink": 0.8}},  # the tiny model has no adapters
    ],
    ids=["moderation", "size", "size-format", "model", "loras"],
)
def test_errors_are_the_apis(client, key, auth, arguments):
    """A refusal reaches the assistant as a tool error with the API's error object, word for word."""
    api = error_of(client.post(GEN, json=arguments, headers=auth))
    assert error(http(client, key, lambda c: c.call_tool("generate_image", arguments))) == api


def test_quota_is_shared_with_the_api(client, make_key):
    key = make_key(images_per_day=3)
    auth = {"Authorization": f"Bearer {key}"}
    assert client.post(GEN, json={"prompt": "a red apple", "n": 2, **FAST}, headers=auth).status_code == 200
    assert len(images(http(client, key, call("generate_image", prompt="a red apple", **FAST)))) == 1
    spent = error(http(client, key, call("generate_image", prompt="a red apple", **FAST)))
    refused = client.post(GEN, json={"prompt": "a red apple", **FAST}, headers=auth)
    assert refused.status_code == 429
    # seconds to the next UTC midnight, read a moment apart: a second may tick between the two
    assert abs(spent.pop("retry_after") - int(refused.headers["Retry-After"])) <= 1
    assert spent == error_of(refused)
    assert spent["message"] == "daily quota reached: 3 images per day for this key"
    with client.app.state.db.session() as s:
        assert s.scalars(select(ApiKey.used_day)).one() == 3
        images_by_door = {(r.endpoint, r.images) for r in s.scalars(select(Usage))}
    assert images_by_door == {("generations", 2), ("mcp", 1)}


def test_a_refused_call_reserves_nothing(client, make_key):
    key = make_key(images_per_day=1)
    error(http(client, key, call("generate_image", prompt="a gory battlefield")))
    error(http(client, key, call("generate_image", prompt="a red apple", size="300x300")))
    assert len(images(http(client, key, call("generate_image", prompt="a red apple", **FAST)))) == 1


def test_upload_limits_hold_on_http(client, key, settings):
    settings.max_upload_bytes = 4096  # read per request
    big = base64.b64encode(os.urandom(5000)).decode()
    err = error(http(client, key, call("edit_image", image=big, prompt="a blue square")))
    assert (err["code"], err["param"]) == ("file_too_large", "image")
    assert err["message"] == "'image' is larger than the upload limit of 4,096 bytes"  # the API's words
    limit = body_limit(settings, "/mcp")
    assert limit == 2 * len(base64.b64encode(bytes(4096))) + 2**20  # an image and a mask in base64, and the JSON
    headers = {"Authorization": f"Bearer {key}", "Content-Type": "application/json"}
    r = client.post("/mcp", content=b" " * (limit + 1), headers=headers)
    assert r.status_code == 413 and error_of(r)["code"] == "request_too_large"


# -- the command ---------------------------------------------------------------------------------------


@pytest.mark.slow
def test_limner_mcp_over_stdio(tiny_model, tmp_path):
    """``limner mcp`` as a desktop assistant starts it: a subprocess speaking on stdin and stdout."""
    models = tmp_path / "models.toml"
    models.write_text(f'default = "tiny"\n\n[models.tiny]\nbackend = "limner"\npath = "{tiny_model}"\n')
    server = StdioServerParameters(
        command=sys.executable,
        args=["-m", "limner.cli", "mcp", "--models", str(models), "--data-dir", str(tmp_path / "data")],
        env={"PYTHONPATH": os.pathsep.join(sys.path)},
    )

    async def main() -> CallToolResult:
        async with Client(server) as c:
            return await c.call_tool("generate_image", {"prompt": "a red apple", "seed": 5, **FAST})

    result = anyio.run(main)
    (im,) = images(result)
    assert im.size == (128, 128)
    (link,) = links(result)
    assert Path(urlsplit(link).path).parent == tmp_path / "data" / "images"
