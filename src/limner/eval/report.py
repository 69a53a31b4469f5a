"""The self-contained ``report.html`` of one evaluation: metric table (with a previous report for
comparison), plots, image grids per prompt set and the worst cases. Images are embedded."""

from __future__ import annotations

import base64
import html
import io
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
from PIL import Image

# every metric once: its label in the table, where metrics.json keeps it, whether higher is better,
# and its (shorter) label in the reference columns — those labels key stored references: keep them
ROWS = [
    ("Prompt fidelity, generated (top-1 of 32)", ("fidelity", "generated"), True, "fidelity (top-1 of 32)"),
    ("Prompt fidelity, real images (ceiling)", ("fidelity", "real_ceiling"), True, None),
    ("Prompt fidelity ratio generated / real", ("fidelity", "ratio"), True, None),
    (
        "Shape fidelity, generated (grey, top-1 of 32)",
        ("shape", "generated"),
        True,
        "shape fidelity (grey, top-1 of 32)",
    ),
    ("Shape fidelity, real images (ceiling)", ("shape", "real_ceiling"), True, None),
    ("Shape fidelity ratio generated / real", ("shape", "ratio"), True, None),
    (
        "Fréchet distance to real (evaluator features)",
        ("frechet", "generated_vs_real"),
        False,
        "Fréchet distance to real",
    ),
    ("Fréchet distance, real halves (floor)", ("frechet", "real_halves_floor"), False, None),
    ("Fréchet distance, noise (ceiling of badness)", ("frechet", "noise_vs_real"), False, None),
    ("OCR word accuracy", ("text", "word_accuracy"), True, "OCR word accuracy"),
    (
        "OCR normalised edit distance, quoted spans",
        ("text", "ned"),
        False,
        "OCR normalised edit distance (quoted spans)",
    ),
    (
        "OCR normalised edit distance, whole image (text OCR finds in drawings counts)",
        ("text", "ned_whole"),
        False,
        "OCR normalised edit distance (whole image)",
    ),
    ("Skin-tone accuracy", ("skin_tone", "accuracy"), True, "skin-tone accuracy"),
    (
        "Skin-tone accuracy, ITA reader (METRICS_VERSION ≤ 5)",
        ("skin_tone", "ita_accuracy"),
        True,
        "skin-tone accuracy, ITA reader (v4)",
    ),
    ("Memorised share (near copies of training images)", ("memorisation", "share"), False, "memorised share"),
]
SUMMARY = {short: where for _, where, _, short in ROWS if short}  # the numbers a reference column shows


def summary(m: dict) -> dict:
    return {label: (m.get(section) or {}).get(key) for label, (section, key) in SUMMARY.items()}


def _get(m: dict | None, path: tuple[str, ...]):
    for p in path:
        if not isinstance(m, dict) or p not in m:
            return None
        m = m[p]
    return m


def _fmt(v) -> str:
    if v is None:
        return "–"
    if isinstance(v, float):
        return f"{v:.3f}" if abs(v) < 100 else f"{v:.1f}"
    return str(v)


def _png(img: Image.Image, side: int | None = None) -> str:
    """The image as a data URL: WebP at quality 85, a fifth of PNG's size for these thumbnails
    (and far less for noise), so a report stays small enough to commit."""
    if side:
        img = img.resize((side, side), Image.Resampling.LANCZOS)
    buf = io.BytesIO()
    img.convert("RGB").save(buf, format="WEBP", quality=85, method=4)
    return "data:image/webp;base64," + base64.b64encode(buf.getvalue()).decode()


def _fig(fig) -> str:
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=90, bbox_inches="tight")
    plt.close(fig)
    return "data:image/png;base64," + base64.b64encode(buf.getvalue()).decode()


def _grid(images: list[Image.Image], rows: list[dict], n: int = 24, side: int = 128, note=None) -> str:
    cells = []
    for img, row in list(zip(images, rows, strict=False))[:n]:
        caption = html.escape(row.get("prompt", ""))
        extra = f"<br><b>{html.escape(note(row))}</b>" if note else ""
        cells.append(
            f'<figure><img src="{_png(img, side)}" alt="{caption}" width="{side}" height="{side}">'
            f"<figcaption>{caption}{extra}</figcaption></figure>"
        )
    return '<div class="grid">' + "".join(cells) + "</div>"


