"""``/v1/images/generations``, ``/v1/images/edits``, ``/v1/images/variations`` — OpenAI-shaped."""

from __future__ import annotations

import base64
import io
import json
import logging
import queue
import threading
import time
from collections.abc import Iterator
from typing import Literal

from fastapi import APIRouter, Request
from fastapi.responses import StreamingResponse
from PIL import Image, UnidentifiedImageError
from pydantic import BaseModel, ConfigDict, Field
from starlette.concurrency import run_in_threadpool
from starlette.datastructures import UploadFile
from starlette.exceptions import HTTPException as StarletteHTTPException

from limner.engine import GenerationRequest, Progress
from limner.engine.metadata import read_metadata
from limner.errors import InvalidRequest, LimnerError
from limner.server import generation
from limner.server.deps import Key
from limner.server.errors import ERROR_RESPONSES, ApiError

log = logging.getLogger("limner.server")
router = APIRouter(prefix="/v1/images", tags=["images"], responses=ERROR_RESPONSES)

QUALITY_STEPS = {"low": 10, "medium": None, "standard": None, "auto": None, "high": 30, "hd": 30}


class ImageData(BaseModel):
    b64_json: str | None = None
    url: str | None = None
    revised_prompt: str | None = None


class InputTokensDetails(BaseModel):
    text_tokens: int
    image_tokens: int


class UsageInfo(BaseModel):
    input_tokens: int
    input_tokens_details: InputTokensDetails
    output_tokens: int
    total_tokens: int
    images: int = Field(description="Images generated (Limner).")
    pixels: int = Field(description="Pixels generated in all (Limner).")
    seconds: float = Field(description="Generation time in seconds (Limner).")


class ImagesResponse(BaseModel):
    created: int
    data: list[ImageData]
    usage: UsageInfo
    background: Literal["opaque"] = "opaque"
    output_format: Literal["png", "jpeg", "webp"] = "png"
    quality: str = "auto"
    size: str


class GenerationBody(BaseModel):
    """The OpenAI parameters Limner supports, plus the engine's own under the same names."""

    model_config = ConfigDict(extra="forbid")
    prompt: str = Field(min_length=1, max_length=32000)
    model: str | None = None
    n: int = Field(1, ge=1, le=10)
    size: str | None = Field(None, description="WxH, or 'auto' for the model's native size.")
    quality: Literal["auto", "low", "medium", "high", "standard", "hd"] = "auto"
    response_format: Literal["b64_json", "url"] = "b64_json"
    output_format: Literal["png", "jpeg", "webp"] = "png"
    output_compression: int | None = Field(None, ge=0, le=100)
    background: Literal["auto", "opaque", "transparent"] = "auto"
    moderation: Literal["auto", "low"] = "auto"
    user: str | None = Field(None, max_length=256)
    safety_identifier: str | None = Field(None, max_length=256)
    stream: bool = False
    partial_images: int = Field(0, ge=0, le=3)
    seed: int | None = Field(None, ge=0, le=2**63 - 1)
    negative_prompt: str = Field("", max_length=32000)
    num_inference_steps: int | None = Field(None, ge=1, le=200)
    guidance_scale: float | None = Field(None, ge=0, le=30)
    sampler: str | None = None


def _engine_request(body: GenerationBody, **extra: object) -> GenerationRequest:
    if body.background == "transparent":
        raise InvalidRequest(
            "transparent backgrounds are not supported: Limner's models paint opaque images",
            param="background",
        )
    steps = body.num_inference_steps if body.num_inference_steps is not None else QUALITY_STEPS[body.quality]
    return GenerationRequest(
        prompt=body.prompt,
        negative_prompt=body.negative_prompt,
        n=body.n,
        size=None if body.size in (None, "auto") else body.size,
        seed=body.seed,
        num_inference_steps=steps,
        guidance_scale=body.guidance_scale,
        model=body.model,
        sampler=body.sampler,
        **extra,  # type: ignore[arg-type]
    )


def _usage(prompt: str, images: list, seconds: float) -> UsageInfo:
    text_tokens = len(prompt.split())
    pixels = sum(im.image.width * im.image.height for im in images)
    return UsageInfo(
        input_tokens=text_tokens,
        input_tokens_details=InputTokensDetails(text_tokens=text_tokens, image_tokens=0),
        output_tokens=0,
        total_tokens=text_tokens,
        images=len(images),
        pixels=pixels,
        seconds=round(seconds, 3),
    )


