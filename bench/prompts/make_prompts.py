"""Write Limner's evaluation prompt sets: concepts.jsonl, typography.jsonl and skin_tones.jsonl.

Concept names come from emojibase-data's English labels (what the corpus captions are built from),
or from a built-in list of common emoji when that package has not been fetched. Each set draws from
its own seeded ``random.Random``, so running this again rewrites the three files byte for byte.
Standard library only. See README.md beside it for the fields and the metrics that read them.

    python bench/prompts/make_prompts.py
"""

from __future__ import annotations

import json
import random
import re
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

HERE = Path(__file__).resolve().parent
EMOJIBASE = HERE.parents[1] / "data/sources/npm/emojibase-data/package"
SEED = 1729

TONES = ["light", "medium-light", "medium", "medium-dark", "dark"]
CATEGORIES = ["objects", "people", "animals", "food", "scenes", "symbols"]

# How many concept prompts per category (336 in all), and the share that are combinations.
CONCEPT_QUOTA = {
    "objects": 76,
    "people": 60,
    "animals": 60,
    "food": 60,
    "scenes": 40,
    "symbols": 40,
}
COMBINATION_SHARE = 0.3
TYPOGRAPHY_PER_KIND = 32  # 7 kinds → 224 prompts

# ---------------------------------------------------------------------------------------------
# Concepts
# ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Concept:
    name: str  # the emoji's label: "red apple"
    category: str  # one of CATEGORIES
    toned: bool = False  # the emoji comes in five skin tones


# Labels that are real emoji but make poor prompts: obscure, adjectives rather than things, proper
# names that take no article, or glyph-like signs that read as text.
SKIP = {
    "ZZZ", "hole", "dotted line face", "face exhaling", "fight cloud", "star-struck", "dizzy",
    "foggy", "middle finger", "head shaking horizontally", "head shaking vertically", "Ophiuchus",
    "khanda", "om", "kaaba", "oden", "mate", "dango", "sake", "tanabata tree", "pine decoration",
    "carp streamer", "moon viewing ceremony", "mahjong red dragon", "flower playing cards",
    "nazar amulet", "hamsa", "alembic", "wavy dash", "curly loop", "double curly loop",
    "part alternation mark", "eight-spoked asterisk", "fleur-de-lis", "trident emblem",
    "circled M", "love hotel", "Mx Claus", "Santa Claus", "Statue of Liberty", "Tokyo tower",
    "mount fuji", "Japanese post office", "Japanese dolls", "breast-feeding", "hairy creature",
    "people with bunny ears", "men with bunny ears", "women with bunny ears",
    "person in suit levitating", "derelict house", "shallow pan of food", "cigarette", "ID",
    "speaker low volume", "speaker medium volume", "level slider", "control knobs", "pager",
    "trackball", "ledger", "card index", "card index dividers", "card file box", "new moon face",
    "first quarter moon face", "last quarter moon face", "waxing gibbous moon",
    "waning gibbous moon", "waxing crescent moon", "waning crescent moon", "mobile phone off",
    "vibration mode", "antenna bars", "dim button", "bright button", "input numbers", "locked",
    "unlocked", "locked with pen", "locked with key", "prohibited", "construction", "dashing away",
    "hourglass not done",
}  # fmt: skip
ZODIAC = {
    "Aries", "Taurus", "Gemini", "Cancer", "Leo", "Virgo", "Libra", "Scorpio", "Sagittarius",
    "Capricorn", "Aquarius", "Pisces",
}  # fmt: skip
# Names that read wrongly after "a": mass nouns, activities, adjectives-as-symbols.
NO_ARTICLE = {
    "bowling", "tennis", "camping", "cooking", "construction", "fog", "ice", "salt", "butter",
    "wood", "fire", "popcorn", "bacon", "garlic", "broccoli", "cooked rice", "curry rice",
    "spaghetti", "sushi", "falafel", "fondue", "lacrosse", "badminton", "ping pong",
    "field hockey", "ice hockey", "cricket game", "collision", "hundred points", "customs",
    "passport control", "baggage claim", "left luggage", "luggage", "information", "multiply",
    "plus", "minus", "divide", "infinity", "copyright", "registered", "trade mark", "dna",
    "soap", "money with wings", "wireless", "cinema", "thread", "yarn", "potable water",
    "non-potable water", "high voltage", "no entry", "no smoking", "no littering", "no bicycles",
    "no pedestrians", "no mobile phones", "no one under eighteen", "warning", "prohibited",
    "radioactive", "biohazard", "currency exchange", "restroom", "children crossing",
    "leafy green", "green salad", "ginger root", "bubble tea", "hot beverage", "french fries",
    "cut of meat", "shaved ice", "soft ice cream", "ice cream", "bread",
    "horse racing", "chocolate", "candy", "rice cracker",
}  # fmt: skip
# Labels that the category rule below would misfile.
CATEGORY_OVERRIDE = {
    "thermometer": "objects", "closed umbrella": "objects", "umbrella": "objects",
    "umbrella with rain drops": "objects", "brick": "objects", "rock": "objects",
    "wood": "objects", "compass": "objects", "high voltage": "symbols", "droplet": "objects",
    "fire": "objects", "snowflake": "symbols", "star": "symbols", "glowing star": "symbols",
    "hundred points": "symbols", "skull": "objects", "skull and crossbones": "symbols",
    "pile of poo": "objects", "robot": "objects", "ghost": "objects", "alien": "people",
    "alien monster": "objects",
}  # fmt: skip

