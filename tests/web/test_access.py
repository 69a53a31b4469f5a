"""One account can neither see, download, change nor delete another's images or jobs: every such
request answers 404, exactly as for an id that does not exist."""

from __future__ import annotations

from collections.abc import Callable

from fastapi import FastAPI
from PIL import Image
from sqlalchemy import select
from web_helpers import Account, png, wait_job

from limner.store.db import Creation, Job, User


def test_another_accounts_images_and_jobs_are_not_found(app: FastAPI, account: Callable[[], Account]) -> None:
    alice, mallory = account(), account()
    job = alice.create("alice's secret apple")
    images = wait_job(app, job)["creations"]
    image = images[0]
    assert alice.client.get(f"/images/{image}").status_code == 200

    reads = [
        f"/images/{image}",
        f"/images/{image}/file",
        f"/images/{image}/file?download=1",
        f"/jobs/{job}",
        f"/jobs/{job}/events",
    ]
    for url in reads:
        r = mallory.client.get(url)
        assert r.status_code == 404, url
        assert "alice" not in r.text, url
    mask = {"mask": ("mask.png", png(Image.new("L", (128, 128), 255)), "image/png")}
    writes = [
        (f"/images/{image}/delete", None),
        (f"/images/{image}/variations", None),
        (f"/images/{image}/edit", mask),
        (f"/jobs/{job}/cancel", None),
    ]
    for url, files in writes:
        r = mallory.client.post(url, data={"csrf_token": mallory.csrf, "prompt": "mine now"}, files=files)
        assert r.status_code == 404, url
    history = mallory.client.get("/history?q=apple")
    assert "alice" not in history.text and "0 images" in history.text
    assert "alice" not in mallory.client.get("/").text

    # nothing of alice's changed, and mallory started nothing
    with app.state.db.session() as s:
        assert len(list(s.scalars(select(Creation).where(Creation.job_id == job)))) == 4
        assert s.scalar(select(Job.status).where(Job.id == job)) == "done"
        mallory_id = s.scalar(select(User.id).where(User.email == mallory.email))
        assert list(s.scalars(select(Job).where(Job.user_id == mallory_id))) == []
    for url in [f"/images/{i}" for i in images] + [f"/images/{image}/file"]:
        assert alice.client.get(url).status_code == 200, url
