"""Limner as a Model Context Protocol server, so assistants (Claude Desktop, VS Code, Cursor, custom
agents) can draw with it: ``generate_image``, ``edit_image`` and ``list_models``, over stdio
(``limner mcp``) and over streamable HTTP at ``/mcp`` in ``limner serve``, where every request
carries an API key.

A call takes the Images API's path — ``generation.admission`` (moderation, the key's quota), then
``generation.run`` with endpoint "mcp" — so quotas, moderation and usage records are the API's. A
refusal comes back as a tool error holding the API's error object (same code, same words). Images
come back as PNG image content with their seed and parameters, and a link to the kept file: over
HTTP the API's signed file URL, over stdio the PNG written to the output folder."""

from __future__ import annotations

import asyncio
import base64
import binascii
import json
import logging
import re
import secrets
import threading
import urllib.parse
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Annotated

import anyio
from fastapi import FastAPI
from mcp.server.mcpserver import Context, MCPServer
from mcp.server.transport_security import TransportSecuritySettings
from mcp.types import CallToolResult, ContentBlock, ImageContent, ResourceLink, TextContent, ToolAnnotations
from pydantic import Field
from starlette.requests import Request
from starlette.routing import Route
from starlette.types import Receive, Scope, Send

from limner import __version__
from limner.engine import Engine, GeneratedImage, GenerationRequest, Progress
from limner.engine.request import MAX_N, MAX_PROMPT_CHARS, MAX_STEPS
from limner.errors import Busy, Forbidden, InvalidRequest, LimnerError, NotFound, RateLimited, TooLarge
from limner.moderation import Policy
from limner.provenance import Provenance
from limner.server import generation
from limner.server.api.images import public_base
from limner.server.body_limit import MCP_PATH, body_limit
from limner.server.deps import get_api_key
from limner.server.errors import error_object
from limner.server.settings import Settings
from limner.server.uploads import edit_mask, read_image
from limner.server.work import Slots
from limner.store.db import ApiKey, Database, StoredFile
from limner.store.files import FileStore

log = logging.getLogger("limner.server")

INSTRUCTIONS = """Limner draws images from text prompts on its own server.
list_models: the models and the sizes each makes. generate_image: draw from a prompt.
edit_image: repaint an image, or only the part a mask leaves transparent.
Text in double quotes in a prompt is set exactly as written ('a poster that says "GRAND OPENING"').
Every result gives each image's seed and parameters: the same ones make the same image again."""

_FILE_LINK = re.compile(r"/v1/files/(file-[0-9a-f]{32})/content$")

# -- the tools' parameters: the Images API's names and bounds (engine/request.py) -------------------

Prompt = Annotated[
    str,
    Field(
        min_length=1,
        max_length=MAX_PROMPT_CHARS,
        description='What to draw, with its style and colours ("a red apple, 3D render", "a smiling cat face, '
        'flat icon"). Text in double quotes is set exactly as written: \'a shop sign that says "OPEN"\'. '
        "The built-in model reads about the first 35 words.",
    ),
]
Size = Annotated[
    str | None,
    Field(
        max_length=20,
        description="'WxH', or omit (or 'auto') for the model's native size. Each model makes only some sizes: "
        "list_models shows them.",
    ),
]
Count = Annotated[int, Field(ge=1, le=MAX_N, description="How many images; image i uses seed + i.")]
Seed = Annotated[
    int | None,
    Field(
        ge=0,
        le=2**63 - 1,
        description="The same seed with the same parameters makes the same image. Omit for a random one "
        "(the result says which).",
    ),
]
Model = Annotated[str | None, Field(max_length=200, description="A model name from list_models; omit for the default.")]
Negative = Annotated[
    str, Field(max_length=MAX_PROMPT_CHARS, description='What to steer away from ("blurry, text"). Optional.')
]
Steps = Annotated[
    int | None,
    Field(ge=1, le=MAX_STEPS, description="Sampling steps: more is slower and usually cleaner. Omit for the model's."),
]
Guidance = Annotated[
    float | None,
    Field(
        ge=0, le=30, description="How closely to follow the prompt (classifier-free guidance). Omit for the model's."
    ),
]