def _respond(request: Request, key, body: GenerationBody, result: generation.Result) -> ImagesResponse:
    app = request.app
    data = []
    for im in result.images:
        blob = generation.encode(im, body.output_format, body.output_compression)
        if body.response_format == "url":
            with app.state.db.session() as s:
                row = app.state.files.save(s, blob, body.output_format, key_id=key.id, meta=im.parameters)
            base = app.state.settings.public_url or str(request.base_url).rstrip("/")
            url = base + app.state.files.signed_path(row.id, app.state.settings.url_expiry_minutes)
            data.append(ImageData(url=url, revised_prompt=im.prompt))
        else:
            data.append(ImageData(b64_json=base64.b64encode(blob).decode(), revised_prompt=im.prompt))
    size = f"{result.images[0].image.width}x{result.images[0].image.height}"
    return ImagesResponse(
        created=int(time.time()),
        data=data,
        usage=_usage(body.prompt, result.images, result.seconds),
        output_format=body.output_format,
        quality=body.quality,
        size=size,
    )


def _run(request: Request, key, req: GenerationRequest, body: GenerationBody, endpoint: str):
    app = request.app
    return generation.run(
        app.state.db,
        app.state.engine,
        app.state.policy,
        req,
        endpoint=endpoint,
        request_id=request.state.request_id,
        key=key,
        moderation=body.moderation,
    )


def _stream(request: Request, key, req: GenerationRequest, body: GenerationBody, endpoint: str) -> StreamingResponse:
    """Server-sent events: ``image_generation.partial_image`` at evenly spaced steps, then one
    ``image_generation.completed`` per image (``image_edit.*`` for edits)."""
    prefix = "image_edit" if endpoint != "generations" else "image_generation"
    events: queue.Queue = queue.Queue()
    sent: set[int] = set()
    wanted = body.partial_images

    def on_progress(p: Progress) -> None:
        marks = {round(k * p.total / (wanted + 1)) for k in range(1, wanted + 1)}
        if p.step in marks and p.step not in sent and p.previews:
            sent.add(p.step)
            events.put(("partial", len(sent) - 1, p.previews))

    req.on_progress = on_progress
    req.previews = wanted > 0
    # validate and reserve before the first byte, so errors still get their status code
    app = request.app
    app.state.policy.check_input(req.prompt, req.negative_prompt, level=body.moderation)
    from limner.engine.engine import check_request

    check_request(app.state.engine, req)

    def work() -> None:
        try:
            events.put(("done", _run(request, key, req, body, endpoint), None))
        except LimnerError as e:
            events.put(("error", e, None))
        except Exception:
            log.exception("unexpected error in a stream (%s)", request.state.request_id)
            events.put(
                (
                    "error",
                    LimnerError("The server had an error while processing your request."),
                    None,
                )
            )

    threading.Thread(target=work, daemon=True).start()
    # Wait for the first event before answering: an error found before any image (quota,
    # moderation, a failed generation) then still gets its own status code, not a 200 stream.
    first = [events.get()]
    if first[0][0] == "error":
        raise first[0][1]

    def sse(payload: dict) -> str:
        return f"event: {payload['type']}\ndata: {json.dumps(payload)}\n\n"

    def gen() -> Iterator[str]:
        while True:
            kind, a, b = first.pop() if first else events.get()
            if kind == "partial":
                for img in b:
                    buf = io.BytesIO()
                    img.resize((img.width * 4, img.height * 4), Image.Resampling.BICUBIC).save(buf, format="PNG")
                    yield sse(
                        {
                            "type": f"{prefix}.partial_image",
                            "b64_json": base64.b64encode(buf.getvalue()).decode(),
                            "partial_image_index": a,
                            "created_at": int(time.time()),
                            "background": "opaque",
                            "output_format": "png",
                            "quality": body.quality,
                            "size": body.size or "auto",
                        }
                    )
            elif kind == "done":
                result = a
                usage = _usage(body.prompt, result.images, result.seconds).model_dump()
                for im in result.images:
                    blob = generation.encode(im, body.output_format, body.output_compression)
                    yield sse(
                        {
                            "type": f"{prefix}.completed",
                            "b64_json": base64.b64encode(blob).decode(),
                            "created_at": int(time.time()),
                            "background": "opaque",
                            "output_format": body.output_format,
                            "quality": body.quality,
                            "size": f"{im.image.width}x{im.image.height}",
                            "usage": usage,
                        }
                    )
                return
            else:
                e = a
                yield sse(
                    {
                        "type": "error",
                        "error": {
                            "message": e.message,
                            "type": e.type,
                            "param": e.param,
                            "code": e.code,
                        },
                    }
                )
                return

    return StreamingResponse(gen(), media_type="text/event-stream", headers={"Cache-Control": "no-store"})


