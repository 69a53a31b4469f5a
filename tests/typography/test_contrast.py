import random

import pytest

from limner.typography.colours import PALETTE
from limner.typography.contrast import (
    BLACK,
    MIN_CONTRAST,
    WHITE,
    contrast_ratio,
    luminance,
    readable_on,
)


def test_wcag_reference_values():
    assert luminance((255, 255, 255)) == pytest.approx(1.0)
    assert luminance((0, 0, 0)) == 0.0
    assert contrast_ratio((0, 0, 0), (255, 255, 255)) == pytest.approx(21.0)
    assert contrast_ratio((118, 118, 118), (255, 255, 255)) == pytest.approx(4.54, abs=0.01)
    assert contrast_ratio((10, 20, 30), (10, 20, 30)) == 1.0


@pytest.mark.parametrize("background", PALETTE)
def test_readable_text_colour_on_every_palette_background(background):
    assert readable_on(background) in (BLACK, WHITE)
    rng = random.Random(0)
    for _ in range(20):
        assert contrast_ratio(readable_on(background, rng), background) >= MIN_CONTRAST
