"""The Image Creator's routes in-process: what a refused request costs (nothing), edits' masks,
cancelling, history search and pages (``limner.server.web``)."""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Callable

import pytest
from fastapi import FastAPI
from PIL import Image
from sqlalchemy import func, select
from web_helpers import Account, png, wait_job

from limner.server.web.history import PER_PAGE
from limner.store.allowances import boosts_left
from limner.store.db import Creation, Job, StoredFile, User


def boosts_of(app: FastAPI, a: Account) -> int:
    with app.state.db.session() as s:
        user = s.scalar(select(User).where(User.email == a.email))
        return boosts_left(user, app.state.settings.creator_daily_boosts)


def jobs_of(app: FastAPI, a: Account) -> int:
    with app.state.db.session() as s:
        user_id = s.scalar(select(User.id).where(User.email == a.email))
        return s.scalar(select(func.count(Job.id)).where(Job.user_id == user_id)) or 0


@pytest.mark.parametrize(
    ("form", "message"),
    [
        ({"prompt": "a nude statue"}, "This prompt was blocked."),
        ({"prompt": "an apple", "style": "oil painting"}, "Unknown style."),
        ({"prompt": "an apple", "size": "100x100"}, "model tiny makes 128x128, 32x32 images, not 100x100"),
        ({"prompt": "an apple", "model": "nope"}, "unknown model"),
    ],
    ids=["blocked", "style", "size", "model"],
)
def test_a_refused_create_costs_no_boost(
    app: FastAPI, account: Callable[[], Account], form: dict, message: str
) -> None:
    a = account()
    r = a.post("/create", **form)
    assert r.status_code == 400
    assert message in r.text
    assert f">{form['prompt']}</textarea>" in r.text  # the prompt stays in the box
    assert boosts_of(app, a) == app.state.settings.creator_daily_boosts
    assert jobs_of(app, a) == 0


def test_create_uses_the_style_and_records_the_settings(app: FastAPI, account: Callable[[], Account]) -> None:
    a = account()
    job = a.post("/create", prompt="an apple", style="flat icon", size="32x32").headers["location"].split("/")[-1]
    state = wait_job(app, job)
    assert state["status"] == "done"
    with app.state.db.session() as s:
        row = s.get(Job, job)
        assert (row.kind, row.lane, row.prompt) == ("create", "fast", "an apple, flat icon")
        assert row.settings == {
            **dict.fromkeys(("model", "negative_prompt", "seed", "n", "steps", "guidance", "sampler"), ""),
            **{"prompt": "an apple", "style": "flat icon", "size": "32x32"},
        }
        made = list(s.scalars(select(Creation).where(Creation.job_id == job).order_by(Creation.seed)))
    assert [c.params["size"] for c in made] == ["32x32"] * 4
    assert [c.seed for c in made] == list(range(made[0].seed, made[0].seed + 4))
    page = a.client.get(f"/jobs/{job}").text
    assert re.findall(r'href="/images/(img-[0-9a-f]+)"', page) == [c.id for c in made]  # in seed order
    assert boosts_of(app, a) == app.state.settings.creator_daily_boosts - 1


def test_the_advanced_panel_sets_the_request_and_make_again_fills_it_in(
    app: FastAPI, account: Callable[[], Account]
) -> None:
    a = account()
    form = {"prompt": "a kite", "negative_prompt": "clouds", "seed": "77", "n": "2", "steps": "3", "guidance": "2.5"}
    job = a.post("/create", **form, sampler="heun").headers["location"].split("/")[-1]
    assert wait_job(app, job)["status"] == "done"
    with app.state.db.session() as s:
        spec = s.get(Job, job).request
        made = list(s.scalars(select(Creation).where(Creation.job_id == job).order_by(Creation.seed)))
    assert {
        k: spec[k] for k in ("negative_prompt", "seed", "n", "num_inference_steps", "guidance_scale", "sampler")
    } == {
        "negative_prompt": "clouds",
        "seed": 77,
        "n": 2,
        "num_inference_steps": 3,
        "guidance_scale": 2.5,
        "sampler": "heun",
    }
    assert [c.seed for c in made] == [77, 78]
    page = a.client.get(f"/jobs/{job}").text
    assert f'href="/?again={job}"' in page and "Seed 77" in page
    again = a.client.get(f"/?again={job}").text
    assert re.search(r'<details id="advanced"\s+open>', again)
    for name, value in [*form.items()][1:]:
        if name != "n":
            assert f'name="{name}" id="{name}"' in again and f'value="{value}"' in again
    assert '<option value="heun" selected>' in again and '<option value="2" selected>' in again
    # someone else's job fills in nothing
    assert 'value="77"' not in account().client.get(f"/?again={job}").text


@pytest.mark.parametrize(
    ("field", "value", "message"),
    [
        ("seed", "-1", "Seed must be a whole number from 0 to 9223372036854775807."),
        ("seed", "1.5", "Seed must be a whole number"),
        ("n", "5", "Number of images must be a whole number from 1 to 4."),
        ("steps", "0", "Steps must be a whole number from 1 to 200."),
        ("guidance", "31", "Guidance must be a number from 0 to 30."),
        ("guidance", "nan", "Guidance must be a number from 0 to 30."),
        ("sampler", "ddim", "Unknown sampler; choose one of euler, heun, dpmpp_2m."),
    ],
)
def test_a_bad_advanced_field_is_named_and_what_was_typed_stays(
    app: FastAPI, account: Callable[[], Account], field: str, value: str, message: str
) -> None:
    a = account()
    r = a.post("/create", prompt="an apple", **{field: value})
    assert r.status_code == 400 and message in r.text
    assert ">an apple</textarea>" in r.text
    assert jobs_of(app, a) == 0


