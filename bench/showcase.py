"""A labelled grid of the common prompts the model issue names (and a few typography prompts),
four seeds each, at 256×256 — the picture to look at before shipping a model.

    python bench/showcase.py --model limner-1 --out docs/showcase.png
"""

from __future__ import annotations

import argparse
import textwrap
from pathlib import Path

from PIL import Image, ImageDraw, ImageFont

from limner.engine import Engine, GenerationRequest

PROMPTS = [
    "a red apple",
    "a smiling cat face",
    "a rocket",
    "a thumbs up, dark skin tone, 3D",
    "a yellow star on a plain navy blue background",
    "a blue car, flat icon",
    'a poster with the title "OPEN LATE", bold lettering, on a red background',
    "an infographic with three steps: Plan, Build, Ship",
]


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--model", default=None)
    p.add_argument("--models", type=Path, default=None)
    p.add_argument("--seeds", type=int, default=4)
    p.add_argument("--out", type=Path, default=Path("docs/showcase.png"))
    args = p.parse_args()
    engine = Engine(models_file=args.models, batching=False)
    side, label_w = 160, 220
    grid = Image.new("RGB", (label_w + side * args.seeds, side * len(PROMPTS)), "white")
    draw = ImageDraw.Draw(grid)
    font = ImageFont.load_default(14)
    for row, prompt in enumerate(PROMPTS):
        images = engine.generate(GenerationRequest(prompt, n=args.seeds, seed=100, model=args.model))
        draw.multiline_text((8, row * side + 8), "\n".join(textwrap.wrap(prompt, 26)), fill="black", font=font)
        for col, im in enumerate(images):
            grid.paste(im.image.resize((side, side), Image.Resampling.LANCZOS), (label_w + col * side, row * side))
    args.out.parent.mkdir(parents=True, exist_ok=True)
    grid.save(args.out)
    print(args.out)


if __name__ == "__main__":
    main()