@dataclass
class Door:
    """What one call draws with, and for whom: the service's objects, the caller's key, and where
    the images are kept."""

    db: Database
    engine: Engine
    policy: Policy
    slots: Slots
    settings: Settings
    key: ApiKey | None = None  # HTTP: the request's key; stdio: none (the local user, as `limner generate`)
    request_id: str = "-"
    files: FileStore | None = None  # HTTP: images are stored and linked by signed URL
    base_url: str = ""
    outputs: Path | None = None  # stdio: images are written here and linked as files
    provenance: Provenance | None = None  # the watermark and the manifest's signer (None: neither)


@dataclass
class Drawn:
    png: bytes
    parameters: dict
    link: str | None


def create_server(local: Door | None = None) -> MCPServer:
    """The tools. ``local``: what a stdio server draws with; without it (under ``limner serve``)
    each call finds the app's objects and the caller's key through its HTTP request."""
    root = logging.getLogger()
    level, handlers = root.level, root.handlers[:]
    server: MCPServer = MCPServer("limner", title="Limner", version=__version__, instructions=INSTRUCTIONS)
    root.setLevel(level)  # MCPServer() calls logging.basicConfig; the root logger is not the SDK's to set
    root.handlers[:] = handlers

    drawing = ToolAnnotations(read_only_hint=False, destructive_hint=False, open_world_hint=False)

    @server.tool(title="Generate images", annotations=drawing)
    async def generate_image(
        ctx: Context,
        prompt: Prompt,
        size: Size = None,
        n: Count = 1,
        seed: Seed = None,
        model: Model = None,
        negative_prompt: Negative = "",
        num_inference_steps: Steps = None,
        guidance_scale: Guidance = None,
    ) -> CallToolResult:
        """Draw images from a text prompt. Returns each image as a PNG with its seed and every parameter used,
        and a link to the kept file. Errors carry the Images API's code: moderation_blocked (the prompt was
        refused), rate_limit_exceeded (the key's quota is spent; retry_after says when it resets), or a
        parameter's error naming it."""
        door = _door(ctx, local)
        req = GenerationRequest(
            prompt,
            negative_prompt=negative_prompt,
            n=n,
            size=None if size in (None, "auto") else size,
            seed=seed,
            num_inference_steps=num_inference_steps,
            guidance_scale=guidance_scale,
            model=model,
        )
        return await _draw(ctx, door, req.prompt, n, lambda: req)

    @server.tool(title="Edit an image", annotations=drawing)
    async def edit_image(
        ctx: Context,
        image: Annotated[
            str,
            Field(
                description="The image to edit: the link of an image a previous call returned, or PNG, JPEG or WebP "
                "bytes in base64 (a data: URL works too); over stdio also a path to a local file."
            ),
        ],
        prompt: Prompt,
        mask: Annotated[
            str | None,
            Field(
                description="Where to repaint: a PNG of the image's size whose transparent (alpha 0) pixels are "
                "repainted; the rest is kept exactly. Given like image. Omit to repaint the whole image, guided by it."
            ),
        ] = None,
        strength: Annotated[
            float | None,
            Field(gt=0, le=1, description="How much to repaint, 0–1: 1 with a mask, 0.8 without unless given."),
        ] = None,
        size: Size = None,
        n: Count = 1,
        seed: Seed = None,
        model: Model = None,
        negative_prompt: Negative = "",
        num_inference_steps: Steps = None,
        guidance_scale: Guidance = None,
    ) -> CallToolResult:
        """Repaint an image following a prompt: under a mask only the transparent part, without one all of it,
        keeping its composition and colours. Returns the images like generate_image, with the same errors, and
        invalid_image or invalid_mask when an input cannot be used."""
        door = _door(ctx, local)

        def prepare() -> GenerationRequest:  # after admission: a refused call decodes nothing
            limit = door.settings.max_upload_pixels
            source = read_image(_image_bytes(door, image, "image"), param="image", max_pixels=limit)
            matte = None
            if mask is not None:
                matte = edit_mask(source, read_image(_image_bytes(door, mask, "mask"), param="mask", max_pixels=limit))
            return GenerationRequest(
                prompt,
                negative_prompt=negative_prompt,
                n=n,
                size=None if size in (None, "auto") else size,
                seed=seed,
                num_inference_steps=num_inference_steps,
                guidance_scale=guidance_scale,
                model=model,
                image=source.convert("RGB"),
                mask=matte,
                strength=strength,  # None: the engine's one default (request.default_strength)
            )

        return await _draw(ctx, door, prompt, n, prepare)

    @server.tool(title="List models", annotations=ToolAnnotations(read_only_hint=True, open_world_hint=False))
    async def list_models(ctx: Context) -> CallToolResult:
        """The models this server draws with: name, backend and which is the default; for the default model
        (and any other already loaded) also the sizes it makes, its modes and its sampling defaults."""
        door = _door(ctx, local)
        models = await anyio.to_thread.run_sync(_models, door.engine)
        return CallToolResult(
            content=[TextContent(type="text", text=json.dumps(models, indent=1))], structured_content={"models": models}
        )

    return server


