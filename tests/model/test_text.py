import pytest
import torch
import torch.nn.functional as F
from safetensors.torch import save_file

from limner.model.checkpoint import dequantize_int8, quantize_int8
from limner.model.text import MAX_TOKENS, WIDTH, TextEncoder, prune

CAPTIONS = [
    "a red apple",
    'A poster with the title "OPEN", bold lettering, on a red background',
    "thumbs up, dark skin tone, 3D render",
]


def encode(encoder: TextEncoder, tokenizer, texts: list[str], **kw):
    tokens = tokenizer(texts, **kw)
    with torch.no_grad():
        return encoder(tokens.ids, tokens.mask)


def test_tokenizer_lowercases_adds_specials_and_pads(tokenizer):
    tokens = tokenizer(["A Red Apple", "a red apple, 3d render"])
    assert torch.equal(tokens.ids[0, :5], tokenizer(["a red apple"]).ids[0])
    assert tokens.ids[0, 0] == 101 and tokens.ids[0, 4] == 102  # [CLS] a red apple [SEP]
    assert tokens.mask.sum(1).tolist() == [5, 8]  # "3d" is one word piece
    assert tokens.ids.shape == (2, 8) and (tokens.ids[0, 5:] == 0).all()
    assert tokenizer(["a red apple"], length=MAX_TOKENS).ids.shape == (1, MAX_TOKENS)
    long = tokenizer(["word " * 100])
    assert long.ids.shape == (1, MAX_TOKENS) and long.ids[0, -1] == 102


def test_pooled_embedding_of_a_red_apple_is_pinned(text_encoder, tokenizer):
    """Pinned from this implementation (which matches sentence-transformers, see the slow test):
    a change to the weights, the tokenizer or the forward pass shows up here."""
    states, pooled = encode(text_encoder, tokenizer, ["a red apple"])
    assert states.shape == (1, 5, WIDTH) and pooled.shape == (1, WIDTH)
    expected = [0.0040397, 0.0135969, -0.0428270, 0.0630144, -0.0444889, 0.0067350]
    torch.testing.assert_close(pooled[0, :6], torch.tensor(expected), atol=2e-6, rtol=0)
    assert pooled.norm() == pytest.approx(1.0)


def test_padding_changes_nothing_but_rounding_and_a_fixed_length_makes_rows_independent(text_encoder, tokenizer):
    _, alone = encode(text_encoder, tokenizer, CAPTIONS[:1])
    _, batched = encode(text_encoder, tokenizer, CAPTIONS)
    torch.testing.assert_close(batched[0], alone[0], atol=1e-5, rtol=0)
    # at a fixed length, and batch-invariant (as the engine loads it), a caption's numbers no
    # longer depend on the captions batched with it
    invariant = TextEncoder.load(invariant=True)
    _, fixed_alone = encode(invariant, tokenizer, CAPTIONS[:1], length=MAX_TOKENS)
    _, fixed_batched = encode(invariant, tokenizer, CAPTIONS, length=MAX_TOKENS)
    assert torch.equal(fixed_batched[0], fixed_alone[0])


@pytest.mark.slow
def test_matches_sentence_transformers_all_minilm_l6_v2(text_encoder, tokenizer):
    from sentence_transformers import SentenceTransformer

    from limner.model.text import wheel_dir

    reference = SentenceTransformer(str(wheel_dir()), device="cpu")
    texts = [*CAPTIONS, "", "an emoji of a cat with heart eyes 😻"]
    expected = torch.from_numpy(reference.encode(texts))
    states, pooled = encode(text_encoder, tokenizer, texts)
    torch.testing.assert_close(pooled, expected, atol=1e-5, rtol=0)
    tokens = reference.encode(texts[1:2], output_value="token_embeddings")[0]
    torch.testing.assert_close(states[1, : len(tokens)], tokens, atol=1e-4, rtol=0)


@pytest.fixture
def pruned(text_encoder, tokenizer, tmp_path):
    """The encoder pruned to the vocabulary of CAPTIONS, saved as-is and quantized."""
    sd = prune(text_encoder, tokenizer(CAPTIONS).ids)
    plain, small = tmp_path / "pruned.safetensors", tmp_path / "pruned-int8.safetensors"
    save_file(sd, str(plain))
    save_file(quantize_int8(sd, only=("layers.", "word.")), str(small))
    return sd, plain, small


def test_pruned_encoder_is_exact_on_its_vocabulary(text_encoder, tokenizer, pruned):
    sd, plain, _ = pruned
    used = torch.unique(tokenizer(CAPTIONS).ids)
    assert sd["word.weight"].shape == (len(set(used.tolist()) | {0, 100, 101, 102}), WIDTH)
    encoder = TextEncoder.load(plain)
    for full, small in zip(
        encode(text_encoder, tokenizer, CAPTIONS), encode(encoder, tokenizer, CAPTIONS), strict=True
    ):
        assert torch.equal(full, small)


