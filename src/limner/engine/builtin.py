"""The built-in backend: Limner's own model (denoiser + upsampler + MiniLM), on CPU or GPU.

One call renders a batch of compatible requests:
  1. encode prompts and negative prompts with the frozen text encoder; for a model with exemplar
     channels, look each prompt up in the exemplar database that ships with it (plus the images
     users put in its ``exemplars/`` folder) and draw the match as a blurred exemplar
  2. draw each image's starting noise from its own seed (batching never changes an image)
  3. for image-to-image, start part-way along the schedule from the noised source; for
     inpainting, pin the unmasked area of every x̂₀ to the source
  4. sample at the base resolution with classifier-free guidance
  5. upsample ×4 (with the glyph canvas), and for inpainting paste the source back outside the mask
"""

from __future__ import annotations

import json
from collections import OrderedDict
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from limner.engine.backend import Batch
from limner.engine.request import (
    GeneratedImage,
    GenerationRequest,
    ModelInfo,
    common_settings,
    image_parameters,
    parse_size,
)
from limner.engine.tones import named_tone, without_tone
from limner.errors import Cancelled, CheckpointError, InvalidRequest
from limner.model.checkpoint import load_denoiser, load_upsampler, weight_files
from limner.model.exemplars import ExemplarDB, render
from limner.model.flow import add_noise
from limner.model.invariance import batch_invariant
from limner.model.sampling import SAMPLERS, cfg_denoiser, flow_sigmas
from limner.model.text import TextEncoder, Tokenizer
from limner.model.upsampler import Upsampler
from limner.typography.pipeline import Prepared, finish, prepare

# what a checkpoint that records no sampling settings gets; ``guidance_interval`` is the σ range
# where guidance applies (model/sampling.cfg_denoiser), ``shift`` the schedule's time shift,
# ``sigmas`` a schedule of its own (one noise level per step, from high to low, 0 implied after
# the last; ``sampling.json`` holds a fitted one), ``tone_guidance`` how hard a prompt's skin tone
# is guided (0: off)
DEFAULTS = {
    "num_inference_steps": 20,
    "guidance_scale": 4.0,
    "sampler": "euler",
    "shift": 1.0,
    "guidance_interval": (0.0, 1.0),
    "sigmas": (),  # none: the shifted even schedule (model/sampling.flow_sigmas)
    "tone_guidance": 0.0,  # weight of the contrast with the prompt without its skin tone (engine/tones.py)
}
TEXT_CACHE = 64  # encoded texts kept (≈ 75 kB each)
SAMPLING_FILE = "sampling.json"  # beside the weights: settings measured after training, over the checkpoint's


def to_tensor(img: Image.Image, size: int) -> torch.Tensor:
    """PIL → (3, size, size) in [-1, 1]."""
    arr = np.asarray(img.convert("RGB").resize((size, size), Image.Resampling.LANCZOS), dtype=np.float32)
    return torch.from_numpy(arr).permute(2, 0, 1) / 127.5 - 1


def mask_tensor(mask: Image.Image, size: int) -> torch.Tensor:
    """(1, size, size) with 1 where the image is to be repainted: white pixels of an L/RGB mask,
    or alpha-0 pixels of an RGBA mask (the OpenAI convention)."""
    if mask.mode in ("RGBA", "LA", "PA"):
        m = 255 - np.asarray(mask.getchannel("A").resize((size, size), Image.Resampling.NEAREST), dtype=np.float32)
    else:
        m = np.asarray(mask.convert("L").resize((size, size), Image.Resampling.NEAREST), dtype=np.float32)
    return torch.from_numpy((m > 127).astype(np.float32))[None]


def to_images(x: torch.Tensor) -> list[Image.Image]:
    arr = ((x.float().clamp(-1, 1) + 1) * 127.5).round().byte().permute(0, 2, 3, 1).cpu().numpy()
    return [Image.fromarray(a) for a in arr]


