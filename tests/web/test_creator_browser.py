"""The Image Creator in a real browser (headless Chromium) against the real server: sign up and in,
create, watch progress, history, detail, download, moderation, boosts, masked edits, delete."""

from __future__ import annotations

import io
import json
import re
from collections.abc import Iterator

import numpy as np
import pytest
from PIL import Image
from web_helpers import PASSWORD, STEPS, LiveServer, browser_create, browser_sign_up, wait_results

pytestmark = pytest.mark.browser


def fetch_image(page, url: str) -> tuple[Image.Image, bytes]:
    """GET with the page's cookies; → (the decoded image, the raw bytes)."""
    r = page.request.get(url)
    assert r.ok, (url, r.status)
    data = r.body()
    img = Image.open(io.BytesIO(data))
    img.load()
    return img, data


def boosts(page) -> int:
    return int(page.get_by_test_id("boosts").locator("#boost-count").inner_text())


def test_sign_up_sign_out_and_sign_in(page) -> None:
    email = browser_sign_up(page)
    assert page.get_by_role("heading", name="What should Limner draw?").is_visible()
    page.get_by_role("button", name="Sign out").click()
    page.wait_for_url("**/signin")
    page.goto("/")  # signed out: the creator sends you to sign in
    page.wait_for_url("**/signin")

    page.get_by_label("Email").fill(email)
    page.get_by_label("Password").fill("not my password")
    page.get_by_role("button", name="Sign in").click()
    assert page.get_by_role("alert").inner_text() == "Wrong email or password."
    assert page.get_by_label("Email").input_value() == email  # kept for the next try

    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Sign in").click()
    page.wait_for_url("**/")
    assert page.get_by_role("button", name="Sign out").is_visible()


def test_progress_is_visible_before_the_images_are_done(page, slow_steps: None) -> None:
    browser_sign_up(page)
    browser_create(page, "a red apple")
    status = page.get_by_role("status")
    page.wait_for_function(
        "() => /^Step [0-9]+ of [0-9]+$/.test(document.getElementById('status').textContent)"
        " && document.querySelector('#results img').src.startsWith('data:image/png')"
    )
    step, total = map(int, re.findall(r"\d+", status.inner_text()))
    assert total == STEPS and 1 <= step < total
    assert page.locator("#progress").evaluate("p => p.value > 0 && p.value < p.max")
    assert page.locator("#results a").count() == 0  # previews, not yet the finished images
    previews = page.locator("#results img").evaluate_all("imgs => imgs.map(i => i.src.slice(0, 22))")
    assert previews == ["data:image/png;base64,"] * 4
    assert len(wait_results(page)) == 4
    assert status.inner_text() == "Done"
    assert page.locator("#progress").count() == 0


def test_create_four_images_then_history_detail_and_download(page) -> None:
    browser_sign_up(page)
    browser_create(page, "a lighthouse at dusk")
    links = wait_results(page)
    assert len(links) == len(set(links)) == 4
    imgs = page.locator("#results img")
    assert imgs.evaluate_all("imgs => imgs.every(i => i.complete && i.naturalWidth === 128)")

    # history lists them, and search finds them by their prompt
    page.get_by_role("link", name="History").click()
    assert page.locator("#history li").count() == 4
    assert page.locator("#history .caption").all_inner_texts() == ["a lighthouse at dusk"] * 4
    page.get_by_role("searchbox").fill("LIGHTHOUSE")
    page.get_by_role("button", name="Search").click()
    assert page.locator("#history li").count() == 4
    page.get_by_role("searchbox").fill("zebra")
    page.get_by_role("button", name="Search").click()
    assert page.get_by_text("0 images matching “zebra”.").is_visible()
    assert page.locator("#history li").count() == 0

    # the detail page shows what made the image; the file says the same
    page.goto(links[0])
    seed = int(page.get_by_test_id("seed").inner_text())
    assert page.get_by_test_id("model").inner_text() == "tiny"
    with page.expect_download() as info:
        page.get_by_role("link", name="Download PNG").click()
    download = info.value
    assert download.suggested_filename == f"limner-{seed}.png"
    data = download.path().read_bytes()
    assert data.startswith(b"\x89PNG\r\n\x1a\n")
    img = Image.open(io.BytesIO(data))
    img.verify()  # a complete, valid PNG (checksums included)
    img = Image.open(io.BytesIO(data))
    assert (img.format, img.size) == ("PNG", (128, 128))
    meta = json.loads(img.text["limner"])
    assert (meta["seed"], meta["model"], meta["prompt"]) == (seed, "tiny", "a lighthouse at dusk")


