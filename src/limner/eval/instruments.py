"""What ``limner eval`` measures with: the evaluators (caption and shape), the skin-tone reader, the
text encoder, the corpus features and signatures for Fréchet distance and near copies — loaded once."""

from __future__ import annotations

import platform
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from limner.engine.compute import on_compute
from limner.eval import metrics as M
from limner.eval.evaluator import Evaluator
from limner.eval.tone import ToneReader
from limner.model.text import TextEncoder, Tokenizer


@dataclass
class Instruments:
    evaluator: Evaluator
    evaluator_path: Path
    shape: Evaluator  # the colour-blind evaluator of shape fidelity
    shape_path: Path
    tone_reader: ToneReader
    tone_reader_path: Path
    encoder: TextEncoder
    tokenizer: Tokenizer
    train_signatures: np.ndarray  # (N, D) copy signatures of the training images
    copy_threshold: float
    val_images: np.ndarray  # (V, 64, 64, 3) uint8
    val_captions: list[str]
    train_images: np.ndarray
    train_captions: list[str]


def default_evaluator_path() -> Path:
    from limner.engine.registry import weights_dir

    return weights_dir() / "evaluator.safetensors"


def default_shape_evaluator_path() -> Path:
    from limner.engine.registry import weights_dir

    return weights_dir() / "shape-evaluator.safetensors"


def default_tone_reader_path() -> Path:
    from limner.engine.registry import weights_dir

    return weights_dir() / "skin-tone-reader.safetensors"


def machine_name() -> str:
    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    gpu = torch.cuda.get_device_name(0) if torch.cuda.is_available() else "no GPU"
    return f"{cpu}, {torch.get_num_threads()} threads, {gpu}"


@on_compute
def pooled_text(instr: Instruments, texts: list[str]) -> torch.Tensor:
    out = []
    for i in range(0, len(texts), 256):
        t = instr.tokenizer(texts[i : i + 256])
        with torch.no_grad(), torch.autocast("cpu", dtype=torch.bfloat16):
            out.append(instr.encoder(t.ids, t.mask)[1].float())
    return torch.cat(out)


def calibrate_copies(train_images: np.ndarray, signatures: np.ndarray, n: int = 300, seed: int = 0) -> float:
    """Similarity above which an image counts as a near copy: the 5th percentile of the
    similarity between training images and altered copies of them (±5 % brightness, pixel noise
    σ = 4), so 95 % of such copies are caught. Positions are not shifted: a memorised image comes
    back on the same pixel grid, and a one-pixel shift of a sharp 64 px icon already looks like
    another drawing to a thumbnail."""
    rng = np.random.default_rng(seed)
    idx = rng.choice(len(train_images), size=min(n, len(train_images)), replace=False)
    sims = []
    for i in idx:
        img = train_images[i].astype(np.float32) * rng.uniform(0.95, 1.05) + rng.normal(0, 4, train_images[i].shape)
        sig = M.copy_signature(np.clip(img, 0, 255).astype(np.uint8))
        sims.append(float(sig @ signatures[i]))
    return float(np.percentile(sims, 5))


@on_compute
def load_instruments(
    corpus: Path,
    evaluator_path: Path | None = None,
    shape_evaluator_path: Path | None = None,
    tone_reader_path: Path | None = None,
) -> Instruments:
    from limner.data.trainset import TrainSet

    path = evaluator_path or default_evaluator_path()
    if not Path(path).exists():
        raise FileNotFoundError(f"evaluator weights {path} not found: run `limner train-evaluator` first")
    shape_path = shape_evaluator_path or default_shape_evaluator_path()
    if not Path(shape_path).exists():
        raise FileNotFoundError(
            f"shape-evaluator weights {shape_path} not found: run `limner train-evaluator --grey` first"
        )
    tone_path = tone_reader_path or default_tone_reader_path()
    if not Path(tone_path).exists():
        raise FileNotFoundError(f"skin-tone reader {tone_path} not found: run `limner calibrate-tones` first")
    evaluator, _ = Evaluator.load(path)
    shape, _ = Evaluator.load(shape_path)
    if shape.cfg.colour:
        raise ValueError(
            f"{shape_path} sees colour: the shape evaluator is trained with `limner train-evaluator --grey`"
        )
    train = TrainSet.load(Path(corpus) / "trainset-64-train.npz")
    val = TrainSet.load(Path(corpus) / "trainset-64-val.npz")
    train_images = train.images.permute(0, 2, 3, 1).numpy()
    val_images = val.images.permute(0, 2, 3, 1).numpy()
    cache = Path(corpus) / "eval-signatures-32rgb.npy"
    if cache.exists() and len(np.load(cache, mmap_mode="r")) == len(train_images):
        sigs = np.load(cache)
    else:
        sigs = np.stack([M.copy_signature(im) for im in train_images])
        np.save(cache, sigs)
    return Instruments(
        evaluator,
        Path(path),
        shape,
        Path(shape_path),
        ToneReader.load(tone_path),
        Path(tone_path),
        TextEncoder.load(),
        Tokenizer(),
        sigs,
        calibrate_copies(train_images, sigs),
        val_images,
        [c[0] for c in val.captions],
        train_images,
        [c[0] for c in train.captions],
    )