class LimnerBackend:
    """A Limner weights folder: ``denoiser.safetensors`` (or its shards) and optionally
    ``upsampler.safetensors``, ``exemplars.npz`` (the retrieval database) and an ``exemplars/``
    folder of the user's own images; ``exemplars`` names another such folder."""

    kind = "limner"

    def __init__(
        self,
        name: str,
        path: Path,
        device: str = "auto",
        defaults: dict | None = None,
        exemplars: str | None = None,
        **_: object,
    ):
        self.name = name
        self.path = Path(path)
        self.device = torch.device(
            "cuda" if device == "auto" and torch.cuda.is_available() else ("cpu" if device == "auto" else device)
        )
        denoiser_path = self.path / "denoiser.safetensors" if self.path.is_dir() else self.path
        # Inference runs in bfloat16 weights (not autocast): no per-call weight casts, and AMX on CPUs
        self.dtype = torch.bfloat16
        self.denoiser, meta = load_denoiser(denoiser_path)
        # each image is what it would be alone, whatever shares its batch (model/invariance.py)
        batch_invariant(self.denoiser.to(self.device, self.dtype))
        up_path = (self.path / "upsampler.safetensors") if self.path.is_dir() else None
        self.upsampler: Upsampler | None = None
        if up_path is not None and up_path.exists():
            self.upsampler, _ = load_upsampler(up_path)
            # channels-last convolutions: the same pixels, a third less time on the 2-core CPU
            self.upsampler.to(self.device, self.dtype)
            batch_invariant(self.upsampler.to(memory_format=torch.channels_last))  # type: ignore[call-overload]
        self.meta = meta
        self.defaults = {**DEFAULTS, **meta.get("sampling", {}), **self._sampling_file(), **(defaults or {})}
        self.defaults["guidance_interval"] = tuple(self.defaults["guidance_interval"])
        self.defaults["sigmas"] = tuple(self.defaults["sigmas"])
        self.encoder = TextEncoder.load(invariant=True).to(self.device)
        self._text_cache: OrderedDict[str, tuple[torch.Tensor, torch.Tensor, torch.Tensor]] = OrderedDict()
        self.tokenizer = Tokenizer()
        self.base = self.denoiser.cfg.resolution
        self.full = self.base * (self.upsampler.cfg.factor if self.upsampler else 1)
        self.exemplars = self._load_exemplars(exemplars) if self.denoiser.cfg.exemplar_channels else None

    def _sampling_file(self) -> dict:
        """Sampling settings measured for these weights after training (``sampling.json``);
        they win over those the checkpoint recorded, a models.toml's ``defaults`` over both."""
        path = (self.path if self.path.is_dir() else self.path.parent) / SAMPLING_FILE
        return self.read_sampling_file(path) if path.exists() else {}

    @staticmethod
    def read_sampling_file(path: Path) -> dict:
        """A ``sampling.json``'s settings, checked as a models.toml's defaults are; CheckpointError
        names the file and what is wrong."""
        try:
            found = json.loads(path.read_text())
        except (OSError, ValueError) as e:
            raise CheckpointError(f"{path} is not readable JSON ({e}); fix or remove it") from None
        unknown = set(found) - set(DEFAULTS) if isinstance(found, dict) else {"(not an object)"}
        if unknown:
            raise CheckpointError(f"{path} has unknown settings {sorted(unknown)}; known: {', '.join(DEFAULTS)}")
        from limner.engine.registry import check_defaults  # the registry imports this module

        try:  # the same types and bounds as a models.toml's defaults
            found = check_defaults(found, lambda key: f"{path}: settings")
        except InvalidRequest as e:
            raise CheckpointError(e.message) from None
        if found.get("sampler", "euler") not in SAMPLERS:
            raise CheckpointError(f"{path}: unknown sampler {found['sampler']!r}; choose from {', '.join(SAMPLERS)}")
        return found

    def _load_exemplars(self, extra: str | None) -> ExemplarDB:
        """The shipped database, extended with the user's images (``exemplars/`` beside the
        weights, and the folder named by the ``exemplars`` option)."""
        folder = self.path if self.path.is_dir() else self.path.parent
        shipped = folder / "exemplars.npz"
        db = (
            ExemplarDB.load(shipped)
            if shipped.exists()
            else ExemplarDB(torch.zeros(0, 4, 16, 16, dtype=torch.uint8), torch.zeros(0, 384), [], [])
        )
        for user in (folder / "exemplars", Path(extra) if extra else None):
            if user is not None and user.is_dir():
                db.add_folder(user, self._embed)
        return db

    def _encode(self, texts: list[str]) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """(states, pooled, mask) of each text. The encoder is batch-invariant, so a text's rows do
        not depend on what else it was encoded with: the last TEXT_CACHE texts are kept (the empty
        negative prompt of nearly every request; a prompt drawn again with other seeds)."""
        cache = self._text_cache
        missing = [t for t in dict.fromkeys(texts) if t not in cache]
        if missing:
            tokens = self.tokenizer(missing, length=self.tokenizer.max_tokens)
            with torch.autocast(self.device.type, dtype=torch.bfloat16):
                states, pooled = self.encoder(tokens.ids.to(self.device), tokens.mask.to(self.device))
            for i, text in enumerate(missing):
                cache[text] = (states[i].float(), pooled[i].float(), tokens.mask[i].to(self.device))
        rows = [cache[t] for t in texts]
        for text in texts:
            cache.move_to_end(text)
        while len(cache) > TEXT_CACHE:
            cache.popitem(last=False)
        return tuple(torch.stack([row[k] for row in rows]) for k in range(3))  # type: ignore[return-value]

    def _embed(self, texts: list[str]) -> torch.Tensor:
        tokens = self.tokenizer(texts, length=self.tokenizer.max_tokens)
        with torch.no_grad(), torch.autocast(self.device.type, dtype=torch.bfloat16):
            return self.encoder(tokens.ids.to(self.device), tokens.mask.to(self.device))[1].float().cpu()

    def info(self) -> ModelInfo:
        sizes = [f"{self.full}x{self.full}"] + ([f"{self.base}x{self.base}"] if self.upsampler else [])
        params = sum(p.numel() for p in self.denoiser.parameters())
        if self.upsampler:
            params += sum(p.numel() for p in self.upsampler.parameters())
        return ModelInfo(
            self.name,
            self.kind,
            str(self.path),
            sizes,
            ["text2img", "img2img", "inpaint"],
            params,
            {
                k: list(v) if isinstance(v, tuple) else v
                for k, v in self.defaults.items()
                if k not in ("shift", "sigmas")
            },
            f"Limner {self.meta.get('preset', '')} model, {self.meta.get('steps', '?')} training steps",
        )

    # -- request handling ---------------------------------------------------------------------

    def resolve(self, req: GenerationRequest) -> dict:
        """The request's effective settings; raises InvalidRequest for what this model can't do."""
        size = req.size or f"{self.full}x{self.full}"
        w, h = parse_size(size)
        if w != h or w not in (self.full, self.base):
            sizes = ", ".join(self.info().sizes)
            raise InvalidRequest(f"model {self.name} makes {sizes} images, not {size}", param="size")
        sampler = req.sampler or self.defaults["sampler"]
        if sampler not in SAMPLERS:
            raise InvalidRequest(f"unknown sampler {sampler!r}; choose from {', '.join(SAMPLERS)}", param="sampler")
        return {"size": f"{w}x{h}", "side": w, "sampler": sampler, **common_settings(req, self.defaults)}

    def fitted(self, steps: int, strength: float) -> bool:
        """Whether the model's own schedule (``sigmas``) serves a draw of ``steps`` steps: only at
        its own step count and from pure noise; anything else gets the shifted even schedule."""
        return len(self.defaults["sigmas"]) == steps and strength >= 1.0

    def schedule(self, steps: int, strength: float, device: torch.device) -> torch.Tensor:
        """The ``steps + 1`` noise levels a draw goes through, ending at 0."""
        if self.fitted(steps, strength):
            return torch.tensor([*self.defaults["sigmas"], 0.0], device=device)
        return flow_sigmas(steps, self.defaults["shift"], start=strength, device=device)

    def batch_key(self, req: GenerationRequest) -> tuple:
        """Requests with equal keys can share one sampling loop."""
        r = self.resolve(req)
        return (r["side"], r["num_inference_steps"], r["sampler"], r["mode"], r["strength"])

    @torch.inference_mode()  # no autograd bookkeeping at all: less overhead per op than no_grad
    def generate(self, requests: list[GenerationRequest]) -> list[list[GeneratedImage] | BaseException]:
        """Render a batch of compatible requests; a cancelled request gets a Cancelled back."""
        settings = [self.resolve(r) for r in requests]
        s0 = settings[0]
        dev, r = self.device, self.base
        owners: list[int] = []
        prompts: list[str] = []
        negatives: list[str] = []
        seeds: list[int] = []
        scales: list[float] = []
        inits: list[Image.Image] = []
        masks: list[Image.Image] = []
        preps: list[Prepared] = []
        for i, (req, st) in enumerate(zip(requests, settings, strict=True)):
            for seed in req.seeds():
                owners.append(i)
                prompts.append(req.prompt)
                negatives.append(req.negative_prompt or "")
                seeds.append(seed)
                scales.append(st["guidance_scale"])
                preps.append(prepare(req.prompt, seed, self.full, req.typography))
                if req.image is not None:
                    inits.append(req.image)
                if req.mask is not None:
                    masks.append(req.mask)
        b = len(prompts)

        # 1. text; for tone guidance also each toned prompt without its tone
        toned = [i for i, p in enumerate(prompts) if named_tone(p)] if self.defaults["tone_guidance"] > 0 else []
        states, pooled, tmask = self._encode(prompts + negatives + [without_tone(prompts[i]) for i in toned])
        glyph_full = None
        glyphs = [p.glyph for p in preps]
        if any(g is not None for g in glyphs):
            glyph_full = torch.stack(
                [
                    torch.zeros(1, self.full, self.full)
                    if g is None
                    else torch.from_numpy(
                        np.asarray(g.convert("L").resize((self.full, self.full)), dtype=np.float32) / 255
                    )[None]
                    for g in glyphs
                ]
            ).to(dev)  # (B, 1, F, F)
        glyph_base = (
            None if glyph_full is None else torch.nn.functional.interpolate(glyph_full, size=(r, r), mode="area")
        )
        cond = {
            "text": states[:b],
            "text_mask": tmask[:b],
            "pooled": pooled[:b],
            "glyph": glyph_base,
        }
        uncond = {
            "text": states[b : 2 * b],
            "text_mask": tmask[b : 2 * b],
            "pooled": pooled[b : 2 * b],
            "glyph": glyph_base,
        }
        exemplar_labels: list[str | None] = [None] * b
        if self.exemplars is not None:
            # the prompt's exemplar guides the conditional half only; scenes that spell text
            # take their layout from the glyph canvas and get none (as in training)
            thumbs, rows = self.exemplars.lookup(pooled[:b], seeds)
            spelled = torch.tensor([g is not None for g in glyphs])
            thumbs = thumbs * (~spelled)[:, None, None, None].to(thumbs.dtype)
            cond["exemplar"] = render(thumbs.to(dev), r)
            exemplar_labels = [
                self.exemplars.labels[i] if i >= 0 and not sp else None
                for i, sp in zip(rows, spelled.tolist(), strict=True)
            ]

        # 2. noise, one generator per image
        noise = torch.stack([torch.randn(3, r, r, generator=torch.Generator().manual_seed(s)) for s in seeds]).to(dev)
        sigmas = self.schedule(s0["num_inference_steps"], s0["strength"], dev)

        # 3. image-to-image / inpainting
        x_init = torch.stack([to_tensor(im, r) for im in inits]).to(dev) if inits else None
        m_base = torch.stack([mask_tensor(m, r) for m in masks]).to(dev) if masks else None  # (B, 1, r, r)
        x = noise * sigmas[0] if x_init is None else add_noise(x_init, noise, sigmas[0].expand(len(noise)))

        def net(x: torch.Tensor, s: torch.Tensor, **kw: torch.Tensor) -> torch.Tensor:
            return self.denoiser(x, s, **kw).float()

        scale = torch.tensor(scales, device=dev).view(-1, 1, 1, 1)
        contrast = None
        if toned:
            t = slice(2 * b, None)
            weight = torch.full((len(toned), 1, 1, 1), float(self.defaults["tone_guidance"]), device=dev)
            contrast = (
                {"text": states[t], "text_mask": tmask[t], "pooled": pooled[t]},
                torch.tensor(toned, device=dev),
                weight,
            )
        guided = cfg_denoiser(
            net, cond, uncond, scale if bool((scale != 1).any()) else 1.0, self.defaults["guidance_interval"], contrast
        )

        def denoise(x: torch.Tensor, s: torch.Tensor) -> torch.Tensor:
            if m_base is None or x_init is None:
                return guided(x, s)
            return m_base * guided(x, s) + (1 - m_base) * x_init  # inpainting: the rest is the source

        # 4. sample, reporting each step to each request
        batch = Batch(requests)
        total = len(sigmas) - 1

        def callback(i: int, x: torch.Tensor, x0: torch.Tensor) -> None:
            def previews(j: int) -> list[Image.Image]:
                return to_images(x0[[k for k, o in enumerate(owners) if o == j]])

            if batch.step(i + 1, total, previews):
                raise Cancelled("cancelled by the caller")

        sample = SAMPLERS[s0["sampler"]]
        x0 = sample(denoise, x, sigmas, callback=callback)

        # 5. upsample, paste back
        if s0["side"] == self.full and self.upsampler:
            out = self.upsampler(x0.contiguous(memory_format=torch.channels_last), glyph_full).float()
        else:
            out = x0
        images = [finish(im, prep) for im, prep in zip(to_images(out), preps, strict=True)]  # exact text
        if s0["mode"] == "inpaint":  # outside the mask the source stays exactly as it was
            side = out.shape[-1]
            images = [
                Image.composite(
                    im,
                    src.convert("RGB").resize((side, side), Image.Resampling.LANCZOS),
                    Image.fromarray((mask_tensor(m, side)[0].numpy() * 255).astype(np.uint8)),
                )
                for im, src, m in zip(images, inits, masks, strict=True)
            ]

        for k, (img, owner) in enumerate(zip(images, owners, strict=True)):
            if owner in batch.cancelled:
                continue
            req, st = requests[owner], settings[owner]
            params = image_parameters(req, st, seeds[k], self.name, self.kind, st["sampler"], preps[k].parsed.spans)
            fitted = self.fitted(st["num_inference_steps"], st["strength"])
            for key in ("guidance_interval", "shift", "tone_guidance"):  # settings a request cannot name
                if self.defaults[key] != DEFAULTS[key] and not (key == "shift" and fitted):
                    value = self.defaults[key]
                    params[key] = list(value) if isinstance(value, tuple) else value
            if fitted:  # its own levels, not the shifted even schedule
                params["sigmas"] = list(self.defaults["sigmas"])
            if self.exemplars is not None:
                params["exemplar"] = exemplar_labels[k]  # which picture it re-drew, if any
            read = self.tokenizer.read_part(req.prompt)  # None: the encoder read it all
            batch.add(owner, GeneratedImage(img, seeds[k], req.prompt, self.name, params, revised_prompt=read))
        return batch.results()


def is_limner_weights(path: Path) -> bool:
    path = Path(path)
    try:
        weight_files(path / "denoiser.safetensors" if path.is_dir() else path)
        return True
    except CheckpointError:
        return False


def describe(path: Path) -> dict:
    """Metadata of a weights folder without loading the network (for `limner models`)."""
    from limner.model.checkpoint import read_weights

    _, meta = read_weights(Path(path) / "denoiser.safetensors")
    return {k: json.loads(v) for k, v in meta.items() if k not in ("format", "kind")}
