"""Generation parameters inside the PNG: an AUTOMATIC1111-style ``parameters`` text chunk (so
existing prompt readers show it) and a ``limner`` chunk with the same facts as JSON."""

from __future__ import annotations

import io
import json

from PIL import Image, PngImagePlugin

SAMPLER_NAMES = {"euler": "Euler", "heun": "Heun", "dpmpp_2m": "DPM++ 2M"}


def a1111_parameters(p: dict) -> str:
    """Format as AUTOMATIC1111 does: prompt, optional negative line, then 'Key: value' pairs. The
    format is line-based, so line breaks inside the texts become spaces: a prompt must not be able
    to write a 'Negative prompt:' or 'Steps:' line of its own (the ``limner`` chunk keeps them)."""
    lines = [_one_line(p["prompt"])]
    if p.get("negative_prompt"):
        lines.append(f"Negative prompt: {_one_line(p['negative_prompt'])}")
    pairs = [
        ("Steps", p.get("num_inference_steps")),
        ("Sampler", SAMPLER_NAMES.get(p.get("sampler", ""), p.get("sampler"))),
        ("CFG scale", p.get("guidance_scale")),
        ("Seed", p.get("seed")),
        ("Size", p.get("size")),
        ("Model hash", p.get("model_hash")),
        ("Model", p.get("model")),
        (
            "Denoising strength",
            p.get("strength") if p.get("mode") in ("img2img", "inpaint") else None,
        ),
        ("Version", f"limner {p.get('version')}"),
    ]
    lines.append(", ".join(f"{k}: {v}" for k, v in pairs if v is not None))
    return "\n".join(lines)


def _one_line(text: str) -> str:
    return " ".join(text.splitlines())


def plain_png(image: Image.Image) -> bytes:
    """PNG with no text chunks: previews, stored masks, and the arena's images before the vote
    (nothing in the file may say which model made them)."""
    buf = io.BytesIO()
    image.save(buf, format="PNG")
    return buf.getvalue()


def png_with_metadata(image: Image.Image, parameters: dict) -> bytes:
    info = PngImagePlugin.PngInfo()
    info.add_text("parameters", a1111_parameters(parameters))
    info.add_text("limner", json.dumps(parameters, sort_keys=True))
    buf = io.BytesIO()
    image.save(buf, format="PNG", pnginfo=info)
    return buf.getvalue()


def read_metadata(png: bytes) -> dict:
    """The ``limner`` JSON chunk of a PNG ({} if absent)."""
    with Image.open(io.BytesIO(png)) as im:
        text = im.text.get("limner") if hasattr(im, "text") else None  # type: ignore[attr-defined]
    return json.loads(text) if text else {}