def _door(ctx: Context, local: Door | None) -> Door:
    if local is not None:
        return replace(local, request_id="mcp_" + secrets.token_hex(12))
    request = ctx.request_context.request
    if not isinstance(request, Request):
        raise RuntimeError("this MCP server answers over HTTP only: `limner mcp` serves stdio")
    state = request.app.state
    return Door(
        state.db,
        state.engine,
        state.policy,
        state.slots,
        state.settings,
        key=request.state.api_key,
        request_id=request.state.request_id,
        files=state.files,
        base_url=public_base(request),
        provenance=state.provenance,
    )


async def _draw(
    ctx: Context, door: Door, prompt: str, n: int, prepare: Callable[[], GenerationRequest]
) -> CallToolResult:
    """Admission, then generation on a generation thread with its sampling steps sent as progress
    notifications, then the images kept and returned — or the API's error as a tool error."""
    loop = asyncio.get_running_loop()
    steps: asyncio.Queue[Progress | None] = asyncio.Queue()
    cancel = threading.Event()

    def on_progress(p: Progress) -> None:  # on the engine's compute thread
        loop.call_soon_threadsafe(steps.put_nowait, p)

    def work() -> list[Drawn]:
        with generation.admission(door.db, door.policy, key=door.key, texts=(prompt,), n=n) as ticket:
            req = prepare()
            req.cancel, req.on_progress = cancel, on_progress
            result = generation.run(
                door.db, door.engine, door.policy, req, endpoint="mcp", request_id=door.request_id, key=door.key,
                ticket=ticket, provenance=door.provenance,
            )  # fmt: skip
        return [_keep(door, im) for im in result.images]

    async def report() -> None:
        try:
            while (p := await steps.get()) is not None:
                await ctx.report_progress(p.step, p.total, f"sampling step {p.step} of {p.total}")
        finally:
            cancel.set()  # a call cancelled while sampling stops its work (a no-op once it is done)

    outcome: list[Drawn] | LimnerError
    async with anyio.create_task_group() as tg:
        tg.start_soon(report)
        try:
            outcome = await door.slots.run(work)
        except LimnerError as e:
            outcome = e
        except Exception:
            log.exception("unexpected error in an MCP call (%s)", door.request_id)
            outcome = LimnerError("The server had an error while processing your request.")
        finally:
            steps.put_nowait(None)
    if isinstance(outcome, LimnerError):
        return tool_error(outcome, door.request_id)
    return _result(outcome)


