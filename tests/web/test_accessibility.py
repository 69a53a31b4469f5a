"""The Image Creator without a mouse, and with images described: keyboard-only use (Tab/Enter, with
visible focus) and alt text on every image."""

from __future__ import annotations

import pytest
from web_helpers import PASSWORD, browser_create, browser_sign_up, new_email, wait_results

pytestmark = pytest.mark.browser


def tab_to(page, selector: str, limit: int = 30) -> None:
    """Press Tab until ``selector`` has the focus, and check that the focus is visible there."""
    for _ in range(limit):
        page.keyboard.press("Tab")
        if page.evaluate("s => document.activeElement.matches(s)", selector):
            assert page.evaluate("() => document.activeElement.matches(':focus-visible')"), selector
            return
    raise AssertionError(f"{selector} cannot be reached with Tab")


def test_sign_up_and_create_with_the_keyboard_only(page) -> None:
    page.goto("/signup")
    tab_to(page, "#email")
    email = new_email()
    page.keyboard.type(email)
    tab_to(page, "#password")
    page.keyboard.type(PASSWORD)
    page.keyboard.press("Enter")
    page.wait_for_url("**/signin?created=1")
    tab_to(page, "#email")
    page.keyboard.type(email)
    tab_to(page, "#password")
    page.keyboard.type(PASSWORD)
    page.keyboard.press("Enter")
    page.wait_for_url("**/")

    tab_to(page, "#prompt")
    page.keyboard.type("a red apple")
    tab_to(page, "#style")
    page.keyboard.press("ArrowDown")  # the first style after "No style"
    style = page.locator("#style").input_value()
    assert style
    tab_to(page, "#create-button")
    page.keyboard.press("Enter")
    page.wait_for_url("**/jobs/*")
    links = wait_results(page)

    tab_to(page, f'#results a[href="{links[0]}"]')
    page.keyboard.press("Enter")
    page.wait_for_url(f"**{links[0]}")
    assert page.locator("h1").inner_text() == f"a red apple, {style}"
    tab_to(page, "#edit-toggle")
    page.keyboard.press("Enter")
    assert page.locator("#edit-form").is_visible()


def test_the_skip_link_leads_to_the_content(page) -> None:
    browser_sign_up(page)
    page.keyboard.press("Tab")
    skip = page.get_by_role("link", name="Skip to content")
    assert skip.evaluate("a => a === document.activeElement") and skip.is_visible()
    page.keyboard.press("Enter")
    assert page.url.endswith("#main")


def test_every_image_has_its_prompt_as_alt_text(page) -> None:
    browser_sign_up(page)
    prompt = "a lighthouse at dusk, flat icon"
    job_url = browser_create(page, prompt)
    pending = page.locator("#results img").evaluate_all("imgs => imgs.map(i => i.alt)")
    assert all(prompt in alt for alt in pending), pending
    links = wait_results(page)
    for url in [job_url, "/", "/history", links[0]]:
        page.goto(url)
        alts = page.locator("img").evaluate_all("imgs => imgs.map(i => [i.getAttribute('src'), i.alt])")
        assert alts, url
        for src, alt in alts:
            assert alt.strip(), (url, src)
            if src.startswith("/images/"):
                assert alt == prompt, (url, src, alt)
