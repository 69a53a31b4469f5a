"""``POST /v1/images/verify``: what an image says about where it came from — its Content
Credentials (C2PA manifest: present, valid, tampered, its claims) and Limner's invisible
watermark (found, with what confidence). What a watermark resolves to (which key or account,
which model, when) is shown to operator keys only (``limner keys set ID --operator``)."""

from __future__ import annotations

import threading

from fastapi import APIRouter, Request
from pydantic import BaseModel, Field
from starlette.datastructures import UploadFile
from starlette.exceptions import HTTPException as StarletteHTTPException

from limner.errors import InvalidRequest, TooLarge
from limner.provenance import ledger
from limner.provenance.verify import verify
from limner.server import work
from limner.server.deps import Key
from limner.server.errors import ERROR_RESPONSES
from limner.server.uploads import read_image

router = APIRouter(prefix="/v1/images", tags=["images"], responses=ERROR_RESPONSES)


class ManifestOut(BaseModel):
    present: bool = Field(description="The file carries a C2PA manifest.")
    valid: bool = Field(description="Its signature and every hash check out.")
    tampered: bool = Field(description="A hash does not match: the image changed after it was signed.")
    trusted: bool = Field(description="The signer chains to a root this server trusts.")
    state: str | None = Field(None, description="c2pa's validation state: Trusted, Valid or Invalid.")
    failures: list[str] = Field(default_factory=list, description="Validation codes that failed.")
    signer: str | None = None
    claim_generator: str | None = None
    actions: list[dict] = Field(default_factory=list, description="c2pa.created / c2pa.edited … with their claims.")
    ingredients: list[str] = Field(default_factory=list, description="Titles of the images it was made from.")
    generator: dict | None = Field(None, description="Limner's own assertion: version and model.")
    error: str | None = None


class WatermarkOut(BaseModel):
    found: bool = Field(description="Limner's invisible watermark was found and its payload decoded.")
    confidence: float = Field(description="1 − the chance an unmarked image decodes this strongly (0 if not found).")
    pilot_z: float = Field(description="The watermark's synchronisation peak, in standard deviations.")
    resolves_to: dict | None = Field(
        None, description="Operator keys only: which key or account, which model and when the image was made."
    )


class VerifyResponse(BaseModel):
    format: str
    width: int
    height: int
    manifest: ManifestOut
    watermark: WatermarkOut


@router.post(
    "/verify",
    response_model=VerifyResponse,
    summary="Verify an image: its Content Credentials and Limner's invisible watermark",
    openapi_extra={
        "requestBody": {
            "required": True,
            "content": {
                "multipart/form-data": {
                    "schema": {
                        "type": "object",
                        "properties": {
                            "image": {
                                "type": "string",
                                "format": "binary",
                                "description": "The image to verify (PNG, JPEG or WebP).",
                            }
                        },
                        "required": ["image"],
                    }
                }
            },
        }
    },
)
async def verify_image(request: Request, key: Key) -> VerifyResponse:
    data = await _one_image(request)
    app = request.app

    def check() -> VerifyResponse:
        image = read_image(data, param="image", max_pixels=app.state.settings.max_upload_pixels)
        resolve = None
        if key.operator:

            def resolve(payload: int) -> dict | None:
                with app.state.db.session() as s:
                    return ledger.resolve(s, app.state.provenance.cipher, payload)

        report = verify(data, image, trusted_roots=app.state.provenance.trusted_roots(), resolve=resolve)
        return VerifyResponse.model_validate(report)

    return await work.run(request, check, threading.Event())


async def _one_image(request: Request) -> bytes:
    """The form's single ``image`` file, within the upload limit; any other field is an error."""
    try:
        form = await request.form(max_files=2, max_fields=4)
    except StarletteHTTPException:  # the body limit: 413
        raise
    except Exception as e:  # malformed multipart, or not multipart at all
        raise InvalidRequest(f"could not read the multipart form: {e}", code="invalid_multipart") from None
    limit = request.app.state.settings.max_upload_bytes
    try:
        items = form.multi_items()
        for name, _ in items:
            if name != "image":
                raise InvalidRequest(f"Unknown parameter: '{name}'.", code="unknown_parameter", param=name)
        files = [v for _, v in items]
        if not files:
            raise InvalidRequest(
                "Missing required parameter: 'image'.", code="missing_required_parameter", param="image"
            )
        if len(files) > 1:
            raise InvalidRequest("Send one 'image' per request.", code="invalid_value", param="image")
        upload = files[0]
        if not isinstance(upload, UploadFile):
            raise InvalidRequest("'image' must be a file upload", code="invalid_value", param="image")
        if (upload.size or 0) > limit:
            raise TooLarge(
                f"'image' is larger than the upload limit of {limit:,} bytes", code="file_too_large", param="image"
            )
        return await upload.read()
    finally:
        await form.close()