def _keep(door: Door, im: GeneratedImage) -> Drawn:
    """The PNG (with its parameters inside), stored where this door keeps images."""
    png = im.png_bytes()
    link = None
    if door.files is not None and door.key is not None:
        with door.db.session() as s:
            row = door.files.save(s, png, "png", key_id=door.key.id, meta=im.parameters)
        link = door.base_url + door.files.signed_path(row.id, door.settings.url_expiry_minutes)
    elif door.outputs is not None:
        stem = "".join(c if c.isalnum() else "-" for c in im.prompt.lower())[:40].strip("-") or "image"
        door.outputs.mkdir(parents=True, exist_ok=True)
        path = door.outputs / f"{stem}-{im.seed}-{secrets.token_hex(3)}.png"
        path.write_bytes(png)
        link = path.resolve().as_uri()
    return Drawn(png, im.parameters, link)


def _result(drawn: list[Drawn]) -> CallToolResult:
    records = [{"seed": d.parameters["seed"], "link": d.link, "parameters": d.parameters} for d in drawn]
    first = drawn[0].parameters
    summary = (
        f"{len(drawn)} image{'s' if len(drawn) > 1 else ''} by {first['model']}, {first['size']}, "
        f"seed{'s' if len(drawn) > 1 else ''} {', '.join(str(d.parameters['seed']) for d in drawn)}. "
        "The same prompt, parameters and seed make the same image again."
    )
    content: list[ContentBlock] = [TextContent(type="text", text=summary + "\n" + json.dumps(records, indent=1))]
    for i, d in enumerate(drawn):
        content.append(ImageContent(type="image", data=base64.b64encode(d.png).decode(), mime_type="image/png"))
        if d.link:
            name = f"image {i + 1}, seed {d.parameters['seed']}"
            content.append(ResourceLink(type="resource_link", uri=d.link, name=name, mime_type="image/png"))
    return CallToolResult(content=content, structured_content={"images": records})


def tool_error(e: LimnerError, request_id: str = "-") -> CallToolResult:
    """The API's error object as a tool error: the assistant reads the same code and words as an
    API caller (and, for a limit, the seconds until it resets, which the API sends as a header)."""
    body = error_object(e, request_id)
    if isinstance(e, RateLimited | Busy):
        body["retry_after"] = e.retry_after
    return CallToolResult(content=[TextContent(type="text", text=json.dumps({"error": body}))], is_error=True)


def _image_bytes(door: Door, value: str, param: str) -> bytes:
    """An input image given as a link this server handed out, a local file (stdio only), or base64
    (a data: URL too), within the upload limit."""
    value = value.strip()
    limit = door.settings.max_upload_bytes
    too_large = TooLarge(
        f"'{param}' is larger than the upload limit of {limit:,} bytes", code="file_too_large", param=param
    )
    if value.startswith(("http://", "https://")):
        return _linked_file(door, value, param)
    if door.outputs is not None and len(value) < 4096 and not value.startswith("data:"):
        path = Path(urllib.parse.unquote(value[7:]) if value.startswith("file://") else value).expanduser()
        try:
            size = path.stat().st_size if path.is_file() else None
        except OSError:  # not a name a path can have (base64 is read below)
            size = None
        if size is not None:
            if size > limit:
                raise too_large
            return path.read_bytes()
    encoded = value.partition(",")[2] if value.startswith("data:") else value
    try:
        data = base64.b64decode("".join(encoded.split()), validate=True)
    except (binascii.Error, ValueError):
        data = b""
    if not data:
        where = "a local file, " if door.outputs is not None else ""
        raise InvalidRequest(
            f"'{param}' must be the link of an image this server made, {where}or base64 image data",
            code="invalid_image",
            param=param,
        )
    if len(data) > limit:
        raise too_large
    return data


