"""What a diffusers model's files are, read without loading it: a pipeline folder's
``model_index.json``, its components and weight variants, a single file's header (which pipeline it
is), its LoRA files, the device it asks for and whether the ``diffusers`` extra is installed. The
registry's start-up check (``check_diffusers``) and the backend's loading both start here, so a
wrong ``models.toml`` entry is reported with what to do before anything heavy loads.
"""

from __future__ import annotations

import importlib.util
import json
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import torch

from limner.errors import LimnerError

if TYPE_CHECKING:
    from limner.engine.registry import ModelSpec

EXTRA = 'pip install "limner[diffusers]"'
# single files: what their keys say they are → the pipeline that loads them
SINGLE_FILE_PIPELINES = {
    "conditioner.embedders.1.": "StableDiffusionXLPipeline",  # SDXL base: its second (OpenCLIP) text encoder
    "cond_stage_model.": "StableDiffusionPipeline",  # SD 1.x (CLIP) and 2.x (OpenCLIP)
}


@dataclass(frozen=True)
class Layout:
    """What a model's files are, read without loading them."""

    pipeline: str  # the diffusers pipeline class
    scheduler: str  # the scheduler class saved with it
    single_file: bool
    folder: Path  # the pipeline folder (for a single file: its config folder)

    def describe(self, variant: str | None, loras: dict) -> str:
        parts = ["single file" if self.single_file else "pipeline folder"]
        parts += [f"{variant} variant"] if variant else []
        parts += [f"LoRA {', '.join(loras)}"] if loras else []
        return f"diffusers {self.pipeline} ({', '.join(parts)}), scheduler {self.scheduler}"


def _installed(module: str) -> bool:
    if module in sys.modules:
        return sys.modules[module] is not None  # None: an import that is known to fail
    return importlib.util.find_spec(module) is not None


def require_extra(name: str, *also: str) -> None:
    """One line naming the extra when a module it installs is missing."""
    missing = [m for m in ("diffusers", "transformers", *also) if not _installed(m)]
    if missing:
        raise LimnerError(
            f"model {name!r} needs the diffusers extra (missing: {', '.join(missing)}): {EXTRA}",
            code="missing_extra",
        )


def pick_device(device: str) -> str:
    """``auto`` → cuda, else mps, else cpu; an explicit device must exist on this machine."""
    mps = getattr(torch.backends, "mps", None) is not None and torch.backends.mps.is_available()
    if device == "auto":
        return "cuda" if torch.cuda.is_available() else ("mps" if mps else "cpu")
    if device.startswith("cuda") and not torch.cuda.is_available():
        raise LimnerError(f"device {device!r}: torch sees no CUDA device here; use device = 'cpu' or 'auto'")
    if device == "mps" and not mps:
        raise LimnerError("device 'mps': torch sees no Apple GPU here; use device = 'cpu' or 'auto'")
    if device != "cpu" and not device.startswith(("cuda", "mps")):
        raise LimnerError(f"device must be 'auto', 'cpu', 'cuda', 'cuda:N' or 'mps', not {device!r}")
    return device


def check_diffusers(spec: ModelSpec) -> str:
    """The registry's start-up check: everything that can be known without loading the model."""
    options = spec.options
    loras = options.get("loras") or {}
    layout = inspect_files(spec.name, spec.path, options.get("variant"), options.get("config"), loras)
    offload = options.get("cpu_offload", "none")
    device = pick_device(options.get("device", "auto"))
    if offload != "none" and not device.startswith("cuda"):
        raise LimnerError(f"model {spec.name!r}: cpu_offload needs a CUDA device, and this one runs on {device}")
    if offload != "none":
        require_extra(spec.name, "accelerate")
    for lora in spec.defaults.get("loras", {}):
        if lora not in loras:
            raise LimnerError(f"model {spec.name!r}: defaults.loras names {lora!r}, which loras does not list")
    sampler = spec.defaults.get("sampler")
    if sampler is not None:
        choices = scheduler_choices(layout)
        if sampler not in choices:
            raise LimnerError(f"model {spec.name!r}: sampler {sampler!r} is not one of {', '.join(choices)}")
    return layout.describe(options.get("variant"), loras)


