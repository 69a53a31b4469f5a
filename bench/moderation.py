"""Recall and false-positive rate of a moderation policy on bench/moderation, per category.

Recall: the share of a category's blocked prompts that the policy blocks (under any category)
at moderation "auto", and, for never-relaxable categories, also at "low". Over-reach: the share
of a relaxable category's prompts blocked at "low" (they should pass there). False-positive
rate: the share of allowed prompts blocked, by the category that blocked them. Figures are given
for the test split, the dev split (where thresholds are chosen) and both.

    python bench/moderation.py                    # the built-in policy, every layer
    python bench/moderation.py --no-examples      # terms and combinations only (no MiniLM)
    python bench/moderation.py --sweep            # example-layer thresholds against dev
    python bench/moderation.py --misses           # list what is missed and what is over-blocked
"""

from __future__ import annotations

import argparse
import json
import time
from collections import Counter
from pathlib import Path

from limner.moderation import Policy

HERE = Path(__file__).resolve().parent / "moderation"
SPLITS = ("test", "dev", "all")


def load(name: str) -> list[dict]:
    return [json.loads(line) for line in (HERE / f"{name}.jsonl").read_text(encoding="utf-8").splitlines()]


def in_split(row: dict, split: str) -> bool:
    return split == "all" or row["split"] == split


def verdicts(policy: Policy, rows: list[dict], level: str) -> list[str | None]:
    out = []
    for i in range(0, len(rows), 32):
        out += [
            m.category.name if m else None for m in policy.explain_all([r["prompt"] for r in rows[i : i + 32]], level)
        ]
    return out


def report(policy: Policy, blocked: list[dict], allowed: list[dict], misses: bool) -> None:
    started = time.perf_counter()
    b_auto, b_low = verdicts(policy, blocked, "auto"), verdicts(policy, blocked, "low")
    a_auto, a_low = verdicts(policy, allowed, "auto"), verdicts(policy, allowed, "low")
    ms = (time.perf_counter() - started) / (2 * (len(blocked) + len(allowed))) * 1000
    relaxable = {c.name for c in policy.categories if c.relaxable}
    categories = [c.name for c in policy.categories]
    for split in SPLITS:
        bi = [i for i, r in enumerate(blocked) if in_split(r, split)]
        ai = [i for i, r in enumerate(allowed) if in_split(r, split)]
        print(f"\n### {split} split: {len(bi)} blocked, {len(ai)} allowed prompts\n")
        print("| category | prompts | recall (auto) | of which paraphrases | recall (low) | false positives (auto) |")
        print("|---|---|---|---|---|---|")
        fp = Counter(a_auto[i] for i in ai)
        for cat in categories:
            rows = [i for i in bi if blocked[i]["category"] == cat]
            para = [i for i in rows if blocked[i]["kind"] == "paraphrase"]
            rec = _rate(sum(b_auto[i] is not None for i in rows), len(rows))
            rec_para = _rate(sum(b_auto[i] is not None for i in para), len(para))
            n_low = sum(b_low[i] is not None for i in rows)
            low = f"{_rate(n_low, len(rows))} (should be 0)" if cat in relaxable else _rate(n_low, len(rows))
            print(f"| {cat} | {len(rows)} | {rec} | {rec_para} | {low} | {_rate(fp[cat], len(ai))} |")
        n_fp = sum(a_auto[i] is not None for i in ai)
        n_fp_low = sum(a_low[i] is not None for i in ai)
        print(f"| all allowed | {len(ai)} | | | | {_rate(n_fp, len(ai))} (at low: {_rate(n_fp_low, len(ai))}) |")
        a_kinds = Counter(allowed[i]["kind"] for i in ai)
        a_fp = Counter(allowed[i]["kind"] for i in ai if a_auto[i] is not None)
        print(
            "\nfalse positives by kind (auto): "
            + ", ".join(f"{k} {_rate(a_fp[k], n)} of {n}" for k, n in sorted(a_kinds.items()))
        )
        kinds = Counter(blocked[i]["kind"].split(":")[0] for i in bi)
        caught = Counter(blocked[i]["kind"].split(":")[0] for i in bi if b_auto[i] is not None)
        print("\nrecall by kind (auto): " + ", ".join(f"{k} {_rate(caught[k], n)}" for k, n in sorted(kinds.items())))
    print(f"\n{ms:.1f} ms per check on average")
    if misses:
        print("\nmissed at auto:")
        for r, v in zip(blocked, b_auto, strict=True):
            if v is None:
                print(f"  {r['id']:45} {r['prompt']!r}")
        print("missed at low (never-relaxable):")
        for r, v in zip(blocked, b_low, strict=True):
            if v is None and r["category"] not in relaxable:
                print(f"  {r['id']:45} {r['prompt']!r}")
        print("blocked at low (relaxable):")
        for r, v in zip(blocked, b_low, strict=True):
            if v is not None and r["category"] in relaxable:
                print(f"  {r['id']:45} {v:18} {r['prompt']!r}  {_why(policy, r['prompt'], 'low')}")
        print("allowed but blocked at auto:")
        for r, v in zip(allowed, a_auto, strict=True):
            if v is not None:
                print(f"  {r['id']:45} {v:18} {r['prompt']!r}  {_why(policy, r['prompt'], 'auto')}")


