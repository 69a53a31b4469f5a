"""Any local diffusers checkpoint as a backend: a pipeline folder (``save_pretrained`` layout:
Stable Diffusion 1.x/2.x, SDXL, SD3, FLUX, SANA, PixArt …, optionally a ``variant`` such as fp16)
or a single-file Stable Diffusion 1.x or SDXL checkpoint (``.safetensors``, with ``config`` naming
a local pipeline folder for its layout). Nothing is fetched from a hub: every load passes
``local_files_only``.

What diffusers users expect of a pipeline, per model in ``models.toml``: the scheduler
(``defaults.sampler``, a diffusers class name; per request ``sampler``), LoRA adapters (``loras``,
selected per request with their scales), CPU offload (``cpu_offload``). Text-to-image always;
image-to-image and inpainting when diffusers can derive those pipelines from the loaded one
(``AutoPipelineFor*.from_pipe``). Each image gets its own ``torch.Generator`` seeded with its
seed, and each call its own scheduler built from the saved config, so neither the batch nor the
call before changes an image. A request parameter the pipeline does not take is refused, never
dropped. diffusers itself (the ``diffusers`` extra) is imported only when a model loads.
"""

from __future__ import annotations

import inspect
import warnings
from pathlib import Path
from typing import Any, Literal

import torch
from PIL import Image

from limner.engine.backend import Batch
from limner.engine.builtin import to_images
from limner.engine.diffusers_files import inspect_files, pick_device, require_extra
from limner.engine.request import (
    GeneratedImage,
    GenerationRequest,
    ModelInfo,
    common_settings,
    image_parameters,
    parse_size,
)
from limner.errors import Cancelled, CheckpointError, InvalidRequest, LimnerError
from limner.typography.pipeline import finish, prepare

DTYPES = {"float32": torch.float32, "float16": torch.float16, "bfloat16": torch.bfloat16}
PREVIEW_SIDE = 128  # px: latents are shrunk to this size before the VAE decodes a preview
PREVIEWS_PER_RUN = 8  # the VAE decodes about this many previews per run; steps between show the last