# Used when emojibase-data is absent: common emoji, by category. People marked * have skin tones.
FALLBACK = {
    "objects": (
        "rocket; light bulb; crown; umbrella; key; gear; hammer; wrench; magnet; books; "
        "open book; pencil; scissors; camera; laptop; mobile phone; television; alarm clock; "
        "hourglass done; bell; trophy; soccer ball; basketball; balloon; wrapped gift; "
        "guitar; violin; headphone; microphone; backpack; glasses; t-shirt; "
        "bicycle; automobile; bus; airplane; sailboat; anchor; candle; money bag; envelope; "
        "package; shopping cart; teddy bear; kite; crystal ball; artist palette; "
        "potted plant; cactus; sunflower; rose; tulip; palm tree; four leaf clover; "
        "mushroom; maple leaf; robot; ghost; pile of poo"
    ),
    "people": (
        "grinning face; face with tears of joy; winking face; smiling face with heart-eyes; "
        "smiling face with sunglasses; thinking face; sleeping face; crying face; angry face; "
        "partying face; nerd face; exploding head; face with medical mask; clown face; "
        "waving hand*; thumbs up*; thumbs down*; OK hand*; victory hand*; clapping hands*; "
        "raised fist*; folded hands*; flexed biceps*; raised hand*; baby*; child*; "
        "old woman*; person raising hand*; woman technologist*; man farmer*; woman teacher*; "
        "man cook*; woman scientist*; man astronaut*; woman firefighter*; police officer*; "
        "person running*; person swimming*"
    ),
    "animals": (
        "grinning cat; dog face; cat face; lion; tiger face; horse; unicorn; cow face; "
        "pig face; mouse face; rabbit face; bear; panda; koala; monkey face; fox; wolf; "
        "elephant; giraffe; zebra; penguin; owl; chicken; duck; eagle; parrot; frog; turtle; "
        "snake; dragon; whale; dolphin; fish; tropical fish; octopus; crab; butterfly; "
        "honeybee; lady beetle; snail; hedgehog; flamingo"
    ),
    "food": (
        "red apple; green apple; banana; grapes; watermelon; strawberry; cherries; lemon; "
        "pineapple; peach; pear; avocado; carrot; broccoli; tomato; ear of corn; hot pepper; "
        "bread; croissant; cheese wedge; hamburger; pizza; hot dog; taco; sandwich; "
        "french fries; doughnut; cookie; birthday cake; cupcake; ice cream; lollipop; "
        "chocolate bar; hot beverage; teacup without handle; glass of milk; sushi; egg"
    ),
    "scenes": (
        "house; castle; mountain; volcano; desert island; beach with umbrella; cityscape; "
        "sunset; sunrise over mountains; night with stars; rainbow; cloud; sun behind cloud; "
        "cloud with rain; tornado; snowman; ferris wheel; camping; fountain; tent; school; "
        "hospital; world map; milky way"
    ),
    "symbols": (
        "red heart; blue heart; green heart; yellow heart; broken heart; sparkles; "
        "check mark; cross mark; warning; recycling symbol; peace symbol; yin yang; "
        "infinity; star; snowflake; high voltage; red question mark; heart with arrow; "
        "no entry; right arrow; up arrow; hundred points; speech balloon; musical note"
    ),
}


def category_of(group: str, subgroup: str) -> str | None:
    """emojibase's group and subgroup → one of CATEGORIES, or None for components and flags."""
    if group == "smileys-emotion":
        if subgroup in ("cat-face", "monkey-face"):
            return "animals"
        return "symbols" if subgroup in ("heart", "emotion") else "people"
    if group == "people-body":
        return "people"
    if group == "animals-nature":
        return "animals" if subgroup.startswith("animal") else "objects"
    if group == "food-drink":
        return "objects" if subgroup == "dishware" else "food"
    if group == "travel-places":
        return "scenes" if subgroup.startswith("place") or subgroup == "sky-weather" else "objects"
    if group in ("activities", "objects"):
        return "objects"
    return "symbols" if group == "symbols" else None


def usable(label: str) -> bool:
    """Common, short, plainly spelled names; no flags, keycaps, buttons or 'X: Y' variants."""
    if ":" in label or re.search(r"keycap|flag|button", label, re.IGNORECASE):
        return False
    if len(label.split()) > 4 or not re.fullmatch(r"[A-Za-z][A-Za-z' -]*", label):
        return False
    if re.search(r"o'clock|-thirty|^input ", label):
        return False
    return label not in SKIP and label not in ZODIAC


def load_concepts() -> tuple[list[Concept], bool]:
    """Concepts from emojibase-data if present, else FALLBACK; and whether the data was found."""
    data_file, groups_file = EMOJIBASE / "en/data.json", EMOJIBASE / "meta/groups.json"
    if not (data_file.is_file() and groups_file.is_file()):
        concepts = [
            Concept(name.rstrip("*").strip(), category, name.endswith("*"))
            for category, names in FALLBACK.items()
            for name in names.split(";")
        ]
        return list(dict.fromkeys(concepts)), False
    meta = json.loads(groups_file.read_text(encoding="utf-8"))
    concepts = []
    for e in json.loads(data_file.read_text(encoding="utf-8")):
        label = e["label"].replace("\u2019", "'")
        group = meta["groups"].get(str(e.get("group")), "")
        category = category_of(group, meta["subgroups"].get(str(e.get("subgroup")), ""))
        if category is None or not usable(label):
            continue
        category = CATEGORY_OVERRIDE.get(label, category)
        concepts.append(Concept(label, category, bool(e.get("skins"))))
    return list(dict.fromkeys(concepts)), True


# ---------------------------------------------------------------------------------------------
# Phrasing helpers
# ---------------------------------------------------------------------------------------------

