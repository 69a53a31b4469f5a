import shutil

import numpy as np
import pytest
from PIL import Image, ImageDraw, ImageFont

from limner.eval import metrics as M


def test_retrieval_is_perfect_for_matching_embeddings_and_chance_for_random_ones():
    rng = np.random.default_rng(0)
    emb = rng.normal(size=(400, 64))
    emb /= np.linalg.norm(emb, axis=1, keepdims=True)
    assert M.retrieval_top1(emb, emb, k=32) == 1.0
    other = rng.normal(size=(400, 64))
    other /= np.linalg.norm(other, axis=1, keepdims=True)
    chance = M.retrieval_top1(emb, other, k=32)
    assert abs(chance - 1 / 32) < 0.03


def test_hard_negatives_are_the_most_similar_other_rows_and_make_retrieval_harder():
    # four colours, eight images each: an image's hard negatives are the other seven of its colour first
    rng = np.random.default_rng(0)
    colours = np.repeat(np.eye(4), 8, axis=0) + rng.normal(0, 0.01, (32, 4))  # (32, 4)
    sig = colours / np.linalg.norm(colours, axis=1, keepdims=True)
    hard = M.hard_negatives(sig, k=8)
    assert hard.shape == (32, 7)
    for i in range(32):
        assert i not in hard[i] and set(hard[i]) == set(range(i // 8 * 8, i // 8 * 8 + 8)) - {i}
    # embeddings that know only the colour: perfect against random prompts of other colours …
    emb = np.concatenate([np.repeat(np.eye(4), 8, axis=0), 0.01 * rng.normal(size=(32, 28))], 1)
    emb /= np.linalg.norm(emb, axis=1, keepdims=True)
    text = np.repeat(np.eye(4), 8, axis=0)
    text = np.concatenate([text, np.zeros((32, 28))], 1)
    assert M.retrieval_top1(emb, text, k=2, distractors=np.array([[(i + 8) % 32] for i in range(32)])) == 1.0
    # … and at a loss among prompts of its own colour, which all score the same
    assert M.retrieval_top1(emb, text, k=8, distractors=hard) == 0.0


def test_colour_signature_sees_colours_where_they_are_but_not_the_drawing():
    img = np.zeros((64, 64, 3), dtype=np.uint8)
    img[16:48, 16:48] = (200, 30, 30)  # a red square
    disc = np.zeros_like(img)
    yy, xx = np.mgrid[0:64, 0:64]
    disc[(yy - 31.5) ** 2 + (xx - 31.5) ** 2 < 18**2] = (200, 30, 30)  # a red disc of about the same area
    moved = np.roll(img, 32, axis=1)
    sig = M.colour_signature
    assert sig(img) @ sig(disc) > 0.95 and sig(img) @ sig(moved) < 0.8


def test_frechet_distance_is_zero_for_identical_sets_and_grows_with_a_shift():
    rng = np.random.default_rng(0)
    a = rng.normal(size=(2000, 8))
    assert M.frechet_distance(a, a) == pytest.approx(0.0, abs=1e-6)
    b = rng.normal(size=(2000, 8))
    assert M.frechet_distance(a, b) < 0.1
    assert M.frechet_distance(a, b + 2.0) == pytest.approx(8 * 4.0, rel=0.1)  # |Δμ|² = 8·2²


def test_word_accuracy_and_edit_distance_follow_the_definitions():
    assert M.word_accuracy(["SUMMER SALE"], "summer sale\n") == 1.0
    assert M.word_accuracy(["SUMMER SALE"], "SUMMER") == 0.5
    assert M.word_accuracy(["the the"], "the") == 0.5  # each OCR word is used once
    assert M.normalized_edit_distance("OPEN", "open") == 0.0
    assert M.normalized_edit_distance("OPEN", "OPEM") == 0.25
    assert M.normalized_edit_distance("OPEN", "") == 1.0


def test_span_edit_distance_ignores_other_text_but_not_misspelling():
    assert M.substring_edit_distance("open", "xx open yy") == 0
    assert M.substring_edit_distance("open", "xx opem yy") == 1
    # junk around the spans costs nothing; a wrong letter in a span does
    assert M.span_edit_distance(["Grand Opening", "Sale"], ["@@ > GRAND OPENING -> |sale|"]) == 0.0
    assert M.span_edit_distance(["Sale"], ["sole"]) == 0.25
    # each span takes its best reading
    assert M.span_edit_distance(["Plan", "Ship"], ["plan", "ship"]) == 0.0
    assert M.span_edit_distance(["Plan"], []) == 1.0
    assert M.edit_distance("kitten", "sitting") == 3


def test_ita_and_tone_classification_of_known_colours():
    for tone, rgb in M.EMOJI_TONES.items():
        patch = np.full((32, 32, 3), rgb, dtype=np.uint8)
        assert M.classify_tone(patch) == tone
    yellow = np.full((32, 32, 3), (255, 200, 40), dtype=np.uint8)  # the default emoji face is not skin
    assert M.classify_tone(yellow) is None
    grey = np.full((32, 32, 3), (128, 128, 128), dtype=np.uint8)
    assert M.classify_tone(grey) is None
    # ITA falls from light to dark skin
    itas = [float(M.ita_degrees(M.srgb_to_lab(np.array(c, dtype=np.uint8)))) for c in M.EMOJI_TONES.values()]
    assert itas == sorted(itas, reverse=True)


def test_confusion_matrix_counts_rows_by_truth():
    m = M.confusion(["light", "dark", "dark"], ["light", "medium", None])
    assert m[0][0] == 1 and m[4][2] == 1 and m[4][5] == 1


def test_a_duplicated_training_image_is_flagged_as_a_near_copy():
    rng = np.random.default_rng(0)
    train = rng.integers(0, 256, (50, 64, 64, 3), dtype=np.uint8)
    sigs = np.stack([M.copy_signature(im) for im in train])
    copy = np.clip(train[7].astype(int) + rng.integers(-5, 6, train[7].shape), 0, 255).astype(np.uint8)
    fresh = rng.integers(0, 256, (64, 64, 3), dtype=np.uint8)
    idx, sims = M.nearest(np.stack([M.copy_signature(copy), M.copy_signature(fresh)]), sigs)
    assert idx[0] == 7 and sims[0] > 0.95
    assert sims[1] < 0.5


@pytest.mark.skipif(shutil.which("tesseract") is None, reason="tesseract-ocr is not installed")
def test_ocr_reads_a_word_the_test_renders():
    from limner.eval.ocr import read_texts

    img = Image.new("RGB", (256, 128), "white")
    font = ImageFont.truetype("DejaVuSans-Bold.ttf", 40) if _has_dejavu() else ImageFont.load_default(40)
    ImageDraw.Draw(img).text((20, 40), "LIMNER", fill="black", font=font)
    assert max(M.word_accuracy(["LIMNER"], t) for t in read_texts(img)) == 1.0  # the best reading counts
    dark = Image.new("RGB", (256, 128), (20, 20, 60))
    ImageDraw.Draw(dark).text((20, 40), "NIGHT", fill="white", font=font)  # light on dark: read via the negative
    assert max(M.word_accuracy(["NIGHT"], t) for t in read_texts(dark)) == 1.0


def _has_dejavu() -> bool:
    try:
        ImageFont.truetype("DejaVuSans-Bold.ttf", 10)
        return True
    except OSError:
        return False
