"""Find the text a prompt asks an image to spell.

Handles straight, curly, guillemet and single quotes (an apostrophe inside a word is not a
quote), quotes inside quotes (the outer pair wins: the inner ones are part of the text),
unquoted forms ("that says OPEN", "titled Summer Sale", "with the words Hello World"), several
spans, and line breaks (a newline or a literal ``\\n`` inside a span). Structured visuals list
their items after a colon ("an infographic with three steps: Plan, Build, Ship") or as
"from A to B to C" ("a flowchart from Idea to Launch").

Scripts: a span is accepted when every character is one the typography fonts can draw
(``limner.typography.fonts.missing_glyphs``); otherwise the request is refused with the
characters named — Limner never paints tofu boxes.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

# opening quote → its closing partner
PAIRS = {
    '"': '"',
    "“": "”",
    "„": "“",
    "«": "»",
    "‹": "›",
    "「": "」",
    "『": "』",
    "'": "'",
    "‘": "’",
}
KINDS = [
    ("flowchart", r"\bflow ?charts?\b|\bflow diagram\b|\bprocess diagram\b|\bdiagram\b"),
    ("infographic", r"\binfographics?\b|\bsteps?\b"),
    ("bar chart", r"\bbar ?charts?\b|\bbar graph\b|\bchart\b|\bgraph\b"),
    ("badge", r"\bbadges?\b|\bbuttons?\b|\bpins?\b|\bstamps?\b|\bseals?\b|\bmedals?\b"),
    ("label", r"\blabels?\b|\btags?\b|\bstickers?\b|\bprice tag\b"),
    ("sign", r"\bsigns?\b|\bsignboards?\b|\bbillboards?\b|\bplacards?\b|\bstorefront\b|\bdoor\b"),
    (
        "poster",
        r"\bposters?\b|\bflyers?\b|\bbanners?\b|\bcovers?\b|\bcards?\b|\btitle\b|\bheadline\b",
    ),
]
UNQUOTED = re.compile(
    r"\b(?:that says|which says|saying|that reads|reading|with the words?|with the text|titled|entitled|"
    r"labell?ed|with the title)\s+(?P<text>[A-Za-z0-9][^,.;:!?\"“”«»]*?)\s*(?=$|[,.;!?]|\s+(?:on|in|with|and)\s+(?:a|an|the)\b)",
    re.IGNORECASE,
)
ITEMS_AFTER_COLON = re.compile(r":\s*(?P<items>[^:\n]+)$")
FROM_TO = re.compile(
    r"\bfrom\s+(?P<chain>.+?\s+to\s+.+?)(?=$|[,.;!?]|\s+(?:on|in|with)\s+(?:a|an|the)\b)",
    re.IGNORECASE,
)
STYLE_CUES = [
    "in big bold letters",
    "bold lettering",
    "lettering",
    "letters",
    "in bold",
    "handwritten",
]


@dataclass
class Parsed:
    spans: list[str] = field(default_factory=list)  # exact strings, in order; "\n" marks a line break
    kind: str | None = None  # poster | sign | label | badge | bar chart | infographic | flowchart
    title: str | None = None  # a quoted heading above listed items (charts, infographics, flowcharts)
    scene: str = ""  # the prompt with the spans taken out: what the picture is of

    @property
    def has_text(self) -> bool:
        return bool(self.spans)


def _quoted(prompt: str) -> tuple[list[str], str]:
    """Quoted spans, outermost pairs only, and the prompt with each replaced by '…'."""
    spans: list[str] = []
    out: list[str] = []
    i, n = 0, len(prompt)
    while i < n:
        ch = prompt[i]
        if ch in PAIRS and _opens(prompt, i):
            close = PAIRS[ch]
            j = _find_close(prompt, i + 1, close)
            if j is not None:
                text = prompt[i + 1 : j].replace("\\n", "\n").strip()
                if text:
                    spans.append(text)
                    out.append("…")
                    i = j + 1
                    continue
        out.append(ch)
        i += 1
    return spans, "".join(out)


def _opens(s: str, i: int) -> bool:
    """An apostrophe between letters (cat's, don't) is not a quote."""
    if s[i] in ("'", "’", "‘"):
        before = s[i - 1] if i > 0 else " "
        after = s[i + 1] if i + 1 < len(s) else " "
        if before.isalnum() or not (after.isalnum() or after in '"“'):
            return False
    return True


def _find_close(s: str, start: int, close: str) -> int | None:
    for j in range(start, len(s)):
        if s[j] == close:
            if close in ("'", "’"):
                after = s[j + 1] if j + 1 < len(s) else " "
                if after.isalnum():  # an apostrophe inside the quoted text (it's)
                    continue
            return j
    return None


def _kind(text: str) -> str | None:
    low = text.lower()
    for kind, pattern in KINDS:
        if re.search(pattern, low):
            return kind
    return None


def _split_items(items: str) -> list[str]:
    parts = re.split(r",\s*|\s+(?:and|then|->|→)\s+|\s*(?:->|→)\s*", items.strip().rstrip("."))
    out = []
    for p in parts:
        p = p.strip().strip("\"'“”")
        p = re.sub(
            r"\s+(?:on|in|with|against|over)\s+(?:a|an|the)\b.*$", "", p, flags=re.I
        )  # "Publish on a black background"
        for cue in STYLE_CUES:
            if p.lower().startswith(cue):
                p = ""
        if re.search(r"\b(text|letters?|lettering|fonts?|typeface|style|background|colou?rs?)\b", p, re.I):
            continue  # "tall condensed letters" describes the look, it is not an item
        if p and len(p.split()) <= 4 and not re.match(r"^(on|in|with)\s+(a|an|the)\b", p, re.I):
            out.append(p)
    return out


def parse(prompt: str) -> Parsed:
    """The spans a prompt asks to spell, the kind of visual, and the rest of the description."""
    spans, rest = _quoted(prompt)
    kind = _kind(rest)
    if not spans:
        m = UNQUOTED.search(prompt)
        if m:
            spans = [m.group("text").strip()]
            rest = prompt[: m.start("text")] + "…" + prompt[m.end("text") :]
    if kind in ("infographic", "flowchart", "bar chart"):
        m = ITEMS_AFTER_COLON.search(rest)
        if m and "…" not in m.group("items"):
            items = _split_items(m.group("items"))
            title = spans[0] if spans and items else None
            spans += items
            rest = rest[: m.start()]
            if spans and kind is None:
                kind = "poster"
            return Parsed(spans, kind, title, " ".join(rest.replace("…", " ").split()))
        elif kind == "flowchart" and not spans:
            m = FROM_TO.search(rest)
            if m:
                spans = [p.strip() for p in re.split(r"\s+to\s+", m.group("chain")) if p.strip()]
                rest = rest[: m.start()] + rest[m.end() :]
    title = None
    if kind in ("infographic", "flowchart", "bar chart") and len(spans) > 1 and _introduced_as_title(prompt, spans[0]):
        title = spans[0]  # 'a bar graph titled "Sales": bars "2021", "2022"'
    if spans and kind is None:
        kind = "poster"
    return Parsed(spans, kind, title, " ".join(rest.replace("…", " ").split()))


def _introduced_as_title(prompt: str, span: str) -> bool:
    pattern = r"\b(?:titled|entitled|called|named|headed|heading|title)\s*:?\s*[\"“”'‘’«]?" + re.escape(span)
    return re.search(pattern, prompt, re.I) is not None
