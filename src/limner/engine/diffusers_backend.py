"""Any local diffusers checkpoint as a backend: a pipeline folder (``save_pretrained`` layout:
Stable Diffusion 1.x/2.x, SDXL, SD3, FLUX, SANA, PixArt …) or a single-file checkpoint
(``.safetensors``/``.ckpt``, with ``config`` naming a local pipeline folder for its layout).
Nothing is fetched from a hub: every load passes ``local_files_only``.

Text-to-image always; image-to-image and inpainting when diffusers can derive those pipelines
from the loaded one (``AutoPipelineFor*.from_pipe``). Each image gets its own
``torch.Generator`` seeded with its seed, so batching never changes an image.
"""

from __future__ import annotations

import inspect
import os
from pathlib import Path
from typing import Any

import torch
from PIL import Image

from limner.engine import compute
from limner.engine.builtin import ModelInfo
from limner.engine.request import (
    GeneratedImage,
    GenerationRequest,
    Progress,
    common_settings,
    image_parameters,
    parse_size,
)
from limner.errors import Cancelled, CheckpointError, InvalidRequest
from limner.typography.pipeline import finish, prepare

DTYPES = {"float32": torch.float32, "float16": torch.float16, "bfloat16": torch.bfloat16}


def pick_device(device: str) -> str:
    if device != "auto":
        return device
    if torch.cuda.is_available():
        return "cuda"
    if getattr(torch.backends, "mps", None) and torch.backends.mps.is_available():
        return "mps"
    return "cpu"


