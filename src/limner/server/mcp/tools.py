"""The tools: ``generate_image``, ``edit_image`` and ``list_models``, with the Images API's
parameter names and bounds, its admission and generation path, and its error objects."""

from __future__ import annotations

import asyncio
import base64
import json
import logging
import secrets
import threading
from collections.abc import Callable
from dataclasses import replace
from typing import Annotated

import anyio
from mcp.server.mcpserver import Context, MCPServer
from mcp.types import CallToolResult, ContentBlock, ImageContent, ResourceLink, TextContent, ToolAnnotations
from pydantic import Field
from starlette.requests import Request

from limner.engine import Engine, GeneratedImage, GenerationRequest, Progress
from limner.engine.request import MAX_N, MAX_PROMPT_CHARS, MAX_STEPS
from limner.errors import Busy, LimnerError, RateLimited
from limner.server import generation
from limner.server.api.images import public_base
from limner.server.errors import error_object
from limner.server.mcp.door import Door, Drawn
from limner.server.mcp.inputs import image_bytes
from limner.server.uploads import edit_mask, read_image
from limner.version import __version__

log = logging.getLogger("limner.server")


INSTRUCTIONS = """Limner draws images from text prompts on its own server.
list_models: the models and the sizes each makes. generate_image: draw from a prompt.
edit_image: repaint an image, or only the part a mask leaves transparent.
Text in double quotes in a prompt is set exactly as written ('a poster that says "GRAND OPENING"').
Every result gives each image's seed and parameters: the same ones make the same image again."""


# the tools' parameters: the Images API's names and bounds (engine/request.py)
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


Loras = Annotated[
    dict[str, float] | None,
    Field(
        max_length=16,
        description='LoRA adapters to apply, name → scale ({"ink": 0.8}), of those list_models shows for the model. '
        "Omit for the model's defaults; {} for none.",
    ),
]


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
        loras: Loras = None,
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
            loras=loras,
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
        loras: Loras = None,
    ) -> CallToolResult:
        """Repaint an image following a prompt: under a mask only the transparent part, without one all of it,
        keeping its composition and colours. Returns the images like generate_image, with the same errors, and
        invalid_image or invalid_mask when an input cannot be used."""
        door = _door(ctx, local)

        def prepare() -> GenerationRequest:  # after admission: a refused call decodes nothing
            limit = door.settings.max_upload_pixels
            source = read_image(image_bytes(door, image, "image"), param="image", max_pixels=limit)
            matte = None
            if mask is not None:
                matte = edit_mask(source, read_image(image_bytes(door, mask, "mask"), param="mask", max_pixels=limit))
            return GenerationRequest(
                prompt,
                negative_prompt=negative_prompt,
                n=n,
                size=None if size in (None, "auto") else size,
                seed=seed,
                num_inference_steps=num_inference_steps,
                guidance_scale=guidance_scale,
                model=model,
                loras=loras,
                image=source.convert("RGB"),
                mask=matte,
                strength=strength,  # None: the engine's one default (request.default_strength)
            )

        return await _draw(ctx, door, prompt, n, prepare)

    @server.tool(title="List models", annotations=ToolAnnotations(read_only_hint=True, open_world_hint=False))
    async def list_models(ctx: Context) -> CallToolResult:
        """The models this server draws with: name, backend and which is the default; for the default model
        (and any other already loaded) also the sizes it makes, its modes, its sampling defaults and the
        LoRA adapters it has (loras), which generate_image and edit_image take by name."""
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
                item |= {"loras": info.loras} if info.loras else {}
        out.append(item)
    return out