def _stream_doc(prefix: str) -> dict:
    """The 200 response: JSON, or (``stream``) server-sent events, each described as OpenAPI 3.1
    describes one event of a stream: its name and its JSON data."""
    event = {
        "type": "object",
        "required": ["event", "data"],
        "properties": {
            "event": {"type": "string", "enum": [f"{prefix}.partial_image", f"{prefix}.completed", "error"]},
            "data": {
                "type": "string",
                "contentMediaType": "application/json",
                "contentSchema": {
                    "type": "object",
                    "required": ["type"],
                    "properties": {
                        "type": {"type": "string"},
                        "b64_json": {"type": "string"},
                        "partial_image_index": {"type": "integer"},
                        "created_at": {"type": "integer"},
                        "size": {"type": "string"},
                        "output_format": {"type": "string"},
                        "usage": {"$ref": "#/components/schemas/UsageInfo"},
                        "error": {"$ref": "#/components/schemas/ErrorDetail"},
                    },
                },
            },
        },
    }
    return {
        "content": {"text/event-stream": {"schema": event}},
        "description": "JSON, or server-sent events when stream is true.",
    }


@router.post(
    "/generations",
    response_model=ImagesResponse,
    response_model_exclude_none=True,
    summary="Create images from a prompt",
    responses={200: _stream_doc("image_generation")},
)
def create_generation(body: GenerationBody, request: Request, key: Key):
    req = _engine_request(body)
    if body.stream:
        return _stream(request, key, req, body, "generations")
    return _respond(request, key, body, _run(request, key, req, body, "generations"))


# -- multipart endpoints ----------------------------------------------------------------------------

_FORM_FIELDS = {
    "prompt",
    "model",
    "n",
    "size",
    "quality",
    "response_format",
    "output_format",
    "output_compression",
    "background",
    "moderation",
    "user",
    "safety_identifier",
    "stream",
    "partial_images",
    "seed",
    "negative_prompt",
    "num_inference_steps",
    "guidance_scale",
    "sampler",
    "strength",
    "input_fidelity",
}
_FILE_FIELDS = {"image", "image[]", "mask"}


def _multipart_schema(with_prompt: bool, with_mask: bool) -> dict:
    props: dict = {
        "image": {
            "type": "string",
            "format": "binary",
            "description": "The image to edit (PNG, WebP or JPEG).",
        },
        "model": {"type": "string"},
        "n": {"type": "integer", "minimum": 1, "maximum": 10},
        "size": {"type": "string"},
        "response_format": {"type": "string", "enum": ["b64_json", "url"]},
        "output_format": {"type": "string", "enum": ["png", "jpeg", "webp"]},
        "user": {"type": "string"},
        "seed": {"type": "integer", "minimum": 0},
        "strength": {"type": "number", "exclusiveMinimum": 0, "maximum": 1},
        "num_inference_steps": {"type": "integer", "minimum": 1, "maximum": 200},
        "guidance_scale": {"type": "number", "minimum": 0, "maximum": 30},
    }
    required = ["image"]
    if with_prompt:
        props.update(
            prompt={"type": "string", "minLength": 1},
            negative_prompt={"type": "string"},
            moderation={"type": "string", "enum": ["auto", "low"]},
            stream={"type": "boolean"},
            partial_images={"type": "integer", "minimum": 0, "maximum": 3},
        )
        required.append("prompt")
    if with_mask:
        props["mask"] = {
            "type": "string",
            "format": "binary",
            "description": "PNG whose fully transparent (alpha 0) pixels mark the area to edit.",
        }
    return {
        "requestBody": {
            "required": True,
            "content": {
                "multipart/form-data": {"schema": {"type": "object", "properties": props, "required": required}}
            },
        }
    }


async def _read_form(request: Request) -> tuple[dict, list[Image.Image], Image.Image | None]:
    try:
        form = await request.form(max_files=4, max_fields=40)
    except StarletteHTTPException:  # the body limit: 413
        raise
    except Exception as e:  # malformed multipart
        raise ApiError(400, f"could not read the multipart form: {e}", "invalid_multipart") from None
    fields: dict = {}
    images: list[Image.Image] = []
    mask = None
    limit = request.app.state.settings.max_upload_bytes
    try:
        for name, value in form.multi_items():
            if name not in _FORM_FIELDS | _FILE_FIELDS:
                raise ApiError(400, f"Unknown parameter: '{name}'.", "unknown_parameter", param=name)
            if name in _FILE_FIELDS:
                if not isinstance(value, UploadFile):
                    raise ApiError(400, f"'{name}' must be a file upload", "invalid_value", param=name)
                data = await value.read()
                if len(data) > limit:
                    raise ApiError(
                        413,
                        f"'{name}' is larger than the upload limit of {limit:,} bytes",
                        "file_too_large",
                        param=name,
                    )
                try:
                    img = Image.open(io.BytesIO(data))
                    img.load()
                except (UnidentifiedImageError, OSError):
                    raise ApiError(
                        400,
                        f"'{name}' is not a PNG, JPEG or WebP image",
                        "invalid_image",
                        param=name,
                    ) from None
                if name == "mask":
                    mask = img
                else:
                    images.append(img)
            else:
                if isinstance(value, UploadFile):
                    raise ApiError(400, f"'{name}' must be a text field", "invalid_value", param=name)
                fields[name] = value
    finally:
        await form.close()  # uploads are spooled to temporary files
    return fields, images, mask


