"""Take the Image Creator screenshots in docs/screenshots/: the main pages at desktop (1280×900) and
phone (390×844) sizes, from the real server driven by Debian's headless Chromium.

    python docs/screenshots.py                          # weights/limner-1 if it exists, else a tiny untrained model
    python docs/screenshots.py --models models.toml     # the default model of a models.toml
    python docs/screenshots.py --weights weights/limner-1

The server runs in this process on a free port of 127.0.0.1 with a throwaway data folder; nothing
is kept but the PNGs (256 colours, to keep the repository small). Needs Debian's chromium and the
dev extras (Playwright); retake them whenever a page's layout changes.
"""

from __future__ import annotations

import argparse
import io
import re
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import uvicorn
from PIL import Image

from limner.engine import Engine
from limner.engine.registry import ModelSpec, weights_dir
from limner.server.app import create_app
from limner.server.settings import Settings

OUT = Path(__file__).resolve().parent / "screenshots"
CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
SIZES = {"desktop": {"width": 1280, "height": 900}, "phone": {"width": 390, "height": 844}}
EMAIL, PASSWORD = "ada@example.com", "correct horse battery staple"
PROMPTS = ["a red apple", "a lighthouse at dusk", 'a poster with the title "OPEN"']


def tiny_model(root: Path) -> Path:
    """An untrained tiny model (128 px images of coloured noise): the layout, not the pictures."""
    import torch

    from limner.model.checkpoint import save_weights
    from limner.model.denoiser import PRESETS, Denoiser
    from limner.model.upsampler import UPSAMPLER_PRESETS, Upsampler

    torch.manual_seed(0)
    denoiser, upsampler = Denoiser(PRESETS["tiny"]), Upsampler(UPSAMPLER_PRESETS["tiny"])
    with torch.no_grad():
        for p in [*denoiser.parameters(), *upsampler.parameters()]:
            p.add_(torch.randn(p.shape) * 0.05)  # fresh zero-initialised layers would paint flat grey
    save_weights(root / "denoiser.safetensors", denoiser, "denoiser", {"preset": "tiny", "steps": 0})
    save_weights(root / "upsampler.safetensors", upsampler, "upsampler")
    return root


def engine_factory(args: argparse.Namespace, scratch: Path) -> Callable[[], Engine]:
    if args.models:
        return lambda: Engine(models_file=args.models)
    if args.weights:
        return lambda: Engine(specs=[ModelSpec(args.weights.name, "limner", args.weights)])
    if (weights_dir() / "limner-1").is_dir():
        return lambda: Engine()
    path = tiny_model(scratch / "tiny")
    # many steps, so that a job is still running when its page is photographed
    return lambda: Engine(specs=[ModelSpec("tiny", "limner", path, defaults={"num_inference_steps": 200})])


@contextmanager
def serve(settings: Settings) -> Iterator[str]:
    """The real server in a background thread; → its URL."""
    server = uvicorn.Server(
        uvicorn.Config(create_app(settings), host="127.0.0.1", port=0, log_level="warning", timeout_graceful_shutdown=2)
    )
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    while not server.started:
        if not thread.is_alive():
            raise SystemExit("the server did not start")
        time.sleep(0.05)
    try:
        yield f"http://127.0.0.1:{server.servers[0].sockets[0].getsockname()[1]}"
    finally:
        server.should_exit = True
        thread.join(30)


def shoot(pages: dict, name: str) -> None:
    for size, page in pages.items():
        shoot_one(page, f"{name}-{size}")


def shoot_one(page, name: str) -> None:
    """A full-page screenshot, kept small for the repository: 256 colours, no dithering."""
    page.evaluate("() => Promise.all([...document.images].map(i => i.decode().catch(() => null)))")
    shot = Image.open(io.BytesIO(page.screenshot(full_page=True, animations="disabled", caret="initial")))
    path = OUT / f"{name}.png"
    shot.convert("RGB").quantize(256, method=Image.Quantize.MEDIANCUT, dither=Image.Dither.NONE).save(
        path, optimize=True
    )
    print(f"wrote {path.relative_to(OUT.parent.parent)}")


def wait_done(page) -> list[str]:
    page.locator("#results a img").first.wait_for(timeout=600_000)
    return [a.get_attribute("href") for a in page.locator("#results a").all()]