# Colour words a user may type, by family (the corpus captions use the same families).
COLOUR_SYNONYMS = {
    "red": ["crimson", "scarlet", "cherry red"],
    "orange": ["tangerine", "bright orange"],
    "yellow": ["golden", "lemon yellow", "sunny yellow"],
    "green": ["emerald", "leafy green", "lime green"],
    "blue": ["azure", "cobalt blue", "bright blue"],
    "purple": ["violet", "lilac"],
    "pink": ["rose", "bubblegum pink"],
    "brown": ["dark brown", "chestnut brown"],
    "black": ["jet black", "pitch black"],
    "white": ["pure white", "bright white"],
    "grey": ["gray", "silver", "slate grey"],
}
COMBINATION_COLOURS = [
    "red", "orange", "yellow", "green", "teal", "blue", "purple", "pink", "brown", "black",
    "white", "grey", "golden", "silver", "crimson", "turquoise", "violet", "navy blue",
]  # fmt: skip
# Background colour names the corpus captions use ("on a plain teal background").
BACKGROUNDS = [
    "light grey", "dark grey", "black", "red", "pale pink", "pink", "orange", "peach", "yellow",
    "cream", "green", "mint green", "dark green", "teal", "sky blue", "pale blue", "blue",
    "navy blue", "purple", "lavender", "brown", "beige", "white",
]  # fmt: skip
# Background phrasings the captions never use.
NEW_BACKGROUNDS = [
    "on a pastel blue backdrop", "against a white background", "isolated on white",
    "on a plain white backdrop", "on a soft pink backdrop", "on a light grey backdrop",
    "on a mint backdrop", "over a pale yellow background", "on a cream-coloured background",
    "against a dark navy backdrop", "on a lavender backdrop", "with a sky blue background",
    "on a pastel green backdrop", "against a peach backdrop", "on a solid black background",
]  # fmt: skip
# The corpus's seven styles, as nouns ("a flat icon of ...") and as adjectives ("flat-style").
STYLE_NOUNS = [
    "3D render", "3D emoji", "3D illustration", "flat icon", "flat vector icon",
    "flat illustration", "glossy colour icon", "glossy gradient icon",
    "black and white line icon", "monochrome line drawing", "outlined flat emoji",
    "outlined cartoon icon", "cartoon emoji", "cartoon sticker", "clip art", "clipart drawing",
]  # fmt: skip
STYLE_SUFFIXES = [
    "3D", "in 3D", "3D style", "rendered in 3D", "3D emoji style", "flat style", "flat design",
    "flat vector", "glossy colour style", "glossy gradient style", "black and white line art",
    "monochrome outline", "line icon style", "with black outlines", "cartoon style",
    "clip art", "clip-art style",
]  # fmt: skip
IN_STYLES = [
    "3D", "3D style", "flat style", "flat design", "glossy colour style", "cartoon style",
    "clip-art style", "black and white line art", "outline style", "emoji style",
]  # fmt: skip
STYLE_ADJECTIVES = ["3D", "flat", "glossy", "cartoon", "line-art", "outlined", "clip-art"]
UNCOUNTABLE_STYLES = {"clip art", "clipart drawing"}


def article(phrase: str) -> str:
    """'a rocket', 'an apple', 'a unicorn', 'an hourglass', 'an OK hand'."""
    low = phrase.lower()
    if re.match(r"(uni|use|usu|eu|ewe|one\b|one-)", low):
        return "a " + phrase
    vowel = low[:1] in "aeiou" or re.match(r"(hour|honest|x-ray|ok\b)", low)
    return ("an " if vowel else "a ") + phrase


def is_plural(name: str) -> bool:
    """'cherries', 'people hugging' → True; 'thumbs up', 'man lifting weights', 'octopus' → False.

    Looks at the head noun: the words before a preposition, 'and' or a later '-ing' verb.
    """
    words = name.split()
    head = words[:1]
    for w in words[1:]:
        if w in ("with", "of", "in", "on", "behind", "under", "from", "without", "and", "at"):
            break
        if w.endswith("ing"):
            break
        head.append(w)
    last = head[-1]
    if last in ("people", "men", "women", "children"):
        return True
    return last.endswith("s") and not last.endswith(("ss", "us", "is", "os"))


def noun_phrase(name: str, concept: str | None = None) -> str:
    """'rocket' → 'a rocket'; 'cherries' → 'cherries'; ('purple popcorn', 'popcorn') → no article."""
    head = concept or name
    return name if is_plural(head) or head in NO_ARTICLE else article(name)


def style_phrase(style: str) -> str:
    """A style noun with its article: 'a flat icon', 'an outlined flat emoji', 'clip art'."""
    return style if style in UNCOUNTABLE_STYLES else article(style)


def recolour(name: str, rng: random.Random) -> str:
    """Swap a colour word in the name for a synonym: 'red apple' → 'crimson apple'."""
    words = name.split()
    for i, w in enumerate(words):
        if w in COLOUR_SYNONYMS:
            words[i] = rng.choice(COLOUR_SYNONYMS[w])
            return " ".join(words)
    return name


def has_colour(name: str) -> bool:
    return any(w in COLOUR_SYNONYMS or w == "teal" for w in name.split())


def background(rng: random.Random, avoid: str = "") -> str:
    """A corpus-style background: 'on a plain teal background' or a two-colour gradient."""
    names = [b for b in BACKGROUNDS if not avoid or (b not in avoid and avoid not in b)]
    if rng.random() < 0.25:
        a, b = rng.sample(names, 2)
        return f"on a gradient background from {a} to {b}"
    return f"on {article(rng.choice(names))} background"


# ---------------------------------------------------------------------------------------------
# concepts.jsonl
# ---------------------------------------------------------------------------------------------

# Everyday prompts that must be in the set: (prompt, concept, category).
COMMON = [
    ("a red apple", "red apple", "food"),
    ("a smiling cat face", "grinning cat", "animals"),
    ("a rocket", "rocket", "objects"),
    ("a thumbs up, dark skin tone, 3D", "thumbs up", "people"),
]


def colour_styles(pool: list[str]) -> list[str]:
    """The styles that draw in colour: a colour or a skin tone means nothing in line art."""
    mono = ("black and white", "monochrome", "line icon", "line art", "line-art", "line drawing")
    return [s for s in pool if not any(m in s for m in mono)]


def new_phrasing(c: Concept, rng: random.Random) -> str:
    """The concept alone, phrased differently from the corpus captions."""
    name = recolour(c.name, rng) if has_colour(c.name) and rng.random() < 0.6 else c.name
    np_ = noun_phrase(name, c.name)
    toned = c.toned and rng.random() < 0.4
    if toned:
        tone = rng.choice(TONES)
        np_ += rng.choice([f" with {tone} skin", f" ({tone} skin tone)"])
    if c.category in ("animals", "people") and not c.toned and rng.random() < 0.15:
        np_ = noun_phrase(f"cute {name}", c.name)
    colourful = toned or has_colour(c.name)
    nouns = colour_styles(STYLE_NOUNS) if colourful else STYLE_NOUNS
    suffixes = colour_styles(STYLE_SUFFIXES) if colourful else STYLE_SUFFIXES
    adjectives = colour_styles(STYLE_ADJECTIVES) if colourful else STYLE_ADJECTIVES
    bg = rng.choice(NEW_BACKGROUNDS)
    templates = [
        lambda: f"an illustration of {np_}",
        lambda: f"an illustration of {np_}, {rng.choice(suffixes)}",
        lambda: f"emoji of {np_}",
        lambda: f"icon showing {np_}",
        lambda: f"icon showing {np_}, {bg}",
        lambda: f"{np_} emoji, {rng.choice(suffixes)}",
        lambda: f"{rng.choice(adjectives)}-style {name} icon",
        lambda: f"{np_}, {rng.choice(suffixes)}, {bg}",
        lambda: f"{bg[0].upper()}{bg[1:]}: {np_}",
        lambda: f"{style_phrase(rng.choice(nouns))} of {np_}",
        lambda: f"a picture of {np_}, {rng.choice(suffixes)}",
        lambda: f"{np_}, drawn as {style_phrase(rng.choice(nouns))}",
        lambda: f"{np_}, {bg}",
        lambda: f"a simple {name} icon",
        lambda: f"{name} emoji",
        lambda: f"draw {np_}",
        lambda: f"{np_}, emoji style",
        lambda: f"{np_} as a sticker, {rng.choice(suffixes)}",
    ]
    return rng.choice(templates)()