def test_a_blocked_prompt_shows_the_warning(page, live_server: LiveServer) -> None:
    browser_sign_up(page)
    before = boosts(page)
    page.get_by_label("Prompt").fill("a n u d e statue")
    page.get_by_role("button", name="Create", exact=True).click()
    warning = page.get_by_test_id("blocked")
    warning.wait_for()
    assert warning.get_attribute("role") == "alert"
    assert "This prompt was blocked." in warning.inner_text()
    assert "No boost was used." in warning.inner_text()
    assert page.get_by_label("Prompt").input_value() == "a n u d e statue"  # to edit, not retype
    assert boosts(page) == before
    assert "/jobs/" not in page.url


@pytest.fixture
def one_boost(live_server: LiveServer) -> Iterator[None]:
    settings = live_server.settings
    allowance, settings.creator_daily_boosts = settings.creator_daily_boosts, 1
    yield
    settings.creator_daily_boosts = allowance


def test_boosts_count_down_and_the_slow_lane_still_works(page, one_boost: None) -> None:
    browser_sign_up(page)
    assert boosts(page) == 1
    assert "1 of 1 boosts" in page.get_by_test_id("boosts").inner_text()
    assert page.get_by_text("Uses 1 boost: fast lane.").is_visible()

    browser_create(page, "a paper boat")
    assert page.locator(".badge").inner_text() == "Fast lane ⚡"
    assert boosts(page) == 0
    wait_results(page)

    page.goto("/")
    assert page.get_by_text("No boosts left today").is_visible()
    browser_create(page, "a paper plane")
    assert page.locator(".badge").inner_text() == "Free lane"
    assert len(wait_results(page)) == 4  # the free lane still makes images
    assert boosts(page) == 0


def test_edit_with_a_painted_mask_changes_only_the_masked_area(page, live_server: LiveServer) -> None:
    browser_sign_up(page)
    browser_create(page, "a green field")
    page.goto(wait_results(page)[0])
    source, _ = fetch_image(page, page.locator("#big").get_attribute("src"))
    src = np.asarray(source.convert("RGB"))
    side = source.width
    assert page.locator("#mask").is_hidden()

    edit = page.get_by_role("button", name="Edit", exact=True)
    edit.click()
    canvas = page.locator("#mask")
    assert canvas.is_visible() and edit.get_attribute("aria-expanded") == "true"
    box = canvas.bounding_box()
    x0, x1, y = box["x"] + 0.2 * box["width"], box["x"] + 0.5 * box["width"], box["y"] + 0.3 * box["height"]
    page.mouse.move(x0, y)
    page.mouse.down()
    page.mouse.move(x1, y)  # one far jump: the stroke must still be solid between its ends
    page.mouse.up()

    page.get_by_label("Change it to").fill("a blue pond")
    page.get_by_role("button", name="Apply edit").click()
    page.wait_for_url("**/jobs/*")
    assert page.locator("h1").inner_text() == "a blue pond"
    links = wait_results(page)

    # the mask the model was given (the page's painting, as the server read it: white = repaint)
    edit_request = next(r for r in live_server.backend().seen if r.prompt == "a blue pond")
    mask = np.asarray(edit_request.mask)
    assert mask.shape == (side, side)
    row = mask[int(0.3 * side), int(0.2 * side) : int(0.5 * side)]
    assert (row == 255).all(), "the stroke has gaps"
    assert mask[int(0.8 * side), int(0.8 * side)] == 0  # nowhere near it
    assert 0.02 < (mask > 0).mean() < 0.2
    for link in links:
        edited, _ = fetch_image(page, f"{link}/file")
        out = np.asarray(edited.convert("RGB"))
        assert out.shape == src.shape
        outside, inside = mask == 0, mask == 255
        assert (out[outside] == src[outside]).all(), "pixels outside the painted area changed"
        changed = (out[inside] != src[inside]).any(axis=-1).mean()
        assert changed > 0.9, f"only {changed:.0%} of the painted area changed"


