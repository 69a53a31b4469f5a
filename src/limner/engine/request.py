"""What a caller asks for and what it gets back: the one request type every entry point builds.

Parameter names follow the OpenAI Images API and diffusers: ``prompt``, ``negative_prompt``,
``n``, ``size``, ``seed``, ``num_inference_steps``, ``guidance_scale``, ``model``.
"""

from __future__ import annotations

import io
import math
import random
import re
import threading
from collections.abc import Callable, Collection
from dataclasses import dataclass, field
from typing import Protocol

from PIL import ExifTags, Image

from limner.errors import InvalidRequest

MAX_PROMPT_CHARS = 2000
# C0/C1 control characters other than tab and line breaks, and the bidirectional overrides that
# make stored text display as something else (U+202A–202E, U+2066–2069)
CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f\u202a-\u202e\u2066-\u2069]")
MAX_N = 10
MAX_STEPS = 200
MAX_LORA_SCALE = 10.0
MAX_SEED = 2**63 - 1


@dataclass
class Progress:
    """One sampling step of one request: ``step`` of ``total``; ``previews`` are optional
    low-resolution images of the current estimate, one per image of the request."""

    step: int
    total: int
    previews: list[Image.Image] | None = None


@dataclass
class GenerationRequest:
    prompt: str
    negative_prompt: str = ""
    n: int = 1
    size: str | None = None  # "WxH"; None = the model's native size
    seed: int | None = None  # image i gets seed + i; None draws one
    num_inference_steps: int | None = None  # None = the model's default
    steps_scale: float = 1.0  # without num_inference_steps: this multiple of the model's default (the API's quality)
    guidance_scale: float | None = None
    model: str | None = None  # None = the default model
    sampler: str | None = None
    loras: dict[str, float] | None = None  # LoRA adapter name → scale; None = the model's defaults
    image: Image.Image | None = None  # image-to-image / inpainting source
    mask: Image.Image | None = None  # white (or alpha 0) = repaint; needs ``image``
    strength: float | None = None  # how much of the source to repaint (1 = all); None: 1 with a mask, else 0.8
    priority: int = 0  # higher runs first when the engine is busy (Image Creator boosts)
    previews: bool = False  # attach low-resolution previews to progress events
    typography: str = "auto"  # quoted text: "auto" (glyph canvas + exact setting), "glyph", "off"
    background: str = "opaque"  # "transparent": drawn on a plain background, then cut out (engine/matting.py)
    on_progress: Callable[[Progress], None] | None = field(default=None, repr=False, compare=False)
    cancel: threading.Event = field(default_factory=threading.Event, repr=False, compare=False)

    def validate(self) -> None:
        """Raise InvalidRequest naming the parameter, before any work starts."""
        if not isinstance(self.prompt, str) or not self.prompt.strip():
            raise InvalidRequest("prompt must be a non-empty string", param="prompt")
        if len(self.prompt) > MAX_PROMPT_CHARS:
            raise InvalidRequest(f"prompt is longer than {MAX_PROMPT_CHARS} characters", param="prompt")
        if not isinstance(self.negative_prompt, str):
            raise InvalidRequest("negative_prompt must be a string", param="negative_prompt")
        for param, text in (("prompt", self.prompt), ("negative_prompt", self.negative_prompt)):
            if found := CONTROL.search(text):
                raise InvalidRequest(
                    f"{param} contains the control character U+{ord(found.group()):04X}; remove it", param=param
                )
        if not isinstance(self.n, int) or isinstance(self.n, bool) or not 1 <= self.n <= MAX_N:
            raise InvalidRequest(f"n must be an integer from 1 to {MAX_N}", param="n")
        if self.size is not None:
            parse_size(self.size)
        if self.seed is not None and (
            not isinstance(self.seed, int) or isinstance(self.seed, bool) or not 0 <= self.seed <= MAX_SEED
        ):
            raise InvalidRequest("seed must be an integer from 0 to 2**63 - 1", param="seed")
        if self.num_inference_steps is not None and (
            not isinstance(self.num_inference_steps, int) or not 1 <= self.num_inference_steps <= MAX_STEPS
        ):
            raise InvalidRequest(
                f"num_inference_steps must be an integer from 1 to {MAX_STEPS}",
                param="num_inference_steps",
            )
        if (
            isinstance(self.steps_scale, bool)
            or not isinstance(self.steps_scale, int | float)
            or not 0 < self.steps_scale <= 4
        ):
            raise InvalidRequest("steps_scale must be a number above 0 and at most 4", param="steps_scale")
        if self.guidance_scale is not None and (
            not isinstance(self.guidance_scale, int | float) or not 0 <= self.guidance_scale <= 30
        ):
            raise InvalidRequest("guidance_scale must be a number from 0 to 30", param="guidance_scale")
        if self.loras is not None and (
            not isinstance(self.loras, dict)
            or not all(isinstance(k, str) and _is_scale(v) for k, v in self.loras.items())
        ):
            raise InvalidRequest(
                f"loras must map adapter names to scales from {-MAX_LORA_SCALE:g} to {MAX_LORA_SCALE:g}",
                param="loras",
            )
        if self.background not in ("opaque", "transparent"):
            raise InvalidRequest("background must be 'opaque' or 'transparent'", param="background")
        if self.strength is not None and not 0 < self.strength <= 1:
            raise InvalidRequest("strength must be in (0, 1]", param="strength")
        if self.mask is not None and self.image is None:
            raise InvalidRequest("a mask needs an image to edit", param="mask")
        from limner.typography.pipeline import check_request_text

        check_request_text(self.prompt, self.typography)

    def seeds(self) -> list[int]:
        """One seed per image; drawn once (and then fixed) when the caller gave none."""
        if self.seed is None:
            self.seed = random.SystemRandom().randrange(2**32)
        return [self.seed + i for i in range(self.n)]