def inspect_files(name: str, path: Path, variant: str | None, config: Path | None, loras: dict) -> Layout:
    """The model's layout from its files (headers and JSON only); raises LimnerError with what
    is wrong and what to do."""
    where = f"model {name!r}"
    require_extra(name, *(["peft"] if loras else []))
    for lora, file in loras.items():
        if not Path(file).is_file() or Path(file).suffix != ".safetensors":
            raise LimnerError(f"{where}: LoRA {lora!r} must be a .safetensors file, and {file} is not one")
    if path.is_dir():
        if config is not None:
            raise LimnerError(f"{where}: config is for single-file checkpoints; {path} is a folder, remove config")
        index = _model_index(path, where)
        for component, entry in index.items():
            if isinstance(entry, list) and entry[0] is not None and not (path / component).is_dir():
                raise LimnerError(f"{where}: {path} lacks the {component}/ folder its model_index.json lists")
        variants = _variants(path)
        if variant is not None and variant not in variants:
            raise LimnerError(f"{where}: {path} holds no {variant!r} weights (files named *.{variant}.safetensors)")
        if variant is None and variants and None not in variants:
            only = ", ".join(sorted(v for v in variants if v))
            raise LimnerError(f"{where}: {path} holds only {only} weights; set variant = {only.split(', ')[0]!r}")
        return Layout(index["_class_name"], _scheduler_of(index, where), False, path)
    if path.suffix != ".safetensors":
        raise LimnerError(
            f"{where}: {path} is neither a pipeline folder nor a .safetensors file (pickled .ckpt files can run "
            "code when loaded: convert it to .safetensors)"
        )
    if variant is not None:
        raise LimnerError(f"{where}: variant applies to pipeline folders; a single file has one set of weights")
    pipeline = _single_file_pipeline(path, where)
    if config is None:
        raise LimnerError(
            f"{where}: a single-file checkpoint needs config = a local {pipeline} folder for its layout "
            "(model_index.json, the configs and the tokenizers; its weights are not read)"
        )
    index = _model_index(Path(config), where)
    if index["_class_name"] != pipeline:
        raise LimnerError(
            f"{where}: {path} is a {pipeline} checkpoint but config {config} holds a {index['_class_name']}"
        )
    return Layout(pipeline, _scheduler_of(index, where), True, Path(config))


def _model_index(folder: Path, where: str) -> dict:
    try:
        index = json.loads((folder / "model_index.json").read_text())
    except FileNotFoundError:
        raise LimnerError(
            f"{where}: {folder} has no model_index.json: not a diffusers pipeline folder (save one with "
            "save_pretrained, or point path at a .safetensors single file)"
        ) from None
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise LimnerError(f"{where}: {folder}/model_index.json is not valid JSON ({e})") from None
    if not isinstance(index, dict) or not isinstance(index.get("_class_name"), str):
        raise LimnerError(f"{where}: {folder}/model_index.json names no pipeline class (_class_name)")
    import diffusers

    if not hasattr(diffusers, index["_class_name"]):
        raise LimnerError(f"{where}: this diffusers ({diffusers.__version__}) has no {index['_class_name']}")
    return index


def _scheduler_of(index: dict, where: str) -> str:
    entry = index.get("scheduler")
    if not (isinstance(entry, list) and len(entry) == 2 and isinstance(entry[1], str)):
        raise LimnerError(f"{where}: model_index.json names no scheduler")
    return entry[1]


def _variants(folder: Path) -> set[str | None]:
    """The weight variants in a pipeline folder: ``unet/diffusion_pytorch_model.fp16.safetensors``
    is fp16, ``…model.safetensors`` (or a shard ``…model-00001-of-00002.safetensors``) is None."""
    found: set[str | None] = set()
    for file in folder.glob("*/*"):
        if file.suffix in (".safetensors", ".bin"):
            parts = file.name.split(".")
            found.add(parts[1] if len(parts) == 3 else None)
    return found


def _single_file_pipeline(path: Path, where: str) -> str:
    from safetensors import safe_open

    try:
        with safe_open(str(path), "pt") as f:  # reads the header only
            keys = list(f.keys())
    except Exception as e:
        raise LimnerError(f"{where}: {path} is not a readable .safetensors file ({e})") from None
    for prefix, pipeline in SINGLE_FILE_PIPELINES.items():
        if any(k.startswith(prefix) for k in keys) and any(k.startswith("model.diffusion_model.") for k in keys):
            return pipeline
    raise LimnerError(
        f"{where}: {path} is not a Stable Diffusion 1.x/2.x or SDXL single file; load other models from "
        "a pipeline folder (save_pretrained)"
    )


def scheduler_choices(layout: Layout) -> list[str]:
    """The scheduler saved with the pipeline and those diffusers lists as compatible with it."""
    import diffusers

    cls = getattr(diffusers, layout.scheduler, None)
    if cls is None:
        return [layout.scheduler]
    scheduler = cls.from_config(cls.load_config(layout.folder / "scheduler"))  # a config, no weights
    return sorted({c.__name__ for c in scheduler.compatibles} | {layout.scheduler})