class DiffusersBackend:
    kind = "diffusers"

    def __init__(
        self,
        name: str,
        path: Path,
        device: str = "auto",
        dtype: Literal["auto", "float32", "float16", "bfloat16"] = "auto",
        variant: str | None = None,
        cpu_offload: Literal["none", "model", "sequential"] = "none",
        config: Path | None = None,
        loras: dict[str, Path] | None = None,
        defaults: dict | None = None,
    ):
        self.name, self.path = name, Path(path)
        self.loras = dict(loras or {})
        layout = inspect_files(name, self.path, variant, config, self.loras)  # the one-line errors, before loading
        require_extra(name, *(["accelerate"] if cpu_offload != "none" else []))
        self.device = pick_device(device)
        if cpu_offload != "none" and not self.device.startswith("cuda"):
            raise LimnerError(f"model {name!r}: cpu_offload needs a CUDA device, and this one runs on {self.device}")
        if dtype == "auto":
            dtype = "float16" if self.device.startswith(("cuda", "mps")) else "float32"
        if dtype not in DTYPES:
            raise InvalidRequest(f"dtype must be one of auto, {', '.join(DTYPES)}", param="dtype")
        self.dtype = DTYPES[dtype]
        import diffusers

        try:
            if layout.single_file:
                cls = getattr(diffusers, layout.pipeline)
                pipe = cls.from_single_file(str(self.path), config=str(config), dtype=self.dtype, local_files_only=True)
            else:
                pipe = diffusers.DiffusionPipeline.from_pretrained(
                    self.path, dtype=self.dtype, variant=variant, local_files_only=True
                )
            with warnings.catch_warnings():  # peft warns at the second adapter of a model: several are the point
                warnings.filterwarnings("ignore", message="Already found a `peft_config` attribute")
                for lora, file in self.loras.items():
                    pipe.load_lora_weights(str(Path(file).parent), weight_name=Path(file).name, adapter_name=lora)
        except Exception as e:
            first = (str(e).strip().splitlines() or [type(e).__name__])[0]
            raise CheckpointError(f"cannot load a diffusers pipeline from {self.path}: {first}") from e
        pipe.set_progress_bar_config(disable=True)
        self.text2img = pipe
        self.img2img = self._derive(diffusers.AutoPipelineForImage2Image, pipe)
        self.inpaint = self._derive(diffusers.AutoPipelineForInpainting, pipe)
        if cpu_offload == "model":  # whole models move to the GPU in turn
            pipe.enable_model_cpu_offload(device=self.device)
        elif cpu_offload == "sequential":  # layer by layer: least memory, slowest
            pipe.enable_sequential_cpu_offload(device=self.device)
        else:
            pipe.to(self.device)
        self.scheduler_config = pipe.scheduler.config
        self.schedulers = {c.__name__: c for c in pipe.scheduler.compatibles} | {
            type(pipe.scheduler).__name__: type(pipe.scheduler)
        }
        self.defaults = {
            "num_inference_steps": 30,
            "guidance_scale": 5.0,
            "sampler": type(pipe.scheduler).__name__,
            **(defaults or {}),
        }
        if self.defaults["sampler"] not in self.schedulers:
            raise LimnerError(f"model {name!r}: sampler {self.defaults['sampler']!r} is not one of {self._choices()}")
        denoiser = getattr(pipe, "unet", None) or getattr(pipe, "transformer", None)
        sample: Any = getattr(pipe, "default_sample_size", None)
        sample = sample or getattr(getattr(denoiser, "config", None), "sample_size", None) or 64
        sample = sample[0] if isinstance(sample, list | tuple) else sample
        self.scale = getattr(pipe, "vae_scale_factor", 8)
        self.native = int(sample) * self.scale
        self.params = sum(
            p.numel() for m in pipe.components.values() if isinstance(m, torch.nn.Module) for p in m.parameters()
        )

    def _derive(self, auto: Any, pipe: Any) -> Any:
        try:  # from_pipe shares the modules; without dtype it would cast them to float32
            derived = auto.from_pipe(pipe, dtype=self.dtype)
        except Exception:  # the architecture has no such pipeline: the capability is absent
            return None
        derived.set_progress_bar_config(disable=True)
        return derived

    def _choices(self) -> str:
        return ", ".join(sorted(self.schedulers))

    def info(self) -> ModelInfo:
        modes = ["text2img"] + (["img2img"] if self.img2img else []) + (["inpaint"] if self.inpaint else [])
        lora = f"; LoRA adapters: {', '.join(self.loras)}" if self.loras else ""
        return ModelInfo(
            self.name,
            self.kind,
            str(self.path),
            [f"{self.native}x{self.native}"],
            modes,
            self.params,
            dict(self.defaults),
            f"diffusers {type(self.text2img).__name__}{lora}",
            sorted(self.loras),
        )

    def resolve(self, req: GenerationRequest) -> dict:
        """The request's effective settings; InvalidRequest for what this pipeline cannot do."""
        size = req.size or f"{self.native}x{self.native}"
        w, h = parse_size(size)
        step = self.scale * 2
        if w % step or h % step:
            raise InvalidRequest(
                f"model {self.name} needs width and height divisible by {step}, not {size}",
                param="size",
            )
        common = common_settings(req, self.defaults, self.loras)
        mode = common["mode"]
        pipe = {"text2img": self.text2img, "img2img": self.img2img, "inpaint": self.inpaint}[mode]
        if pipe is None:
            raise InvalidRequest(f"model {self.name} cannot do {mode}", param="image")
        sampler = req.sampler or self.defaults["sampler"]
        if sampler not in self.schedulers:
            raise InvalidRequest(
                f"model {self.name} cannot use sampler {sampler!r}; choose a diffusers scheduler from "
                f"{self._choices()}",
                param="sampler",
            )
        accepted = inspect.signature(pipe.__call__).parameters
        used = {
            "negative_prompt": bool(req.negative_prompt),
            "guidance_scale": req.guidance_scale is not None,
            "size": req.size is not None and mode == "text2img",
            "strength": mode != "text2img",
            "num_inference_steps": req.num_inference_steps is not None,
            "seed": True,  # every image is drawn with its own seeded generator: a pipeline must take one
        }
        takes = {"size": "width" in accepted and "height" in accepted, "seed": "generator" in accepted}
        for param, is_used in used.items():
            if is_used and not takes.get(param, param in accepted):
                omit = "it cannot draw a given seed" if param == "seed" else "omit it"
                raise InvalidRequest(f"model {self.name} ({type(pipe).__name__}) takes no {param}; {omit}", param=param)
        if req.negative_prompt and "true_cfg_scale" in accepted:  # FLUX: a negative prompt needs true CFG
            raise InvalidRequest(
                f"model {self.name} ({type(pipe).__name__}) uses a negative prompt only with true_cfg_scale, "
                "which Limner does not set; omit negative_prompt",
                param="negative_prompt",
            )
        transformer = getattr(getattr(pipe, "transformer", None), "config", None)
        distilled = getattr(transformer, "guidance_embeds", None)
        if req.guidance_scale is not None and "true_cfg_scale" in accepted and distilled is False:
            raise InvalidRequest(  # FLUX.1 schnell: guidance_scale feeds a guidance embedding it lacks
                f"model {self.name} ({type(pipe).__name__}) has no guidance embedding and ignores guidance_scale; "
                "omit it",
                param="guidance_scale",
            )
        return {"size": f"{w}x{h}", "width": w, "height": h, "sampler": sampler, **common}

    def batch_key(self, req: GenerationRequest) -> tuple:
        r = self.resolve(req)
        return (
            r["width"],
            r["height"],
            r["num_inference_steps"],
            r["mode"],
            r["strength"],
            r["guidance_scale"],
            r["sampler"],
            tuple(r["loras"].items()),
        )

    def generate(self, requests: list[GenerationRequest]) -> list[list[GeneratedImage] | BaseException]:
        """Render a batch of compatible requests; a cancelled request gets a Cancelled back.
        1. one prompt, negative prompt, seed and generator per image
        2. this call's scheduler and LoRA adapters
        3. the pipeline, reporting each step (with VAE-decoded previews every few steps)
        4. typography and, for inpainting, the source pasted back outside the mask"""
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

        # 2. a fresh scheduler for every call: diffusers' schedulers keep state between steps
        pipe.scheduler = self.schedulers[s0["sampler"]].from_config(self.scheduler_config)
        if self.loras and s0["loras"]:
            pipe.enable_lora()
            pipe.set_adapters(list(s0["loras"]), adapter_weights=list(s0["loras"].values()))
        elif self.loras:
            pipe.disable_lora()

        gen_device = "cpu" if self.device == "mps" else self.device
        kwargs: dict[str, Any] = {
            "prompt": prompts,
            "negative_prompt": negatives if any(negatives) else None,
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

        # 3. sample, reporting each step to each request (previews decoded every few steps, when asked for)
        batch = Batch(requests)
        wanted = [k for k, owner in enumerate(owners) if requests[owner].previews]
        shown: dict[int, Image.Image] = {}  # image row → its latest preview

        def on_step(p: Any, i: int, t: Any, cb_kwargs: dict) -> dict:
            total = getattr(p, "num_timesteps", None) or s0["num_inference_steps"]  # img2img runs fewer
            every = max(1, total // PREVIEWS_PER_RUN)
            due = bool(wanted) and "latents" in cb_kwargs and ((i + 1) % every == 0 or i + 1 == total)

            def previews(j: int) -> list[Image.Image] | None:
                nonlocal due
                if due:  # once per step, for every row that wants one
                    shown.update(zip(wanted, self._previews(p, cb_kwargs["latents"][wanted], s0), strict=False))
                    due = False
                rows = [k for k, o in enumerate(owners) if o == j]
                return [shown[k] for k in rows] if all(k in shown for k in rows) else None

            if batch.step(i + 1, total, previews):
                p._interrupt = True  # every request was cancelled: stop sampling
            return cb_kwargs

        accepted = inspect.signature(pipe.__call__).parameters
        if "callback_on_step_end" in accepted:
            kwargs["callback_on_step_end"] = on_step
            if wanted and "latents" in getattr(pipe, "_callback_tensor_inputs", ()):
                kwargs["callback_on_step_end_tensor_inputs"] = ["latents"]
        kwargs = {k: v for k, v in kwargs.items() if k in accepted}  # what resolve() let through but went unused
        with torch.inference_mode():
            result = pipe(**kwargs).images
        if batch.all_cancelled:
            raise Cancelled("cancelled by the caller")

        # 4. typography, inpainting's paste-back, parameters
        for k, (img, owner) in enumerate(zip(result, owners, strict=True)):
            if owner in batch.cancelled:
                continue
            req, st = requests[owner], settings[owner]
            prepared = prepare(req.prompt, seeds[k], max(img.size), req.typography)
            img = finish(img.convert("RGB"), prepared)
            if req.image is not None and req.mask is not None:  # inpainting: outside the mask, the source
                src = req.image.convert("RGB").resize(img.size)
                keep = _white_is_repaint(req.mask).resize(img.size).point(lambda v: 0 if v > 127 else 255)
                img = Image.composite(src, img.convert("RGB"), keep)
            params = image_parameters(req, st, seeds[k], self.name, self.kind, st["sampler"], prepared.parsed.spans)
            batch.add(owner, GeneratedImage(img.convert("RGB"), seeds[k], req.prompt, self.name, params))
        return batch.results()

    def _previews(self, pipe: Any, latents: torch.Tensor, s0: dict) -> list[Image.Image]:
        """The current latents as small images, decoded by the pipeline's own VAE."""
        vae = getattr(pipe, "vae", None)
        if latents.ndim == 3 and hasattr(pipe, "_unpack_latents"):  # FLUX packs 2×2 patches into tokens
            latents = pipe._unpack_latents(latents, s0["height"], s0["width"], self.scale)  # (B, C, h, w)
        if vae is None or latents.ndim != 4:
            return []
        h, w = latents.shape[-2:]
        side = max(1, PREVIEW_SIDE // self.scale)
        if max(h, w) > side:  # a preview needs no more than PREVIEW_SIDE pixels
            size = (max(1, round(h * side / max(h, w))), max(1, round(w * side / max(h, w))))
            latents = torch.nn.functional.interpolate(latents.float(), size=size, mode="area")
        cfg = vae.config
        z = latents / cfg.scaling_factor + (getattr(cfg, "shift_factor", None) or 0.0)
        decoded = vae.decode(z.to(dtype=vae.dtype), return_dict=False)[0]  # (B, 3, H, W) in [-1, 1]
        return to_images(decoded)


def _white_is_repaint(mask: Image.Image) -> Image.Image:
    """Masks in Limner's convention (white, or alpha 0, = repaint) as an L image."""
    if mask.mode in ("RGBA", "LA", "PA"):
        return mask.getchannel("A").point(lambda a: 255 if a < 128 else 0)
    return mask.convert("L")