def create(page, prompt: str) -> str:
    page.goto("/")
    page.get_by_label("Prompt").fill(prompt)
    page.get_by_role("button", name="Create", exact=True).click()
    page.wait_for_url("**/jobs/*")
    return page.url


def paint(page) -> None:
    """A stroke across the upper part of the image, as a person editing it would paint."""
    box = page.locator("#mask").bounding_box()
    y = box["y"] + box["height"] * 0.3
    page.mouse.move(box["x"] + box["width"] * 0.25, y)
    page.mouse.down()
    page.mouse.move(box["x"] + box["width"] * 0.7, y + box["height"] * 0.1, steps=12)
    page.mouse.up()


def running_or_done(page) -> None:
    """Wait until the job is between a quarter and three quarters done (previews showing), or has
    ended (when the model is too fast to catch)."""
    page.wait_for_function(
        "() => { const m = /^Step ([0-9]+) of ([0-9]+)$/.exec(document.getElementById('status').textContent);"
        " return (m && +m[1] >= +m[2] / 4 && +m[1] <= +m[2] * 3 / 4) || document.querySelector('#results a'); }",
        timeout=600_000,
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--models", type=Path, help="a models.toml; its default model makes the images")
    parser.add_argument("--weights", type=Path, help="a Limner weights folder")
    args = parser.parse_args()
    from playwright.sync_api import sync_playwright

    OUT.mkdir(exist_ok=True)
    with tempfile.TemporaryDirectory() as tmp:
        scratch = Path(tmp)
        settings = Settings(data_dir=scratch / "data", engine_factory=engine_factory(args, scratch))
        with serve(settings) as url, sync_playwright() as p:
            browser = p.chromium.launch(executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS)
            pages = {}
            for size, viewport in SIZES.items():
                phone = size == "phone"
                context = browser.new_context(base_url=url, viewport=viewport, is_mobile=phone, has_touch=phone)
                context.set_default_timeout(120_000)
                pages[size] = context.new_page()
                pages[size].goto("/signin")
            desktop, phone = pages["desktop"], pages["phone"]
            shoot(pages, "signin")

            desktop.goto("/signup")
            desktop.get_by_label("Email").fill(EMAIL)
            desktop.get_by_label("Password").fill(PASSWORD)
            desktop.get_by_role("button", name="Create account").click()
            desktop.wait_for_url(re.compile(r".*/signin\?created=1$"))
            desktop.get_by_label("Email").fill(EMAIL)
            desktop.get_by_label("Password").fill(PASSWORD)
            desktop.get_by_role("button", name="Sign in").click()
            desktop.wait_for_url(re.compile(r".*/$"))
            phone.get_by_label("Email").fill(EMAIL)
            phone.get_by_label("Password").fill(PASSWORD)
            phone.get_by_role("button", name="Sign in").click()
            phone.wait_for_url(re.compile(r".*/$"))

            for prompt in PROMPTS[:2]:
                create(desktop, prompt)
                image = wait_done(desktop)[0]
            for size, page in pages.items():  # a job each, photographed while it runs
                create(page, PROMPTS[2])
                running_or_done(page)
                shoot_one(page, f"job-{size}")
                wait_done(page)

            for page in pages.values():
                page.goto("/")
                page.get_by_label("Prompt").fill("a paper boat on a pond, flat icon")
            shoot(pages, "create")
            for page in pages.values():  # the Advanced panel, filled in as for "make again"
                page.get_by_text("Advanced", exact=True).click()
                page.get_by_label("Leave out").fill("text, border")
                page.get_by_label("Seed").fill("1234")
                page.get_by_label("Images").select_option("2")
                page.get_by_label("Steps").fill("30")
                page.get_by_label("Guidance").fill("4.5")
                page.get_by_label("Sampler").select_option("heun")
            shoot(pages, "create-advanced")
            for page in pages.values():
                page.goto("/history")
            shoot(pages, "history")
            for page in pages.values():
                page.goto(image)
                page.get_by_role("button", name="Edit", exact=True).click()
                paint(page)
                page.get_by_label("Change it to").fill("a green apple")
            shoot(pages, "image-edit")
            browser.close()


if __name__ == "__main__":
    main()
