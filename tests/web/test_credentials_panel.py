"""The Image Creator's image page shows a "Content credentials" panel: the stored file's manifest as
c2pa's reader validates it (and the watermark's state), never what the mark resolves to."""

from __future__ import annotations

from collections.abc import Callable

from fastapi import FastAPI
from web_helpers import Account, wait_job


def test_the_image_page_shows_its_content_credentials(app: FastAPI, account: Callable[[], Account]) -> None:
    alice = account()
    image = wait_job(app, alice.create("an apple"))["creations"][0]
    page = alice.client.get(f"/images/{image}")
    assert page.status_code == 200
    html = page.text
    assert "Content credentials" in html
    assert '<dd data-testid="manifest-state">valid, trusted signer</dd>' in html
    assert "trainedAlgorithmicMedia" in html and 'data-testid="watermark-state"' in html
    assert "resolves" not in html and "mark_id" not in html