def write_report(
    out: Path,
    m: dict,
    images: dict,
    sets: dict,
    ocr: list[dict],
    sims: list[float],
    baseline: dict | None,
) -> Path:
    out = Path(out)
    table = [
        "<table><tr><th>metric</th><th>this run</th>"
        + ("<th>baseline</th><th>change</th>" if baseline else "")
        + "</tr>"
    ]
    for label, path, higher, _ in ROWS:
        v, b = _get(m, path), _get(baseline, path)
        row = f"<tr><td>{label}</td><td>{_fmt(v)}</td>"
        if baseline:
            delta = (v - b) if isinstance(v, int | float) and isinstance(b, int | float) else None
            good = delta is not None and ((delta > 0) == higher) and delta != 0
            cls = "good" if good else ("bad" if delta else "")
            row += f"<td>{_fmt(b)}</td><td class='{cls}'>{_fmt(delta)}</td>"
        table.append(row + "</tr>")
    table.append("</table>")

    refs = m.get("references")
    if refs:
        mine = summary(m)
        names = list(refs)
        table.append(
            "<h2>Reference points on the same prompts</h2><table><tr><th>metric</th><th>this run</th>"
            + "".join(f"<th>{html.escape(n)}</th>" for n in names)
            + "</tr>"
        )
        for label in SUMMARY:
            table.append(
                f"<tr><td>{html.escape(label)}</td><td>{_fmt(mine[label])}</td>"
                + "".join(f"<td>{_fmt(refs[n].get(label))}</td>" for n in names)
                + "</tr>"
            )
        table.append(
            "</table><p>real: held-out real images (ceiling); noise: random images (floor); "
            "nearest-train: the training image whose caption is nearest (pure memorisation).</p>"
        )

    plots = []
    fig, axes = plt.subplots(1, 2, figsize=(8, 3), sharey=True)
    for ax, section, title in zip(
        axes, ("fidelity", "shape"), ("prompt fidelity", "shape fidelity (grey)"), strict=True
    ):
        f = m[section]
        ax.bar(
            ["chance", "generated", "real"],
            [f["chance"], f["generated"] or 0.0, f["real_ceiling"] or 0.0],
            color=["#bbb", "#4a7", "#27c"],
        )
        ax.set_title(title)
    axes[0].set_ylabel("top-1 retrieval among 32")
    plots.append(_fig(fig))
    fig, ax = plt.subplots(figsize=(5, 3))
    ax.hist(sims, bins=40, color="#888")
    ax.axvline(m["memorisation"]["threshold"], color="r", label="near-copy threshold")
    ax.set_xlabel("similarity to nearest training image")
    ax.legend()
    ax.set_title("memorisation")
    plots.append(_fig(fig))
    conf = m["skin_tone"]["confusion"]
    if conf:
        fig, ax = plt.subplots(figsize=(5, 3.5))
        ax.imshow(conf, cmap="Blues")
        ax.set_xticks(
            range(len(m["skin_tone"]["labels"]) + 1),
            [*m["skin_tone"]["labels"], "none"],
            rotation=45,
        )
        ax.set_yticks(range(len(m["skin_tone"]["labels"])), m["skin_tone"]["labels"])
        for i, r in enumerate(conf):
            for j, c in enumerate(r):
                ax.text(j, i, str(c), ha="center", va="center", fontsize=8)
        ax.set_xlabel("predicted")
        ax.set_ylabel("asked for")
        ax.set_title("skin tone")
        plots.append(_fig(fig))

    by_id = {o["id"]: o for o in ocr}
    worst = sorted(
        zip(images["typography"], sets["typography"], strict=True),
        key=lambda p: by_id[p[1]["id"]]["word_accuracy"],
    )[:12]
    speed = m.get("speed")
    speed_html = ""
    if speed:
        speed_html = (
            f"<p>Speed on {html.escape(speed['machine'])}: batch 1 {speed['batch1']['seconds_per_image']} s/image; "
            f"batch 4 {speed['batch4']['seconds_per_image']} s/image "
            f"({speed['batch4']['images_per_second']} images/s).</p>"
        )
    body = f"""<!doctype html><html lang="en"><head><meta charset="utf-8"><title>Limner eval: {html.escape(m["model"])}</title>
<style>body{{font-family:system-ui,sans-serif;margin:2em;max-width:1200px}} table{{border-collapse:collapse}}
td,th{{border:1px solid #ccc;padding:4px 8px;text-align:right}} td:first-child{{text-align:left}}
.good{{color:#080}} .bad{{color:#b00}} .grid{{display:flex;flex-wrap:wrap;gap:8px}}
figure{{margin:0;width:128px;font-size:11px}} img{{image-rendering:auto}}</style></head><body>
<h1>Evaluation of <code>{html.escape(m["model"])}</code></h1>
<p>Prompt sets: {html.escape(str(m["prompt_sets"]))}; evaluator {html.escape(m["evaluator"])};
{m["seconds"]} s on {html.escape(m["machine"])}.</p>
{"".join(table)}{speed_html}
<h2>Plots</h2>{"".join(f'<img src="{p}" alt="plot">' for p in plots)}
<h2>Concepts</h2>{_grid(images["concepts"], sets["concepts"])}
<h2>Typography</h2>{_grid(images["typography"], sets["typography"], note=lambda r: "OCR: " + by_id[r["id"]]["ocr"][:60])}
<h2>Skin tones</h2>{_grid(images["skin_tones"], sets["skin_tones"], note=lambda r: "asked: " + r["tone"])}
<h2>Worst typography cases</h2>{_grid([w[0] for w in worst], [w[1] for w in worst], note=lambda r: "OCR: " + by_id[r["id"]]["ocr"][:60])}
</body></html>"""
    report = out / "report.html"
    report.write_text(body)
    return report