def test_the_arena_is_hidden_while_one_model_is_configured(account: Callable[[], Account]) -> None:
    a = account()
    assert 'href="/arena"' not in a.client.get("/").text
    page = a.client.get("/arena").text
    assert "The arena needs two models" in page and "/static/arena.js" not in page


@pytest.fixture
def image(app: FastAPI, account: Callable[[], Account]) -> tuple[Account, str]:
    a = account()
    creations = wait_job(app, a.create())["creations"]
    return a, creations[0]


@pytest.mark.parametrize(
    ("mask", "message"),
    [
        (None, "Paint the area to change first."),  # no file
        (b"not an image", "could not be read"),  # said as it is, not as "paint first"
        (png(Image.new("L", (128, 128))), "Paint the area to change first."),  # nothing painted
        (png(Image.new("L", (4097, 4097), 255)), "larger than any image"),
    ],
    ids=["no-file", "not-an-image", "nothing-painted", "too-large"],
)
def test_an_edit_needs_a_painted_mask(
    app: FastAPI, image: tuple[Account, str], mask: bytes | None, message: str
) -> None:
    a, image_id = image
    files = {"mask": ("mask.png", mask, "image/png")} if mask is not None else None
    r = a.client.post(f"/images/{image_id}/edit", data={"csrf_token": a.csrf, "prompt": "a pear"}, files=files)
    assert r.status_code == 400
    assert message in r.text
    assert jobs_of(app, a) == 1


def test_an_edit_prompt_too_long_is_refused_not_cut(app: FastAPI, image: tuple[Account, str]) -> None:
    a, image_id = image
    files = {"mask": ("mask.png", png(Image.new("L", (128, 128), 255)), "image/png")}
    data = {"csrf_token": a.csrf, "prompt": "a pear " * 400}  # 2,800 characters
    r = a.client.post(f"/images/{image_id}/edit", data=data, files=files)
    assert r.status_code == 400 and "longer than 2000 characters" in r.text
    assert jobs_of(app, a) == 1


def test_cancelling_a_running_job_gives_the_boost_back(app: FastAPI, account: Callable[[], Account]) -> None:
    a = account()
    backend = app.state.engine.backend("tiny")
    backend.step_delay = 0.2
    try:
        job = a.create()
        assert boosts_of(app, a) == app.state.settings.creator_daily_boosts - 1
        r = a.post(f"/jobs/{job}/cancel")
        assert (r.status_code, r.headers["location"]) == (303, f"/jobs/{job}")
        state = wait_job(app, job)
    finally:
        backend.step_delay = 0.0
    assert (state["status"], state["creations"]) == ("cancelled", [])
    assert boosts_of(app, a) == app.state.settings.creator_daily_boosts
    assert '<span id="status" role="status" aria-live="polite">Cancelled</span>' in a.client.get(f"/jobs/{job}").text


def test_history_pages_and_searches_literally(app: FastAPI, account: Callable[[], Account]) -> None:
    a = account()
    with app.state.db.session() as s:
        user_id = s.scalar(select(User.id).where(User.email == a.email))
        s.add(Job(id="job-history", user_id=user_id, kind="create", prompt="-", lane="slow", status="done"))
        prompts = [f"apple number {i}" for i in range(PER_PAGE + 5)] + ["100% sure_thing"]
        start = dt.datetime(2026, 1, 1)
        for i in range(len(prompts)):
            s.add(StoredFile(id=f"file-h{i}", user_id=user_id, mime="image/png", path="/nonexistent", bytes=0))
        s.flush()  # parents first: no ORM relationships tell the session the order
        for i, prompt in enumerate(prompts):
            s.add(
                Creation(
                    id=f"img-h{i:03d}",
                    user_id=user_id,
                    job_id="job-history",
                    file_id=f"file-h{i}",
                    prompt=prompt,
                    seed=i,
                    model="tiny",
                    params={},
                    created=start + dt.timedelta(minutes=i),
                )
            )

    def shown(url: str) -> list[str]:
        return re.findall(r'<p class="caption">([^<]+)</p>', a.client.get(url).text)

    first, second = shown("/history"), shown("/history?page=2")
    assert first[0] == "100% sure_thing" and len(first) == PER_PAGE  # newest first
    assert second == [f"apple number {i}" for i in reversed(range(6))]
    assert "Page 1 of 2" in a.client.get("/history").text
    assert shown("/history?q=NUMBER+2") == [f"apple number {i}" for i in (28, 27, 26, 25, 24, 23, 22, 21, 20, 2)]
    assert shown("/history?q=%25") == ["100% sure_thing"]  # % and _ are letters here, not wildcards
    assert shown("/history?q=u_e") == []
    assert shown("/history?q=e_th") == ["100% sure_thing"]
    assert "0 images matching" in a.client.get("/history?q=zebra").text
    assert a.client.get("/history?page=0").status_code == 400