def _body_from_form(fields: dict, need_prompt: bool) -> tuple[GenerationBody, float | None]:
    strength = fields.pop("strength", None)
    fields.pop("input_fidelity", None)  # an OpenAI hint with no meaning for these models
    if not need_prompt:
        fields.setdefault("prompt", "x")  # replaced by the caller
    for k in ("stream",):
        if k in fields:
            fields[k] = str(fields[k]).lower() in ("1", "true", "yes")
    try:
        body = GenerationBody(**fields)
    except Exception as e:
        errs: list = getattr(e, "errors", lambda: [])()
        param = str(errs[0]["loc"][0]) if errs else None
        msg = errs[0]["msg"] if errs else str(e)
        raise ApiError(400, f"Invalid value for '{param}': {msg}.", "invalid_value", param=param) from None
    try:
        s = float(strength) if strength is not None else None
    except ValueError:
        raise ApiError(400, "strength must be a number in (0, 1]", "invalid_value", param="strength") from None
    return body, s


def _one_image(images: list[Image.Image]) -> Image.Image:
    if not images:
        raise ApiError(400, "Missing required parameter: 'image'.", "missing_required_parameter", param="image")
    if len(images) > 1:
        raise ApiError(
            400,
            "Limner edits one image per request; send a single 'image'.",
            "invalid_value",
            param="image",
        )
    return images[0]


@router.post(
    "/edits",
    response_model=ImagesResponse,
    response_model_exclude_none=True,
    summary="Edit an image: repaint where the mask is transparent, or all of it",
    responses={200: _stream_doc("image_edit")},
    openapi_extra=_multipart_schema(with_prompt=True, with_mask=True),
)
async def create_edit(request: Request, key: Key):
    fields, images, mask = await _read_form(request)
    body, strength = _body_from_form(fields, need_prompt=True)
    image = _one_image(images)
    if mask is not None:
        if mask.size != image.size:
            raise ApiError(
                400,
                f"mask is {mask.size[0]}x{mask.size[1]} but image is {image.size[0]}x{image.size[1]}; they must match",
                "invalid_mask",
                param="mask",
            )
        if mask.mode not in ("RGBA", "LA", "PA") and "transparency" not in mask.info:
            raise ApiError(
                400,
                "mask must have an alpha channel: its transparent pixels mark the area to edit",
                "invalid_mask",
                param="mask",
            )
        mask = mask.convert("RGBA")
    req = _engine_request(
        body,
        image=image.convert("RGB"),
        mask=mask,
        strength=strength if strength is not None else (1.0 if mask is not None else 0.8),
    )
    if body.stream:
        return await run_in_threadpool(_stream, request, key, req, body, "edits")
    result = await run_in_threadpool(_run, request, key, req, body, "edits")
    return _respond(request, key, body, result)


@router.post(
    "/variations",
    response_model=ImagesResponse,
    response_model_exclude_none=True,
    summary="Variations of an image (its embedded Limner prompt, when it has one, guides them)",
    openapi_extra=_multipart_schema(with_prompt=False, with_mask=False),
)
async def create_variation(request: Request, key: Key):
    fields, images, _ = await _read_form(request)
    for field in ("prompt", "stream", "partial_images", "negative_prompt", "moderation"):
        if field in fields:
            raise ApiError(400, f"Unknown parameter: '{field}'.", "unknown_parameter", param=field)
    body, strength = _body_from_form(fields, need_prompt=False)
    image = _one_image(images)
    meta = {}
    if image.format == "PNG":
        buf = io.BytesIO()
        image.save(buf, format="PNG", pnginfo=_pnginfo(image))
        meta = read_metadata(buf.getvalue())
    body.prompt = meta.get("prompt") or "an image"
    req = _engine_request(body, image=image.convert("RGB"), strength=strength if strength is not None else 0.6)
    result = await run_in_threadpool(_run, request, key, req, body, "variations")
    return _respond(request, key, body, result)


def _pnginfo(image: Image.Image):
    from PIL import PngImagePlugin

    info = PngImagePlugin.PngInfo()
    for k, v in getattr(image, "text", {}).items():
        info.add_text(k, v)
    return info
