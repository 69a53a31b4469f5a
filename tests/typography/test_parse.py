import pytest

from limner.typography.parse import parse


@pytest.mark.parametrize(
    ("prompt", "spans", "kind"),
    [
        ('a poster with the title "SUMMER SALE"', ["SUMMER SALE"], "poster"),
        (
            "a poster with the title “Summer Sale” and the subtitle “today only”",
            ["Summer Sale", "today only"],
            "poster",
        ),
        ("a badge 'OPEN 24/7' in neon", ["OPEN 24/7"], "badge"),
        ("a sign «BIENVENUE» on a door", ["BIENVENUE"], "sign"),
        ("a green sign that says EXIT NOW, on a white background", ["EXIT NOW"], "sign"),
        ("a book cover titled Moon River", ["Moon River"], "poster"),
        ("a label with the words Fresh Bread", ["Fresh Bread"], "label"),
        ("an infographic with three steps: Plan, Build, Ship", ["Plan", "Build", "Ship"], "infographic"),
        ("a flowchart from Idea to Design to Launch", ["Idea", "Design", "Launch"], "flowchart"),
        ('a flow diagram: "Idea" leads to "Design" leads to "Build"', ["Idea", "Design", "Build"], "flowchart"),
        ('a bar chart titled "Sales" with bars: North, South, East', ["Sales", "North", "South", "East"], "bar chart"),
    ],
)
def test_finds_the_spans_and_the_kind(prompt, spans, kind):
    p = parse(prompt)
    assert p.spans == spans
    assert p.kind == kind


def test_apostrophes_are_not_quotes():
    assert parse("a cat's toy, 3D render").spans == []
    assert parse("don't panic, it's a rocket").spans == []
    assert parse("a poster saying 'it's open'").spans == ["it's open"]


def test_quotes_inside_quotes_belong_to_the_outer_span():
    assert parse("“He said 'hi' to me” on a poster").spans == ["He said 'hi' to me"]
    assert parse("a sign 'the \"best\" cafe'").spans == ['the "best" cafe']


def test_line_breaks_inside_a_span():
    assert parse('a sign with "LINE ONE\\nLINE TWO"').spans == ["LINE ONE\nLINE TWO"]


def test_the_scene_is_the_prompt_without_its_text():
    p = parse('a red poster with the title "OPEN LATE", bold lettering')
    assert "OPEN" not in p.scene and "red poster" in p.scene


def test_infographic_title_is_the_quoted_heading():
    p = parse("an infographic titled “Getting Started” with three steps: Learn, Practice, Teach")
    assert p.title == "Getting Started"
    assert p.spans == ["Getting Started", "Learn", "Practice", "Teach"]


def test_style_words_after_the_items_are_not_items():
    p = parse("a step-by-step infographic: Read, Write, Share, tall condensed letters")
    assert p.spans == ["Read", "Write", "Share"]


def test_no_text_no_kind():
    p = parse("a red apple, 3D render")
    assert not p.has_text and p.kind is None and p.scene == "a red apple, 3D render"


def test_chart_title_is_the_span_introduced_by_titled():
    p = parse('bar graph titled "Members Joined per Year": bars "2021", "2022", handwritten lettering')
    assert p.kind == "bar chart"
    assert p.title == "Members Joined per Year"
    assert p.spans == ["Members Joined per Year", "2021", "2022"]
    assert parse("a bar chart with the title “Revenue” and bars for “2021” and “2022”").title == "Revenue"
    assert (
        parse('a simple bar chart called "City Visitors" comparing "New York" and "Chicago"').title == "City Visitors"
    )
    assert parse('a poster titled "Hi" and "Yo"').title is None  # posters have no separate title