def test_pruned_encoder_reads_unknown_words_as_unk(text_encoder, tokenizer, pruned):
    encoder = TextEncoder.load(pruned[1])
    tokens = tokenizer(["a red zebra"])
    unk = tokens.ids.clone()
    unk[0, 3] = 100  # "zebra" is not in CAPTIONS
    with torch.no_grad():
        _, got = encoder(tokens.ids, tokens.mask)
        _, expected = text_encoder(unk, tokens.mask)
    assert torch.equal(got, expected)


def test_quantized_pruned_encoder_round_trip_stays_within_cosine_0999(text_encoder, tokenizer, pruned):
    _, plain, small = pruned
    assert small.stat().st_size < 0.6 * plain.stat().st_size
    encoder = TextEncoder.load(small)
    full_states, full = encode(text_encoder, tokenizer, CAPTIONS)
    q_states, q = encode(encoder, tokenizer, CAPTIONS)
    assert F.cosine_similarity(q, full).min() > 0.999
    mask = tokenizer(CAPTIONS).mask
    assert F.cosine_similarity(q_states[mask], full_states[mask]).min() > 0.999


def test_dequantize_inverts_quantize_to_half_a_step(text_encoder):
    sd = {k: v for k, v in text_encoder.state_dict().items() if k.startswith("layers.0.")}
    q = quantize_int8(sd, only=("layers.", "word."))
    back = dequantize_int8(q)
    assert set(back) == set(sd)
    w = sd["layers.0.ff1.weight"]  # (1536, 384)
    assert q["layers.0.ff1.weight.int8"].dtype == torch.int8
    step = q["layers.0.ff1.weight.scale"].float().repeat_interleave(32, dim=-1).reshape(w.shape)
    # half a quantization step, plus the float16 rounding of the scale (127 steps × 2⁻¹¹)
    assert ((back["layers.0.ff1.weight"] - w).abs() <= step * (0.5 + 127 * 2**-11)).all()
    assert back["layers.0.ln1.weight"].dtype == torch.float16  # vectors stay float16
    torch.testing.assert_close(back["layers.0.ln1.weight"].float(), sd["layers.0.ln1.weight"], atol=0, rtol=2**-11)


def test_caption_cache_reencodes_only_the_captions_that_changed(text_encoder, tokenizer, tmp_path, monkeypatch):
    from limner.model.text import CaptionStore

    cache = tmp_path / "states.pt"
    first = CaptionStore(CAPTIONS, text_encoder, tokenizer, torch.device("cpu"), progress=False, cache=cache)
    encoded: list[int] = []
    forward = TextEncoder.forward

    def counting(self, ids, mask):
        encoded.append(ids.shape[0])
        return forward(self, ids, mask)

    monkeypatch.setattr(TextEncoder, "forward", counting)
    same = CaptionStore(CAPTIONS, text_encoder, tokenizer, torch.device("cpu"), progress=False, cache=cache)
    assert encoded == [] and torch.equal(same.states, first.states)
    changed = [CAPTIONS[0], CAPTIONS[1], "thumbs up, medium skin tone, 3D render"]
    store = CaptionStore(changed, text_encoder, tokenizer, torch.device("cpu"), progress=False, cache=cache)
    assert encoded == [1]  # the changed caption only
    monkeypatch.setattr(TextEncoder, "forward", forward)
    fresh = CaptionStore(changed, text_encoder, tokenizer, torch.device("cpu"), progress=False)
    assert torch.equal(store.states[:2], first.states[:2])  # kept rows: the cached numbers
    # the new row alone rounds a little differently from the three together (bf16)
    torch.testing.assert_close(store.states[2], fresh.states[2], atol=0.05, rtol=0.02)
    torch.testing.assert_close(store.pooled[2], fresh.pooled[2], atol=2e-3, rtol=0)


def test_a_caption_cache_without_keys_is_used_and_given_them(text_encoder, tokenizer, tmp_path):
    from limner.model.text import CaptionStore

    cache = tmp_path / "states.pt"
    first = CaptionStore(CAPTIONS, text_encoder, tokenizer, torch.device("cpu"), progress=False, cache=cache)
    saved = torch.load(cache)
    del saved["keys"]
    torch.save(saved, cache)  # as caches were written before they kept a key per caption
    again = CaptionStore(CAPTIONS, text_encoder, tokenizer, torch.device("cpu"), progress=False, cache=cache)
    assert torch.equal(again.states, first.states)
    assert "keys" in torch.load(cache)