def combination(c: Concept, rng: random.Random) -> str:
    """The concept with a colour, tone, style and background it is not captioned with."""
    nouns, suffixes = colour_styles(STYLE_NOUNS), colour_styles(STYLE_SUFFIXES)
    style = rng.choice(nouns)
    if c.toned:
        tone = rng.choice(TONES)
        np_ = f"{noun_phrase(c.name)} with {tone} skin tone"
        return rng.choice(
            [
                lambda: f"{np_}, {style}, {background(rng)}",
                lambda: f"{style_phrase(style)} of {np_}, {background(rng)}",
                lambda: f"{np_} {background(rng)}, {rng.choice(suffixes)}",
            ]
        )()
    plain = noun_phrase(c.name)
    if has_colour(c.name) or c.category == "people":
        # The name already fixes the colour (or a face has no colour to change): style + background.
        return rng.choice(
            [
                lambda: f"{plain}, {style}, {background(rng)}",
                lambda: f"{style_phrase(style)} of {plain} {background(rng)}",
                lambda: f"{plain} {background(rng)}, {rng.choice(suffixes)}",
            ]
        )()
    colour = rng.choice(COMBINATION_COLOURS)
    coloured = noun_phrase(f"{colour} {c.name}", c.name)
    return rng.choice(
        [
            lambda: f"{coloured}, {style}, {background(rng, colour)}",
            lambda: f"{style_phrase(style)} of {coloured}",
            lambda: f"{coloured} {background(rng, colour)}",
            lambda: f"{coloured} in {rng.choice(colour_styles(IN_STYLES))}",
            lambda: f"{plain}, {rng.choice(STYLE_NOUNS)}, {background(rng)}",
        ]
    )()


def concept_prompts(concepts: list[Concept], rng: random.Random) -> list[dict]:
    rows = [{"prompt": p, "concept": c, "category": cat, "kind": "seen-new-phrasing"} for p, c, cat in COMMON]
    taken = {c for _, c, _ in COMMON}
    seen = {r["prompt"] for r in rows}
    by_category = {cat: [c for c in concepts if c.category == cat] for cat in CATEGORIES}
    for cat, quota in CONCEPT_QUOTA.items():
        n = quota - sum(r["category"] == cat for r in rows)
        pool = [c for c in by_category[cat] if c.name not in taken]
        picks = rng.sample(pool, n) if len(pool) >= n else [rng.choice(pool) for _ in range(n)]
        n_combo = round(quota * COMBINATION_SHARE)
        kinds = ["combination"] * n_combo + ["seen-new-phrasing"] * (n - n_combo)
        rng.shuffle(kinds)
        for c, kind in zip(picks, kinds, strict=True):
            make = combination if kind == "combination" else new_phrasing
            prompt = make(c, rng)
            while prompt in seen:
                prompt = make(c, rng)
            seen.add(prompt)
            rows.append({"prompt": prompt, "concept": c.name, "category": cat, "kind": kind})
    head, tail = rows[: len(COMMON)], rows[len(COMMON) :]
    rng.shuffle(tail)
    return [{"id": f"concept-{i:04d}", **r} for i, r in enumerate(head + tail, 1)]


# ---------------------------------------------------------------------------------------------
# typography.jsonl
# ---------------------------------------------------------------------------------------------

