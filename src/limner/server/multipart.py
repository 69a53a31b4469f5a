"""The multipart form of ``/v1/images/edits`` and ``/variations``: its fields are
``GenerationBody``'s (one source for names and bounds) plus ``strength``; its files are read as
bytes within the upload limit and decoded only after the request is admitted."""

from __future__ import annotations

import json
from dataclasses import dataclass

from fastapi import Request
from PIL import Image
from pydantic import ValidationError
from starlette.datastructures import UploadFile
from starlette.exceptions import HTTPException as StarletteHTTPException

from limner.errors import InvalidRequest, TooLarge
from limner.server.schemas import GenerationBody
from limner.server.uploads import read_image

EXTRA_FIELDS = {"strength", "input_fidelity"}  # input_fidelity: an OpenAI hint with no meaning here
FILE_FIELDS = {"image", "image[]", "mask"}
PROMPT_FIELDS = ("prompt", "negative_prompt", "moderation", "stream", "partial_images")  # edits only
JSON_FIELDS = {"loras": '{"ink": 0.8}'}  # object-valued parameters: JSON text in a form; an example
MAX_JSON_FIELD = 4096  # characters; 16 adapter names and scales fit many times over


@dataclass
class Upload:
    """An uploaded file, still undecoded."""

    field: str
    data: bytes

    def decode(self, request: Request) -> Image.Image:
        return read_image(self.data, param=self.field, max_pixels=request.app.state.settings.max_upload_pixels)


@dataclass
class Form:
    fields: dict[str, str]
    images: list[Upload]
    mask: Upload | None

    def one_image(self) -> Upload:
        """The single ``image`` (counted before anything is decoded)."""
        if not self.images:
            raise InvalidRequest(
                "Missing required parameter: 'image'.", code="missing_required_parameter", param="image"
            )
        if len(self.images) > 1:
            raise InvalidRequest(
                "Limner edits one image per request; send a single 'image'.", code="invalid_value", param="image"
            )
        return self.images[0]


async def read_form(request: Request) -> Form:
    """The form's text fields, and its files as bytes (each within the upload limit)."""
    try:
        form = await request.form(max_files=4, max_fields=40)
    except StarletteHTTPException:  # the body limit: 413
        raise
    except Exception as e:  # malformed multipart
        raise InvalidRequest(f"could not read the multipart form: {e}", code="invalid_multipart") from None
    out = Form({}, [], None)
    limit = request.app.state.settings.max_upload_bytes
    try:
        for name, value in form.multi_items():
            if name not in set(GenerationBody.model_fields) | EXTRA_FIELDS | FILE_FIELDS:
                raise InvalidRequest(f"Unknown parameter: '{name}'.", code="unknown_parameter", param=name)
            if name not in FILE_FIELDS:
                if isinstance(value, UploadFile):
                    raise InvalidRequest(f"'{name}' must be a text field", code="invalid_value", param=name)
                out.fields[name] = value
                continue
            if not isinstance(value, UploadFile):
                raise InvalidRequest(f"'{name}' must be a file upload", code="invalid_value", param=name)
            if (value.size or 0) > limit:
                raise TooLarge(
                    f"'{name}' is larger than the upload limit of {limit:,} bytes", code="file_too_large", param=name
                )
            upload = Upload("image" if name == "image[]" else name, await value.read())
            if name == "mask":
                out.mask = upload
            else:
                out.images.append(upload)
    finally:
        await form.close()  # uploads are spooled to temporary files
    return out


def body_from_form(form: dict[str, str], need_prompt: bool) -> tuple[GenerationBody, float | None]:
    """The body (form values are text: converted, then checked against the same bounds as JSON)
    and ``strength``."""
    fields: dict[str, object] = {k: v for k, v in form.items() if k not in EXTRA_FIELDS}
    for name, example in JSON_FIELDS.items():
        if name in form:
            fields[name] = _json_field(name, form[name], example)
    strength = form.get("strength")
    if not need_prompt:
        fields.setdefault("prompt", "x")  # replaced by the caller
    try:
        body = GenerationBody.model_validate(fields, strict=False)
    except ValidationError as e:
        err = e.errors()[0]
        param = str(err["loc"][0]) if err["loc"] else None
        raise InvalidRequest(f"Invalid value for '{param}': {err['msg']}.", code="invalid_value", param=param) from None
    try:
        s = float(strength) if strength is not None else None
    except ValueError:
        raise InvalidRequest("strength must be a number in (0, 1]", code="invalid_value", param="strength") from None
    return body, s


def _json_field(name: str, text: str, example: str) -> object:
    """A form field holding JSON, bounded before it is parsed (deep nesting is refused too)."""
    wrong = InvalidRequest(
        f"'{name}' must be a JSON object in a form field, such as {example}", code="invalid_value", param=name
    )
    if len(text) > MAX_JSON_FIELD:
        raise wrong
    try:
        return json.loads(text)
    except (ValueError, RecursionError):
        raise wrong from None


def openapi(with_prompt: bool, with_mask: bool) -> dict:
    """The form as OpenAPI shows it, generated from ``GenerationBody``."""
    schema = GenerationBody.model_json_schema()
    props: dict = {k: v for k, v in schema["properties"].items() if with_prompt or k not in (*PROMPT_FIELDS, "prompt")}
    for name, example in JSON_FIELDS.items():
        props[name] = {"type": "string", "description": f"{props[name].get('description', '')} As JSON: {example}."}
    props["image"] = {"type": "string", "format": "binary", "description": "The image to edit (PNG, WebP or JPEG)."}
    props["strength"] = {"type": "number", "exclusiveMinimum": 0, "maximum": 1}
    required = ["image", "prompt"] if with_prompt else ["image"]
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