def _linked_file(door: Door, url: str, param: str) -> bytes:
    """The stored file behind a signed link of this server's (``/v1/files/{id}/content``); nothing
    else is fetched."""
    parts = urllib.parse.urlsplit(url)
    found = _FILE_LINK.search(parts.path)
    query = urllib.parse.parse_qs(parts.query)
    expires, signature = query.get("expires", [""])[0], query.get("signature", [""])[0]
    if door.files is None or not found or not expires.isdigit() or not signature:
        raise InvalidRequest(
            f"'{param}' is a link, but not to an image this server made: give such a link, or the image in base64",
            code="invalid_image",
            param=param,
        )
    file_id = found.group(1)
    if not door.files.check(file_id, int(expires), signature):
        raise Forbidden("This link has expired or its signature is wrong.", code="invalid_signature", param=param)
    with door.db.session() as s:
        row = s.get(StoredFile, file_id)
        path = Path(row.path) if row is not None else None
    if path is None or not path.exists():
        raise NotFound(f"No file with id '{file_id}'.", code="file_not_found", param=param)
    return path.read_bytes()


def _models(engine: Engine) -> list[dict]:
    """Every model; the default's details (loading it: the first image needs it anyway) and those of
    models loaded already. No paths: they are the server's."""
    out = []
    for entry in engine.models():
        item = {"name": entry["name"], "backend": entry["backend"], "default": entry["default"]}
        if entry["default"] or "sizes" in entry:
            try:
                info = engine.backend(entry["name"]).info()
            except LimnerError:
                item["available"] = False
            else:
                item |= {"sizes": info.sizes, "modes": info.modes, "defaults": info.defaults}
        out.append(item)
    return out


# -- the two doors -----------------------------------------------------------------------------------


class Endpoint:
    """``/mcp`` in ``limner serve``: each request is authenticated with an API key, by the Images
    API's own lookup (a missing or wrong key is its 401), and the tools find the key on the request."""

    def __init__(self, server: MCPServer):
        self.server = server

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        request = Request(scope, receive)
        request.state.api_key = await anyio.to_thread.run_sync(get_api_key, request)
        await self.server.session_manager.handle_request(scope, receive, send)


def mount(app: FastAPI) -> MCPServer:
    """Add ``/mcp`` to the app; its sessions run inside the app's lifespan (``serving``)."""
    server = create_server()
    app.router.routes.append(Route(MCP_PATH, Endpoint(server), include_in_schema=False))
    return server


@asynccontextmanager
async def serving(server: MCPServer, settings: Settings) -> AsyncIterator[None]:
    """Run the endpoint's session manager while the app runs: a fresh one per start (the SDK's runs
    once). Stateless, so any worker process can answer any request. No DNS-rebinding allowlist:
    every request needs an API key, which a page that rebinds a name does not have."""
    server.streamable_http_app(
        streamable_http_path=MCP_PATH,
        stateless_http=True,
        max_request_body_size=body_limit(settings, MCP_PATH),
        transport_security=TransportSecuritySettings(enable_dns_rebinding_protection=False),
    )
    async with server.session_manager.run():
        yield


def local_door(settings: Settings, outputs: Path) -> Door:
    """What ``limner mcp`` draws with: the data folder's database (usage is recorded there, with no
    key), the engine (configured models only: an assistant names no folders), the moderation policy."""
    settings.data_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
    db = Database(settings.resolved_database_url())
    db.migrate()
    engine = settings.make_engine()
    slots = Slots(settings.max_running_requests, settings.max_waiting_requests)
    policy = Policy.load(settings.moderation_policy)
    return Door(db, engine, policy, slots, settings, outputs=outputs, provenance=Provenance.from_settings(settings))


def serve_stdio(settings: Settings, outputs: Path) -> None:
    """``limner mcp``: the tools over stdin and stdout, until the assistant closes them."""
    door = local_door(settings, outputs)
    try:
        create_server(door).run("stdio")
    finally:
        door.engine.close(wait=False)
        door.db.engine.dispose()