SIGN_TEXTS = [
    "EXIT", "OPEN", "CLOSED", "PUSH", "PULL", "STOP", "ENTRANCE", "PARKING", "TOILETS",
    "RECEPTION", "SILENCE", "WELCOME", "DANGER", "CAUTION", "BAKERY", "PHARMACY", "LIBRARY",
    "EXIT NOW", "NO PARKING", "WET FLOOR", "STAFF ONLY", "KEEP OUT", "WELCOME HOME",
    "FRESH COFFEE", "GO SLOW", "NO ENTRY", "THANK YOU", "COME IN", "SOLD OUT", "FREE WIFI",
    "QUIET PLEASE", "PRIVATE ROAD", "PLEASE WAIT HERE", "NO DOGS ALLOWED", "MIND THE GAP",
    "WATCH YOUR STEP", "DO NOT ENTER", "FIRE EXIT ONLY", "ROAD WORK AHEAD", "BACK IN FIVE",
    "KEEP OFF THE GRASS", "BEWARE OF THE DOG", "PLEASE DO NOT DISTURB", "HOT DRINKS SERVED HERE",
    "OPEN SEVEN DAYS A WEEK", "PLEASE KEEP THIS DOOR CLOSED", "NO FOOD OR DRINK ALLOWED",
    "PLEASE RING THE BELL FOR SERVICE", "CHILDREN AT PLAY PLEASE DRIVE SLOWLY",
    "PLEASE TAKE OFF YOUR SHOES BEFORE ENTERING", "ALL VISITORS MUST REPORT TO THE FRONT DESK",
    "OPEN 24 HOURS", "EXIT 12", "GATE 7", "PLATFORM 4", "ROOM 101", "SPEED LIMIT 30",
    "AISLE 9", "ROUTE 66", "PARKING 2 HOURS ONLY", "NEXT EXIT 5 MILES",
]  # fmt: skip
# Two-line signs: (first line, second line).
SIGN_PAIRS = [
    ("NO PARKING", "TOW AWAY ZONE"), ("STOP", "CHILDREN CROSSING"), ("OPEN", "COME IN"),
    ("CLOSED", "BACK SOON"), ("WET FLOOR", "PLEASE WALK CAREFULLY"),
    ("PRIVATE PROPERTY", "KEEP OUT"), ("CAUTION", "ROAD WORK AHEAD"), ("DANGER", "HIGH VOLTAGE"),
    ("BAKERY", "FRESH BREAD DAILY"), ("LIBRARY", "PLEASE KEEP QUIET"),
    ("FRESH COFFEE", "HOT DRINKS SERVED HERE"), ("WELCOME", "PLEASE RING THE BELL FOR SERVICE"),
    ("PLEASE TAKE OFF YOUR SHOES BEFORE ENTERING", "THANK YOU"),
    ("ALL VISITORS MUST REPORT TO THE FRONT DESK", "THANK YOU"),
    ("NO PARKING", "VEHICLES WILL BE TOWED AT OWNERS EXPENSE"),
    ("PLEASE RING THE BELL FOR SERVICE", "WE WILL BE RIGHT WITH YOU"),
    ("PHARMACY", "OPEN 24 HOURS"), ("PARKING", "2 HOURS ONLY"), ("GATE 7", "DEPARTURES"),
    ("EXIT 12", "CITY CENTRE"), ("SPEED LIMIT 30", "DRIVE SLOWLY"),
    ("CHILDREN AT PLAY PLEASE DRIVE SLOWLY", "SPEED LIMIT 20"),
]  # fmt: skip
POSTER_TITLES = [
    "SUMMER SALE", "Jazz Night", "Grand Opening", "Farmers Market", "Book Fair", "Movie Night",
    "Spring Festival", "Save the Date", "Open Mic Night", "Lost Cat", "Yard Sale", "Bake Sale",
    "Art Show", "Winter Concert", "Science Fair", "Car Wash", "Garden Party", "Hello Summer",
    "Welcome Back", "Big Sale", "Film Club", "Dance Party", "Craft Fair", "Poetry Reading",
    "Food Festival", "Coffee Morning", "Fun Run", "Chess Club", "Rock Concert", "Flower Show",
    "Adopt a Pet", "Join the Choir", "Music", "Festival", "Theatre", "Sale", "Gallery",
    "Class of 2025", "Summer 2026", "Top 10 Hits", "Open Day 2026",
]  # fmt: skip
POSTER_SUBTITLES = [
    "today only", "free entry", "this weekend", "everyone welcome", "live music all night",
    "bring a friend", "doors open at seven", "tickets at the door", "in the town hall",
    "this Saturday in the park", "fresh food and local crafts", "join us for music and dancing",
    "free coffee for the first fifty guests", "fun for the whole family",
    "come early and stay late", "all money raised goes to the animal shelter",
    "every Friday night at the old library", "doors open at 7", "June 21 at the park",
    "tickets from 5 dollars", "doors open at 7 with live music",
]  # fmt: skip
LABEL_TEXTS = [
    "SALE", "NEW", "FRESH", "ORGANIC", "CLEARANCE", "SOLD", "GIFT", "HANDMADE", "HALF PRICE",
    "FRESH BREAD", "BEST SELLER", "HOT DEAL", "LAST ONE", "LOCAL HONEY", "TODAY ONLY",
    "FREE GIFT INSIDE", "BUY ONE GET ONE", "Special Offer", "Fresh Flowers", "Homemade Jam",
    "ONLY 3 LEFT", "SAVE 20", "2 FOR 1", "BUY 2 GET 1 FREE",
]  # fmt: skip
BADGE_TEXTS = [
    "NEW", "SALE", "BEST", "VIP", "HELLO", "WINNER", "CHAMPION", "HOT", "CERTIFIED", "OPEN",
    "TOP PICK", "BEST SELLER", "STAFF PICK", "FREE SHIPPING", "ECO FRIENDLY", "GOLD MEMBER",
    "TRY ME", "Thank You", "Best in Town", "Made with Love", "EST 1998", "SINCE 1985",
    "TOP 10", "Best Coffee in Town", "Voted Best in Town", "Handmade with Love",
    "Serving the Town Since 1985", "Open 7 Days a Week",
]  # fmt: skip
# (titles, labels): bar charts whose bars belong together.
BAR_CHARTS = [
    (["Sales", "Monthly Sales", "Sales by Region"], ["North", "South", "East", "West"]),
    (["Fruit Sales", "Favourite Fruit"], ["Apples", "Pears", "Plums", "Cherries", "Grapes"]),
    (["Top Pets", "Favourite Pets"], ["Cats", "Dogs", "Fish", "Birds", "Rabbits"]),
    (["Votes", "Class Vote"], ["Anna", "Ben", "Chloe", "David"]),
    (["Weekly Steps"], ["Monday", "Tuesday", "Wednesday", "Thursday", "Friday"]),
    (["Rainfall", "Rainfall by Season"], ["Spring", "Summer", "Autumn", "Winter"]),
    (["Team Scores"], ["Lions", "Tigers", "Bears", "Wolves"]),
    (["Favourite Colours"], ["Red", "Blue", "Green", "Purple", "Orange"]),
    (["Energy Use", "Power Sources"], ["Solar", "Wind", "Coal", "Gas"]),
    (["Website Visits"], ["Search", "Social", "Email", "Direct"]),
    (
        ["Visitors by City", "City Visitors"],
        ["New York", "Los Angeles", "San Francisco", "Chicago"],
    ),
    (["Steps Walked per Week"], ["Week One", "Week Two", "Week Three", "Week Four"]),
    (
        ["Revenue", "Yearly Revenue", "Members Joined per Year"],
        ["2021", "2022", "2023", "2024", "2025"],
    ),
]
INFOGRAPHIC_STEPS = [
    ["Plan", "Build", "Ship"], ["Research", "Design", "Test", "Launch"], ["Wash", "Rinse", "Dry"],
    ["Mix", "Bake", "Serve"], ["Learn", "Practice", "Teach"], ["Sketch", "Draft", "Edit", "Publish"],
    ["Sign Up", "Choose Plan", "Pay"], ["Sort", "Clean", "Recycle"], ["Order", "Pack", "Deliver"],
    ["Idea", "Prototype", "Feedback", "Launch"], ["Plant", "Water", "Harvest"],
    ["Listen", "Think", "Speak"], ["Measure", "Cut", "Sand", "Paint"],
    ["Warm Up", "Stretch", "Run", "Cool Down"], ["Collect Data", "Analyse", "Report"],
    ["Boil Water", "Add Tea", "Wait", "Enjoy"], ["Before", "After"], ["Problem", "Solution"],
    ["Collect Data", "Clean Data", "Train Model", "Test Model"],
    ["Choose Seeds", "Plant Seeds", "Water Daily", "Pick Flowers"],
    ["Read", "Write", "Share", "Repeat", "Relax"],
]  # fmt: skip
INFOGRAPHIC_TITLES = [
    "How It Works", "Getting Started", "Our Process", "Simple Steps", "Quick Guide",
    "Step by Step", "The Process",
]  # fmt: skip
FLOWCHART_NODES = [
    ["Idea", "Launch"], ["Start", "Finish"], ["Start", "Check", "End"],
    ["Idea", "Design", "Build", "Launch"], ["Question", "Research", "Answer"],
    ["Order", "Payment", "Delivery"], ["Login", "Dashboard"], ["Draft", "Review", "Publish"],
    ["Input", "Process", "Output"], ["Plan", "Do", "Check", "Act"],
    ["Apply", "Interview", "Offer"], ["Report Bug", "Fix Bug", "Run Tests", "Ship Release"],
    ["Sign In", "Browse", "Check Out"], ["Wake Up", "Make Coffee", "Start Work"],
    ["New Lead", "First Call", "Send Quote", "Close Deal"],
]  # fmt: skip
FLOWCHART_TITLES = ["Our Workflow", "The Process", "How It Works", "Decision Flow"]
NUMBER_WORDS = ["two", "three", "four", "five"]
SCENE_COLOURS = [
    "red", "orange", "yellow", "green", "teal", "blue", "navy blue", "purple", "pink", "brown",
    "black", "white", "cream", "sky blue", "mint green", "peach", "dark grey",
]  # fmt: skip
LETTERING = [
    "bold lettering", "handwritten lettering", "clean sans-serif lettering",
    "elegant serif lettering", "retro script lettering", "tall condensed letters",
    "monospace font", "in big bold letters", "white text",
]  # fmt: skip
KINDS = ["poster", "sign", "label", "badge", "infographic", "flowchart", "bar chart"]
# Share of each kind's prompts whose quoted text totals 1-3, 4-8 and 9-12 words.
WORD_BUCKETS = {
    "poster": (0.35, 0.45, 0.20),
    "sign": (0.55, 0.35, 0.10),
    "label": (0.85, 0.15, 0.0),
    "badge": (0.90, 0.10, 0.0),
    "infographic": (0.35, 0.45, 0.20),
    "flowchart": (0.45, 0.45, 0.10),
    "bar chart": (0.30, 0.50, 0.20),
}
BUCKET_RANGES = [(1, 3), (4, 8), (9, 12)]
DIGIT_SHARE = 0.2  # of all typography prompts; only kinds whose banks hold numbers get them
CURLY_SHARE, SINGLE_SHARE = 0.15, 0.05


