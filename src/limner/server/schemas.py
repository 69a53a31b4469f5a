"""The Images API's bodies and responses (OpenAI's shapes, plus the engine's own parameters under
the same names). Bounds come from the engine's request, so the API and the engine agree."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from limner.engine.request import MAX_N, MAX_PROMPT_CHARS, MAX_STEPS

# the API's quality as a multiple of the model's default steps (20 steps: low 10, high 30)
QUALITY_STEPS = {"low": 0.5, "medium": 1.0, "standard": 1.0, "auto": 1.0, "high": 1.5, "hd": 1.5}


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
    background: Literal["opaque", "transparent"] = "opaque"
    output_format: Literal["png", "jpeg", "webp"] = "png"
    quality: str = "auto"
    size: str
    resized_from: str | None = Field(
        None, description="The model's own size, when the size policy resized its images to `size` (Limner)."
    )


class GenerationBody(BaseModel):
    """The OpenAI parameters Limner supports, plus the engine's own under the same names. Types
    are strict, as OpenAI's are: ``n: "2"`` or ``n: true`` is a 400, not a 2 or a 1."""

    model_config = ConfigDict(extra="forbid", strict=True)
    prompt: str = Field(min_length=1, max_length=MAX_PROMPT_CHARS)
    model: str | None = Field(None, max_length=200)
    n: int = Field(1, ge=1, le=MAX_N)
    size: str | None = Field(None, max_length=20, description="WxH, or 'auto' for the model's native size.")
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
    negative_prompt: str = Field("", max_length=MAX_PROMPT_CHARS)
    num_inference_steps: int | None = Field(None, ge=1, le=MAX_STEPS)
    guidance_scale: float | None = Field(None, ge=0, le=30)
    sampler: str | None = Field(None, max_length=40)
    loras: dict[str, float] | None = Field(
        None,
        max_length=16,
        description="LoRA adapter → scale, from those models.toml lists for the model; omitted: its defaults; {}: none.",
    )
    typography: Literal["auto", "glyph", "off"] = Field(
        "auto",
        description="Quoted text: set exactly (auto), drawn by the model from a glyph canvas (glyph), or neither.",
    )


def usage(prompt: str, images: list, seconds: float) -> UsageInfo:
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