def test_edit_problems_are_shown_on_the_page(page) -> None:
    browser_sign_up(page)
    browser_create(page, "a yellow kite")
    page.goto(wait_results(page)[0])
    url = page.url
    page.get_by_role("button", name="Edit", exact=True).click()
    messages: list[str] = []
    page.once("dialog", lambda d: (messages.append(d.message), d.accept()))
    page.get_by_role("button", name="Apply edit").click()
    assert messages == ["Paint the area to change first."]

    box = page.locator("#mask").bounding_box()
    page.mouse.move(box["x"] + 20, box["y"] + 20)
    page.mouse.down()
    page.mouse.move(box["x"] + 60, box["y"] + 40, steps=4)
    page.mouse.up()
    page.get_by_label("Change it to").fill("a gory kite")
    page.get_by_role("button", name="Apply edit").click()
    alert = page.locator("#edit-form [role=alert]")
    alert.wait_for()
    assert alert.inner_text().startswith("This prompt was blocked.")
    assert page.url == url
    assert page.get_by_role("button", name="Apply edit").is_enabled()  # ready for another try


def test_delete_removes_it(page) -> None:
    browser_sign_up(page)
    browser_create(page, "a teapot")
    links = wait_results(page)
    page.goto(links[0])
    messages: list[str] = []
    page.once("dialog", lambda d: (messages.append(d.message), d.dismiss()))
    page.get_by_role("button", name="Delete").click()  # dismissed: nothing happens
    assert messages and page.url.endswith(links[0])
    page.once("dialog", lambda d: d.accept())
    page.get_by_role("button", name="Delete").click()
    page.wait_for_url("**/history")
    assert page.get_by_text("3 images").is_visible()
    assert page.locator(f'#history a[href="{links[0]}"]').count() == 0
    assert page.request.get(f"{links[0]}/file").status == 404
    page.goto(links[0])
    assert page.get_by_role("heading", name="Not found").is_visible()


def test_advanced_panel_and_make_again_give_the_same_images(page) -> None:
    browser_sign_up(page)
    page.goto("/")
    assert not page.get_by_label("Leave out").is_visible()  # folded away until asked for
    page.get_by_text("Advanced", exact=True).click()
    page.get_by_label("Prompt").fill("a blue kite")
    page.get_by_label("Leave out").fill("clouds")
    page.get_by_label("Seed").fill("1234")
    page.get_by_label("Images").select_option("2")
    page.get_by_label("Steps").fill("3")
    page.get_by_label("Guidance").fill("4.5")
    page.get_by_label("Sampler").select_option("heun")
    page.get_by_role("button", name="Create", exact=True).click()
    page.wait_for_url("**/jobs/*")
    first = [fetch_image(page, f"{href}/file")[0] for href in wait_results(page, 2)]
    assert page.locator("#results a").count() == 2
    meta = json.loads(first[0].text["limner"])
    assert (meta["negative_prompt"], meta["seed"], meta["num_inference_steps"]) == ("clouds", 1234, 3)
    assert (meta["guidance_scale"], meta["sampler"]) == (4.5, "heun")

    page.get_by_role("link", name="Make again").click()
    page.wait_for_url("**/?again=*")
    assert page.get_by_label("Seed").input_value() == "1234"  # the panel opens, filled in
    assert page.get_by_label("Leave out").is_visible()
    assert page.get_by_label("Prompt").input_value() == "a blue kite"
    page.get_by_role("button", name="Create", exact=True).click()
    page.wait_for_url("**/jobs/*")
    again = [fetch_image(page, f"{href}/file")[0] for href in wait_results(page, 2)]
    for a, b in zip(first, again, strict=True):
        assert np.array_equal(np.asarray(a.convert("RGB")), np.asarray(b.convert("RGB")))

    # a bad field is named, and what was typed stays
    page.goto("/")
    page.get_by_text("Advanced", exact=True).click()
    page.get_by_label("Prompt").fill("a green kite")
    page.get_by_label("Seed").fill("9999999999999999999")  # the browser checks digits; the server the range
    page.get_by_role("button", name="Create", exact=True).click()
    assert "Seed must be a whole number" in page.get_by_role("alert").inner_text()
    assert page.get_by_label("Prompt").input_value() == "a green kite"
    assert page.get_by_label("Seed").input_value() == "9999999999999999999"