def q(text: str) -> str:
    return f'"{text}"'


SMALL_WORDS = {"a", "an", "the", "and", "or", "of", "at", "for", "in", "on", "to", "with", "from"}


def titlecase(text: str) -> str:
    """'join us for music and dancing' → 'Join Us for Music and Dancing'."""
    words = text.split()
    return " ".join(w if i and w in SMALL_WORDS else w[:1].upper() + w[1:] for i, w in enumerate(words))


def cased(text: str, rng: random.Random, lower_ok: bool = False) -> str:
    """Upper-case or title-case a bank phrase (subtitles may also stay lower-case)."""
    options = [text.upper(), text if text[:1].isupper() else titlecase(text)]
    return rng.choice([*options, text] if lower_ok else options)


def join_and(items: list[str]) -> str:
    return items[0] if len(items) == 1 else ", ".join(items[:-1]) + " and " + items[-1]


def finish(prompt: str, rng: random.Random, colour: str = "") -> str:
    """Maybe add lettering and a background (never the sign's own colour), as captions do."""
    r = rng.random()
    bg = article(rng.choice([c for c in SCENE_COLOURS if c != colour]))
    if r < 0.3:
        return f"{prompt}, {rng.choice(LETTERING)}, on {bg} background"
    if r < 0.5:
        return f"{prompt}, {rng.choice(LETTERING)}"
    if r < 0.7:
        return f"{prompt} on {bg} background"
    return prompt


def poster(rng: random.Random) -> tuple[str, list[str]]:
    title = cased(rng.choice(POSTER_TITLES), rng)
    colour = rng.choice(SCENE_COLOURS)
    if rng.random() < 0.55:
        sub = cased(rng.choice(POSTER_SUBTITLES), rng, lower_ok=True)
        prompt = rng.choice(
            [
                f"a poster with the title {q(title)} and the subtitle {q(sub)}",
                f"a {colour} poster titled {q(title)} with {q(sub)} underneath",
                f"poster: {q(title)} in large letters, {q(sub)} below it",
                f"a poster that says {q(title)} and, in smaller text, {q(sub)}",
                f"an event poster with the words {q(title)} and {q(sub)}",
            ]
        )
        return finish(prompt, rng, colour), [title, sub]
    prompt = rng.choice(
        [
            f"a poster titled {q(title)}",
            f"a {colour} poster that says {q(title)}",
            f"a poster with the words {q(title)}",
            f"a retro poster with the text {q(title)}",
            f"poster with {q(title)} written across the middle",
        ]
    )
    return finish(prompt, rng, colour), [title]


def sign(rng: random.Random) -> tuple[str, list[str]]:
    colour = rng.choice(SCENE_COLOURS)
    text = rng.choice(SIGN_TEXTS)
    if rng.random() < 0.25:
        text, second = rng.choice(SIGN_PAIRS)
        prompt = rng.choice(
            [
                f"a {colour} sign with two lines: {q(text)} and {q(second)}",
                f"a sign that says {q(text)} on top and {q(second)} below",
            ]
        )
        return finish(prompt, rng, colour), [text, second]
    prompt = rng.choice(
        [
            f"{article(colour)} sign that says {q(text)}",
            f"a sign reading {q(text)}",
            f"a street sign with the words {q(text)}",
            f"a shop sign saying {q(text)}",
            f"{article(colour)} signboard with {q(text)} written on it",
            f"a road sign: {q(text)}",
        ]
    )
    return finish(prompt, rng, colour), [text]