def default_strength(req: GenerationRequest) -> float:
    """The strength of an edit when the caller names none — one default for every door: an
    inpainting repaints its masked area whole (1), an image-to-image keeps a fifth of its source."""
    if req.strength is not None:
        return req.strength
    return 1.0 if req.mask is not None else 0.8


def _is_scale(v: object) -> bool:
    return isinstance(v, int | float) and not isinstance(v, bool) and math.isfinite(v) and abs(v) <= MAX_LORA_SCALE


def common_settings(req: GenerationRequest, defaults: dict, loras: Collection[str] = ()) -> dict:
    """What every backend resolves the same way: mode, steps, guidance, strength, and the LoRA
    adapters among ``loras`` (those the model has) that the request, or else the model's defaults,
    asks for."""
    mode = "inpaint" if req.mask is not None else ("img2img" if req.image is not None else "text2img")
    wanted = defaults.get("loras", {}) if req.loras is None else req.loras
    for name in wanted:
        if name not in loras:
            has = f"it has {', '.join(sorted(loras))}" if loras else "it has none"
            raise InvalidRequest(f"unknown LoRA adapter {name!r} for this model; {has}", param="loras")
    return {
        "mode": mode,
        "num_inference_steps": req.num_inference_steps
        or max(1, min(MAX_STEPS, math.floor(defaults["num_inference_steps"] * req.steps_scale + 0.5))),
        "guidance_scale": defaults["guidance_scale"] if req.guidance_scale is None else float(req.guidance_scale),
        "strength": default_strength(req) if mode != "text2img" else 1.0,
        "loras": {name: float(scale) for name, scale in sorted(wanted.items())},
    }


def image_parameters(
    req: GenerationRequest, settings: dict, seed: int, model: str, backend: str, sampler: str, text: list[str]
) -> dict:
    """What the PNG metadata records about one image: enough to make it again."""
    from limner.version import __version__

    lora = {"loras": settings["loras"]} if settings.get("loras") else {}  # recorded only when used
    return {
        "prompt": req.prompt,
        "negative_prompt": req.negative_prompt,
        "model": model,
        "version": __version__,
        "seed": seed,
        "num_inference_steps": settings["num_inference_steps"],
        "guidance_scale": settings["guidance_scale"],
        "sampler": sampler,
        "size": settings["size"],
        "mode": settings["mode"],
        "strength": settings["strength"],
        "backend": backend,
        "typography": req.typography,
        "text": text,
        **lora,
    }


def parse_size(size: str) -> tuple[int, int]:
    try:
        w, h = (int(v) for v in size.lower().split("x"))
    except (ValueError, AttributeError):
        raise InvalidRequest(f"size must look like '256x256', got {size!r}", param="size") from None
    if not (8 <= w <= 4096 and 8 <= h <= 4096):
        raise InvalidRequest(f"size {size!r} is out of range", param="size")
    return w, h


class Stamp(Protocol):
    """Signs an image's encodings (``limner.provenance.Stamp``: a C2PA manifest)."""

    def sign(self, data: bytes, fmt: str) -> bytes: ...


@dataclass
class GeneratedImage:
    image: Image.Image
    seed: int
    prompt: str
    model: str
    parameters: dict  # everything needed to make it again (what the metadata chunks record)
    revised_prompt: str | None = None  # what the model read of the prompt, when it could not read all of it
    stamp: Stamp | None = field(default=None, repr=False, compare=False)  # set by whoever records provenance

    def png_bytes(self) -> bytes:
        return self.encode("png")

    def encode(self, fmt: str = "png", quality: int | None = None) -> bytes:
        """The one encoder every door uses. PNG keeps the metadata chunks; JPEG and WebP carry the
        same parameters in EXIF UserComment (where AUTOMATIC1111-style readers look for them).
        With a ``stamp``, the encoding is then signed (the A1111 text stays, outside the hash's
        exclusions but inside what the signature covers)."""
        from limner.engine.metadata import a1111_parameters, png_with_metadata

        if fmt == "png":
            data = png_with_metadata(self.image, self.parameters)
        elif fmt in ("jpeg", "webp"):
            exif = Image.Exif()
            # UserComment lives in the Exif sub-IFD (where readers such as sd-parsers look), not in IFD0
            exif.get_ifd(ExifTags.IFD.Exif)[ExifTags.Base.UserComment] = b"UNICODE\x00" + a1111_parameters(
                self.parameters
            ).encode("utf-16-be")
            buf = io.BytesIO()
            img = self.image.convert("RGB") if fmt == "jpeg" else self.image  # WebP keeps an alpha channel
            img.save(buf, format=fmt.upper(), quality=quality or 90, exif=exif)
            data = buf.getvalue()
        else:
            raise InvalidRequest("output_format must be png, jpeg or webp", param="output_format")
        return self.stamp.sign(data, fmt) if self.stamp is not None else data


@dataclass
class ModelInfo:
    """What a model is and can do, as /v1/models and ``limner models`` show it."""

    name: str
    backend: str
    path: str
    sizes: list[str]
    modes: list[str]
    parameters: int
    defaults: dict
    description: str = ""
    loras: list[str] = field(default_factory=list)  # the LoRA adapters a request may name
