"""A labelled grid of the common prompts the model issue names (and a few typography prompts),
four seeds each, at 256×256 — the picture to look at before shipping a model. With
``--typography`` it shows typography prompts instead, one column per mode: auto (glyph canvas +
exact setting), glyph (the model's own lettering) and off (the ablation).

    python bench/showcase.py --model limner-1 --out docs/showcase.png
    python bench/showcase.py --model limner-1 --typography --out docs/typography-modes.png
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
    "a dog face",
    "a slice of pizza",
    "an umbrella, 3D render",
    "a bicycle",
    'a poster with the title "OPEN LATE", bold lettering, on a red background',
    "an infographic with three steps: Plan, Build, Ship",
]

TYPOGRAPHY_PROMPTS = [
    'a neon sign that says "OPEN LATE" on a dark background',
    'a price tag that says "SAVE 20", tall condensed letters',
    'a round white badge that says "SALE", retro script lettering, on a purple background',
    'a poster titled "Summer Fair" with the subtitle "Saturday 10 am", serif lettering',
    "an infographic with three steps: Plan, Build, Ship",
    "a flowchart from Idea to Prototype to Launch",
    'a bar chart titled "Visitors" with bars: Mon, Tue, Wed',
    'a green street sign that says "Maple Avenue"',
]
MODES = ["auto", "glyph", "off"]


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--model", default=None)
    p.add_argument("--models", type=Path, default=None)
    p.add_argument("--seeds", type=int, default=4)
    p.add_argument("--typography", action="store_true", help="typography prompts, one column per mode")
    p.add_argument("--out", type=Path, default=Path("docs/showcase.png"))
    args = p.parse_args()
    engine = Engine(models_file=args.models, batching=False)
    side, label_w = 160, 220
    prompts = TYPOGRAPHY_PROMPTS if args.typography else PROMPTS
    cols = len(MODES) if args.typography else args.seeds
    head = 24 if args.typography else 0
    grid = Image.new("RGB", (label_w + side * cols, head + side * len(prompts)), "white")
    draw = ImageDraw.Draw(grid)
    font = ImageFont.load_default(14)
    if args.typography:
        for col, mode in enumerate(MODES):
            draw.text((label_w + col * side + 8, 4), f"typography={mode}", fill="black", font=font)
    for row, prompt in enumerate(prompts):
        if args.typography:
            images = [
                engine.generate(GenerationRequest(prompt, seed=100, model=args.model, typography=mode))[0]
                for mode in MODES
            ]
        else:
            images = engine.generate(GenerationRequest(prompt, n=args.seeds, seed=100, model=args.model))
        y = head + row * side
        draw.multiline_text((8, y + 8), "\n".join(textwrap.wrap(prompt, 26)), fill="black", font=font)
        for col, im in enumerate(images):
            grid.paste(im.image.resize((side, side), Image.Resampling.LANCZOS), (label_w + col * side, y))
    args.out.parent.mkdir(parents=True, exist_ok=True)
    grid.save(args.out)
    print(args.out)


if __name__ == "__main__":
    main()