def label(rng: random.Random) -> tuple[str, list[str]]:
    colour = rng.choice(SCENE_COLOURS)
    text = cased(rng.choice(LABEL_TEXTS), rng)
    prompt = rng.choice(
        [
            f"{article(colour)} price tag label with the word {q(text)}",
            f"a price tag that says {q(text)}",
            f"a label reading {q(text)}",
            f"{article(colour)} tag with the text {q(text)}",
            f"a price label with the words {q(text)}",
            f"a shop label: {q(text)}",
        ]
    )
    return finish(prompt, rng, colour), [text]


def badge(rng: random.Random) -> tuple[str, list[str]]:
    colour = rng.choice(SCENE_COLOURS)
    text = cased(rng.choice(BADGE_TEXTS), rng)
    prompt = rng.choice(
        [
            f"a round {colour} badge that says {q(text)}",
            f"a circular badge with the word {q(text)}",
            f"a round sticker reading {q(text)}",
            f"{article(colour)} badge labelled {q(text)}",
            f"a round emblem with {q(text)} in the middle",
            f"a badge with the text {q(text)}",
        ]
    )
    return finish(prompt, rng, colour), [text]


def bar_chart(rng: random.Random) -> tuple[str, list[str]]:
    titles, labels = rng.choice(BAR_CHARTS)
    title = rng.choice(titles)
    bars = labels[: rng.randint(2, len(labels))]
    quoted = [q(b) for b in bars]
    prompt = rng.choice(
        [
            f"a bar chart titled {q(title)} with bars labelled {', '.join(quoted)}",
            f"a bar chart with the title {q(title)} and bars for {join_and(quoted)}",
            f"bar graph titled {q(title)}: bars {', '.join(quoted)}",
            f"a simple bar chart called {q(title)} comparing {join_and(quoted)}",
        ]
    )
    return finish(prompt, rng), [title, *bars]


def infographic(rng: random.Random) -> tuple[str, list[str]]:
    steps = rng.choice(INFOGRAPHIC_STEPS)
    n = len(steps)
    count = rng.choice([str(n), NUMBER_WORDS[n - 2]])
    r = rng.random()
    if r < 0.25:
        title = rng.choice(INFOGRAPHIC_TITLES)
        prompt = f"an infographic titled {q(title)} with {count} steps: {', '.join(steps)}"
        return finish(prompt, rng), [title, *steps]
    if r < 0.45:
        quoted = [q(s) for s in steps]
        prompt = f"an infographic showing the steps {join_and(quoted)}"
        return finish(prompt, rng), steps
    prompt = rng.choice(
        [
            f"an infographic with {count} steps: {', '.join(steps)}",
            f"a step-by-step infographic: {', '.join(steps)}",
            f"a {count}-step process infographic: {' then '.join(steps)}",
        ]
    )
    return finish(prompt, rng), steps


def flowchart(rng: random.Random) -> tuple[str, list[str]]:
    nodes = rng.choice(FLOWCHART_NODES)
    quoted = [q(n) for n in nodes]
    r = rng.random()
    if r < 0.15:
        title = rng.choice(FLOWCHART_TITLES)
        prompt = f"a flowchart titled {q(title)} from {' to '.join(quoted)}"
        return finish(prompt, rng), [title, *nodes]
    if r < 0.3:
        prompt = f"a simple flowchart: {', '.join(nodes)}"
        return finish(prompt, rng), nodes
    prompt = rng.choice(
        [
            f"a flowchart from {' to '.join(quoted)}",
            f"a flowchart with the boxes {join_and(quoted)} connected by arrows",
            f"a flowchart that goes {', then '.join(quoted)}",
            f"a flow diagram: {' leads to '.join(quoted)}",
        ]
    )
    return finish(prompt, rng), nodes


SCENES = {
    "poster": poster,
    "sign": sign,
    "label": label,
    "badge": badge,
    "infographic": infographic,
    "flowchart": flowchart,
    "bar chart": bar_chart,
}


def words_of(texts: list[str]) -> list[str]:
    """Every target word: split on whitespace, punctuation stripped off each end."""
    words = (w.strip(".,:;!?'\"()\u201c\u201d") for t in texts for w in t.split())
    return [w for w in words if w]


def requote(prompt: str, style: str) -> str:
    """Turn the straight double quotes into curly “…” or single '…' quotes."""
    if style == "curly":
        return re.sub(r'"([^"]*)"', "\u201c\\1\u201d", prompt)
    if style == "single":
        return re.sub(r'"([^"]*)"', r"'\1'", prompt)
    return prompt


def typography_prompts(rng: random.Random) -> list[dict]:
    n = TYPOGRAPHY_PER_KIND * len(KINDS)
    kinds = [k for k in KINDS for _ in range(TYPOGRAPHY_PER_KIND)]
    rng.shuffle(kinds)
    # Exactly DIGIT_SHARE of prompts spell a number, drawn from the kinds whose banks have some.
    numeric = [i for i, k in enumerate(kinds) if k in ("poster", "sign", "label", "badge", "bar chart")]
    digit = set(rng.sample(numeric, int(DIGIT_SHARE * n)))
    quotes = ["curly"] * round(CURLY_SHARE * n) + ["single"] * round(SINGLE_SHARE * n)
    quotes += ["straight"] * (n - len(quotes))
    rng.shuffle(quotes)
    rows, seen = [], set()
    for i, kind in enumerate(kinds):
        lo, hi = BUCKET_RANGES[rng.choices(range(3), WORD_BUCKETS[kind])[0]]
        for _ in range(5000):
            prompt, text = SCENES[kind](rng)
            prompt = requote(prompt, quotes[i])
            count = len(words_of(text))
            has_digit = any(ch.isdigit() for t in text for ch in t)
            if lo <= count <= hi and has_digit == (i in digit) and prompt not in seen:
                break
        else:
            raise RuntimeError(f"no {kind} prompt with {lo}-{hi} words (digits: {i in digit})")
        seen.add(prompt)
        rows.append(
            {
                "id": f"typo-{i + 1:04d}",
                "prompt": prompt,
                "text": text,
                "words": words_of(text),
                "kind": kind,
                "category": "text",
            }
        )
    return rows


# ---------------------------------------------------------------------------------------------
# skin_tones.jsonl
# ---------------------------------------------------------------------------------------------