class DiffusersBackend:
    kind = "diffusers"

    def __init__(
        self,
        name: str,
        path: Path,
        device: str = "auto",
        dtype: str = "auto",
        cpu_offload: bool = False,
        config: str | None = None,
        defaults: dict | None = None,
        **_: object,
    ):
        os.environ.setdefault("HF_HUB_OFFLINE", "1")  # belt and braces: never reach for a hub
        import diffusers

        self.name, self.path = name, Path(path)
        self.device = pick_device(device)
        if dtype == "auto":
            dtype = "float16" if self.device in ("cuda", "mps") else "float32"
        if dtype not in DTYPES:
            raise InvalidRequest(f"dtype must be one of {', '.join(DTYPES)}", param="dtype")
        self.dtype = DTYPES[dtype]
        try:
            if self.path.is_dir():
                pipe = diffusers.DiffusionPipeline.from_pretrained(self.path, dtype=self.dtype, local_files_only=True)
            else:
                cls = (
                    diffusers.StableDiffusionXLPipeline
                    if "xl" in self.path.name.lower()
                    else diffusers.StableDiffusionPipeline
                )
                pipe = cls.from_single_file(str(self.path), dtype=self.dtype, config=config, local_files_only=True)
        except Exception as e:
            raise CheckpointError(f"cannot load a diffusers pipeline from {self.path}: {e}") from e
        pipe.set_progress_bar_config(disable=True)
        if cpu_offload and self.device == "cuda":
            pipe.enable_model_cpu_offload()
        else:
            pipe.to(self.device)
        self.text2img = pipe
        self.img2img = self._derive(diffusers.AutoPipelineForImage2Image, pipe)
        self.inpaint = self._derive(diffusers.AutoPipelineForInpainting, pipe)
        self.defaults = {"num_inference_steps": 30, "guidance_scale": 5.0, **(defaults or {})}
        denoiser = getattr(pipe, "unet", None) or getattr(pipe, "transformer", None)
        sample = getattr(getattr(denoiser, "config", None), "sample_size", 64)
        sample = sample[0] if isinstance(sample, list | tuple) else sample
        self.scale = getattr(pipe, "vae_scale_factor", 8)
        self.native = int(sample) * self.scale
        self.params = sum(
            p.numel() for m in pipe.components.values() if isinstance(m, torch.nn.Module) for p in m.parameters()
        )

    @staticmethod
    def _derive(auto: Any, pipe: Any) -> Any:
        try:
            derived = auto.from_pipe(pipe)
            derived.set_progress_bar_config(disable=True)
            return derived
        except Exception:  # the architecture has no such pipeline: the capability is absent
            return None

    def info(self) -> ModelInfo:
        modes = ["text2img"] + (["img2img"] if self.img2img else []) + (["inpaint"] if self.inpaint else [])
        return ModelInfo(
            self.name,
            self.kind,
            str(self.path),
            [f"{self.native}x{self.native}"],
            modes,
            self.params,
            dict(self.defaults),
            f"diffusers {type(self.text2img).__name__}",
        )

    def resolve(self, req: GenerationRequest) -> dict:
        size = req.size or f"{self.native}x{self.native}"
        w, h = parse_size(size)
        step = self.scale * 2
        if w % step or h % step:
            raise InvalidRequest(
                f"model {self.name} needs width and height divisible by {step}, not {size}",
                param="size",
            )
        common = common_settings(req, self.defaults)
        mode = common["mode"]
        if (mode == "img2img" and self.img2img is None) or (mode == "inpaint" and self.inpaint is None):
            raise InvalidRequest(f"model {self.name} cannot do {mode}", param="image")
        if req.sampler:
            raise InvalidRequest(
                "diffusers models use the scheduler saved with the pipeline; omit sampler",
                param="sampler",
            )
        return {"size": f"{w}x{h}", "width": w, "height": h, **common}

    def batch_key(self, req: GenerationRequest) -> tuple:
        r = self.resolve(req)
        return (
            r["width"],
            r["height"],
            r["num_inference_steps"],
            r["mode"],
            r["strength"],
            r["guidance_scale"],
        )

    def generate(self, requests: list[GenerationRequest]) -> list[list[GeneratedImage] | BaseException]:
        settings = [self.resolve(r) for r in requests]
        s0 = settings[0]
        owners, prompts, negatives, seeds, images, masks = [], [], [], [], [], []
        for i, req in enumerate(requests):
            for seed in req.seeds():
                owners.append(i)
                prompts.append(req.prompt)
                negatives.append(req.negative_prompt or "")
                seeds.append(seed)
                if req.image is not None:
                    images.append(req.image.convert("RGB").resize((s0["width"], s0["height"])))
                if req.mask is not None:
                    masks.append(_white_is_repaint(req.mask).resize((s0["width"], s0["height"])))
        pipe = {"text2img": self.text2img, "img2img": self.img2img, "inpaint": self.inpaint}[s0["mode"]]
        gen_device = "cpu" if self.device == "mps" else self.device
        kwargs: dict[str, Any] = {
            "prompt": prompts,
            "negative_prompt": negatives,
            "num_inference_steps": s0["num_inference_steps"],
            "guidance_scale": s0["guidance_scale"],
            "width": s0["width"],
            "height": s0["height"],
            "generator": [torch.Generator(gen_device).manual_seed(s) for s in seeds],
            "output_type": "pil",
        }
        if s0["mode"] != "text2img":
            kwargs.update(image=images, strength=s0["strength"])
        if s0["mode"] == "inpaint":
            kwargs["mask_image"] = masks
        cancelled: set[int] = set()

        def on_step(p: Any, i: int, t: Any, cb_kwargs: dict) -> dict:
            compute.between_steps()  # urgent short work (moderation) waits a step, not the batch
            for j, req in enumerate(requests):
                if req.cancel.is_set():
                    cancelled.add(j)
            if len(cancelled) == len(requests):
                p._interrupt = True
            for j, req in enumerate(requests):
                if req.on_progress and j not in cancelled:
                    req.on_progress(Progress(i + 1, s0["num_inference_steps"]))
            return cb_kwargs

        accepted = inspect.signature(pipe.__call__).parameters
        if "callback_on_step_end" in accepted:
            kwargs["callback_on_step_end"] = on_step
        kwargs = {k: v for k, v in kwargs.items() if k in accepted}
        with torch.inference_mode():
            result = pipe(**kwargs).images
        if len(cancelled) == len(requests):
            raise Cancelled("cancelled by the caller")
        out: list[list[GeneratedImage] | BaseException] = [[] for _ in requests]
        for k, (img, owner) in enumerate(zip(result, owners, strict=True)):
            if owner in cancelled:
                out[owner] = Cancelled("cancelled by the caller")
                continue
            req, st = requests[owner], settings[owner]
            prepared = prepare(req.prompt, seeds[k], max(img.size), req.typography)
            img = finish(img.convert("RGB"), prepared)
            if req.image is not None and req.mask is not None:  # inpainting: outside the mask, the source
                src = req.image.convert("RGB").resize(img.size)
                keep = _white_is_repaint(req.mask).resize(img.size).point(lambda v: 0 if v > 127 else 255)
                img = Image.composite(src, img.convert("RGB"), keep)
            sampler = type(pipe.scheduler).__name__
            params = image_parameters(req, st, seeds[k], self.name, self.kind, sampler, prepared.parsed.spans)
            lst = out[owner]
            assert isinstance(lst, list)
            lst.append(GeneratedImage(img.convert("RGB"), seeds[k], req.prompt, self.name, params))
        return out


def _white_is_repaint(mask: Image.Image) -> Image.Image:
    """Masks in Limner's convention (white, or alpha 0, = repaint) as an L image."""
    if mask.mode in ("RGBA", "LA", "PA"):
        return mask.getchannel("A").point(lambda a: 255 if a < 128 else 0)
    return mask.convert("L")