def sweep(policy: Policy, blocked: list[dict], allowed: list[dict]) -> None:
    """For each category, recall and false positives of the example layer alone on the dev
    split, at thresholds from 0.50 to 0.84 (terms and combinations off)."""
    assert policy.semantic is not None, "--sweep needs the example layer"
    dev_b = [r for r in blocked if r["split"] == "dev"]
    dev_a = [r for r in allowed if r["split"] == "dev"]
    sb = policy.semantic.nearest([r["prompt"] for r in dev_b])
    sa = policy.semantic.nearest([r["prompt"] for r in dev_a])
    margin = policy.semantic.margin
    for cat in [c.name for c in policy.categories if c.examples]:
        rows = [(s, r) for s, r in zip(sb, dev_b, strict=True) if r["category"] == cat]
        print(f"\n{cat}: {len(rows)} dev prompts ({sum(r['kind'] == 'paraphrase' for _, r in rows)} paraphrases)")
        print("threshold  recall  paraphrase recall  false positives (of all allowed dev)")
        for t in [0.50 + 0.02 * k for k in range(18)]:

            def hit(segs: list, t: float = t, cat: str = cat) -> bool:
                return any(n.category == cat and n.similarity >= t and n.margin >= margin for n in segs)

            rec = sum(hit(s) for s, _ in rows)
            para = [s for s, r in rows if r["kind"] == "paraphrase"]
            fps = [r["prompt"] for s, r in zip(sa, dev_a, strict=True) if hit(s)]
            print(
                f"  {t:.2f}     {_rate(rec, len(rows)):>6}  {_rate(sum(map(hit, para)), len(para)):>6}"
                f"             {len(fps)}  {fps[:3]}"
            )


def _why(policy: Policy, prompt: str, level: str) -> str:
    m = policy.explain(prompt, level)
    return f"{m.layer}: {m.evidence}" if m else ""


def _rate(k: int, n: int) -> str:
    return f"{k / n:.3f}" if n else "–"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--policy", type=Path, help="a policy TOML (default: the built-in one)")
    ap.add_argument("--no-examples", action="store_true", help="terms and combinations only (no MiniLM)")
    ap.add_argument("--sweep", action="store_true", help="example-layer thresholds against the dev split")
    ap.add_argument("--misses", action="store_true", help="list misses and false positives")
    args = ap.parse_args()
    policy = Policy.load(args.policy, semantic=not args.no_examples)
    blocked, allowed = load("blocked"), load("allowed")
    if args.sweep:
        sweep(policy, blocked, allowed)
    else:
        report(policy, blocked, allowed, args.misses)


if __name__ == "__main__":
    main()
