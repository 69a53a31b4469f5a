"""Paired comparison of `limner eval` runs: the change from base to new settings on every metric,
with a 95 % interval from resampling the prompts (limner/eval/paired.py), and the base runs'
seed-to-seed spread beside it.

    limner eval --model limner-1-old --models old.toml --out reports/old-3000 --no-references --no-speed --seed 3000
    limner eval --model limner-1 --out reports/new-3000 --no-references --no-speed --seed 3000
    python bench/paired.py --base reports/old-3000 reports/old-4000 --new reports/new-3000 reports/new-4000

Pairs are taken in order (the first base with the first new, …) and must share prompts and seeds.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from limner.eval.paired import compare


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--base", nargs="+", type=Path, required=True, help="eval folders of the base settings")
    p.add_argument("--new", nargs="+", type=Path, required=True, help="eval folders of the new settings, same seeds")
    p.add_argument("--rounds", type=int, default=1000, help="bootstrap rounds (the Fréchet distance takes 200)")
    p.add_argument("--out", type=Path, default=None, help="also write the result here as JSON")
    args = p.parse_args()
    result = compare(args.base, args.new, rounds=args.rounds)
    print(f"{'metric':34} {'base runs':>20} {'new runs':>20} {'change':>8} {'95 % interval':>20} {'base spread':>11}")
    for label, m in result["metrics"].items():
        runs = lambda xs: " ".join(f"{x:.3f}" for x in xs)  # noqa: E731
        lo, hi = m["interval"]
        spread = "" if m["base_spread"] is None else f"{m['base_spread']:.3f}"
        print(
            f"{label:34} {runs(m['base']):>20} {runs(m['new']):>20} {m['change']:+8.4f} [{lo:+.4f}, {hi:+.4f}] {spread:>11}"
        )
    if args.out:
        args.out.write_text(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