# Every concept in every tone, so tone is never confounded with subject.
SKIN_CONCEPTS = [
    "waving hand", "thumbs up", "OK hand", "victory hand", "clapping hands", "raised fist",
    "folded hands", "flexed biceps", "raised hand", "baby", "person raising hand",
    "woman technologist", "man farmer", "woman teacher", "man cook",
]  # fmt: skip
# Styles that draw skin in colour (the high-contrast set is monochrome, so it is left out).
SKIN_STYLES = [
    "3D render", "flat icon", "cartoon emoji", "3D illustration", "glossy colour icon",
    "flat design emoji", "3D emoji", "outlined flat emoji",
]  # fmt: skip
SKIN_STYLE_ADJECTIVES = {
    "3D render": "3D", "flat icon": "flat", "cartoon emoji": "cartoon", "3D illustration": "3D",
    "glossy colour icon": "glossy", "flat design emoji": "flat", "3D emoji": "3D",
    "outlined flat emoji": "outlined",
}  # fmt: skip


def skin_tone_prompts(rng: random.Random) -> list[dict]:
    rows, seen = [], set()
    for ci, name in enumerate(SKIN_CONCEPTS):
        np_ = noun_phrase(name)
        for ti, tone in enumerate(TONES):
            style = SKIN_STYLES[(ci + ti) % len(SKIN_STYLES)]
            adjective = SKIN_STYLE_ADJECTIVES[style]
            templates = [
                f"{np_} with {tone} skin tone, {style}",
                f"{name}, {tone} skin tone, {style}",
                f"{style_phrase(style)} of {np_} with {tone} skin tone",
                f"{noun_phrase(f'{adjective} {name}', name)} emoji, {tone} skin tone",
                f"{np_} ({tone} skin tone), {style}, on a white background",
                f"{name} emoji with {tone} skin tone, {adjective} style",
                f"{np_} with {tone} skin, {style}",
            ]
            prompt = rng.choice(templates)
            while prompt in seen:
                prompt = rng.choice(templates)
            seen.add(prompt)
            rows.append({"prompt": prompt, "tone": tone, "concept": name, "category": "people"})
    rng.shuffle(rows)
    return [{"id": f"skin-{i:04d}", **r} for i, r in enumerate(rows, 1)]


# ---------------------------------------------------------------------------------------------
# Checks and output
# ---------------------------------------------------------------------------------------------

QUOTED = re.compile(r'"([^"]*)"|\u201c([^\u201d]*)\u201d|(?<![A-Za-z])\'([^\']*)\'')


def validate(concepts: list[dict], typography: list[dict], skin: list[dict], known: list[Concept] | None) -> None:
    """Fail loudly if a set is short, repeats itself or disagrees with its own fields."""
    for rows, prefix, minimum in (
        (concepts, "concept-", 320),
        (typography, "typo-", 220),
        (skin, "skin-", 60),
    ):
        assert len(rows) >= minimum, f"{prefix}: {len(rows)} < {minimum}"
        assert len({r["id"] for r in rows}) == len(rows), f"{prefix}: duplicate ids"
        assert all(r["id"].startswith(prefix) for r in rows)
        prompts = [r["prompt"] for r in rows]
        assert len(set(prompts)) == len(prompts), f"{prefix}: duplicate prompts"

    kinds = Counter(r["kind"] for r in concepts)
    assert set(kinds) == {"seen-new-phrasing", "combination"}
    assert 0.25 <= kinds["combination"] / len(concepts) <= 0.35, kinds
    assert {r["category"] for r in concepts} == set(CATEGORIES)
    for p, c, _ in COMMON:
        assert any(r["prompt"] == p and r["concept"] == c for r in concepts), p
    if known is not None:
        names = {c.name for c in known} | {c for _, c, _ in COMMON}
        missing = {r["concept"] for r in concepts} - names
        assert not missing, f"concepts not in emojibase: {missing}"
        toned = {c.name for c in known if c.toned}
        assert set(SKIN_CONCEPTS) <= toned, set(SKIN_CONCEPTS) - toned

    for r in typography:
        assert r["kind"] in KINDS and r["category"] == "text"
        assert 1 <= len(r["words"]) <= 12, r
        assert r["words"] == words_of(r["text"]), r
        quoted = [next(g for g in m.groups() if g is not None) for m in QUOTED.finditer(r["prompt"])]
        listed = r["prompt"].split(":", 1)[1] if ":" in r["prompt"] else ""
        unquoted = [t for t in r["text"] if t not in quoted]
        assert quoted == [t for t in r["text"] if t in quoted], r  # quoted ones, in order
        assert all(t in listed for t in unquoted), r
        assert all(re.fullmatch(r"[A-Za-z0-9 ]+", t) for t in r["text"]), r
    counts = Counter(len(r["words"]) for r in typography)
    few = sum(v for k, v in counts.items() if k <= 3)
    many = sum(v for k, v in counts.items() if k >= 9)
    assert few / len(typography) >= 0.45 and 0.05 <= many / len(typography) <= 0.2, counts
    with_digits = sum(any(ch.isdigit() for t in r["text"] for ch in t) for r in typography)
    assert with_digits / len(typography) <= 0.2 + 1e-9, with_digits
    curly = sum("\u201c" in r["prompt"] for r in typography)
    assert 0.1 <= curly / len(typography) <= 0.2, curly

    tones = Counter(r["tone"] for r in skin)
    assert set(tones) == set(TONES) and len(set(tones.values())) == 1, tones
    for r in skin:  # "light skin" must not match inside "medium-light skin"
        assert re.search(rf"(?<![\w-]){r['tone']} skin", r["prompt"]), r
        assert r["category"] == "people" and r["concept"] in SKIN_CONCEPTS, r


def write_jsonl(path: Path, rows: list[dict]) -> None:
    lines = (json.dumps(r, ensure_ascii=False) + "\n" for r in rows)
    path.write_text("".join(lines), encoding="utf-8", newline="\n")


def main() -> None:
    known, found = load_concepts()
    concepts = concept_prompts(known, random.Random(SEED))
    typography = typography_prompts(random.Random(SEED + 1))
    skin = skin_tone_prompts(random.Random(SEED + 2))
    validate(concepts, typography, skin, known if found else None)
    for name, rows in (
        ("concepts.jsonl", concepts),
        ("typography.jsonl", typography),
        ("skin_tones.jsonl", skin),
    ):
        write_jsonl(HERE / name, rows)
        print(f"{name}: {len(rows)} prompts")
    source = "emojibase-data" if found else "the built-in fallback list"
    print(f"concept names from {source} ({len(known)} usable)")


if __name__ == "__main__":
    main()
