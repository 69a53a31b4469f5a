"""Limner on Ray Serve (``limner.server.ray_serve``), on a local Ray instance: the ingress
deployment (the whole service) in two replicas, the tiny model's deployment in two replicas, the
official ``openai`` client over HTTP. One Ray instance for the module: it takes seconds to start."""

from __future__ import annotations

import base64
import io
import os
import socket
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import openai
import pytest
from PIL import Image

ray = pytest.importorskip("ray")
serve = pytest.importorskip("ray.serve")
pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning", "ignore::ResourceWarning", "ignore::UserWarning")
SIZE = "128x128"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def ray_app(tmp_path_factory: pytest.TempPathFactory, tiny_model: Path) -> Iterator[dict]:
    from limner.server.ray_serve import APP, app

    root = tmp_path_factory.mktemp("ray")
    (root / "models.toml").write_text(
        f'default = "tiny"\n[models.tiny]\npath = "{tiny_model}"\ndefaults = {{ num_inference_steps = 4 }}\n'
    )
    (root / "ray.toml").write_text(
        "[ingress]\nnum_replicas = 2\nray_actor_options = { num_cpus = 0.25 }\n"
        "[models.tiny]\nnum_replicas = 2\nray_actor_options = { num_cpus = 0.25 }\nmax_batch_images = 8\n"
    )
    env = {
        "LIMNER_MODELS": str(root / "models.toml"),
        "LIMNER_DATA_DIR": str(root / "data"),
        "LIMNER_SECRET": "test-secret",
        "LIMNER_WEIGHTS": str(root / "no-shipped-weights"),
        "LIMNER_COOKIE_SECURE": "0",
    }
    saved = {k: os.environ.get(k) for k in env}
    os.environ.update(env)
    port = _free_port()
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False, configure_logging=False)
    try:
        serve.start(http_options={"host": "127.0.0.1", "port": port})
        serve.run(app({"config": str(root / "ray.toml")}), name=APP, route_prefix="/", blocking=False)
        url = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 240
        while time.monotonic() < deadline:
            try:
                if httpx.get(url + "/healthz", timeout=2).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            time.sleep(0.5)
        else:
            raise RuntimeError("the Ray application did not come up")
        yield {"url": url, "data": root / "data"}
    finally:
        serve.shutdown()
        ray.shutdown()
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v


def _key(ray_app: dict, **limits: int) -> str:
    from limner.store.db import Database
    from limner.store.keys import create_key

    db = Database(f"sqlite:///{ray_app['data'] / 'limner.db'}")
    try:
        with db.session() as s:
            key, _ = create_key(s, "ray", **limits)
    finally:
        db.engine.dispose()
    return key


def _client(ray_app: dict, key: str, retries: int = 0) -> openai.OpenAI:
    return openai.OpenAI(api_key=key, base_url=ray_app["url"] + "/v1", max_retries=retries, timeout=120)


def _png(b64: str) -> Image.Image:
    img = Image.open(io.BytesIO(base64.b64decode(b64)))
    img.load()
    return img


def test_generate_edit_and_stream_through_ray(ray_app):
    client = _client(ray_app, _key(ray_app))
    r = client.images.generate(prompt="a red apple", size=SIZE, n=2, extra_body={"seed": 7})
    images = [_png(d.b64_json) for d in r.data]
    assert [im.size for im in images] == [(128, 128)] * 2
    again = client.images.generate(prompt="a red apple", size=SIZE, n=1, extra_body={"seed": 7})
    assert _png(again.data[0].b64_json).tobytes() == images[0].tobytes()  # whichever replicas drew it

    buf = io.BytesIO()
    images[0].save(buf, format="PNG")
    edit = client.images.edit(image=("a.png", buf.getvalue(), "image/png"), prompt="a green apple", size=SIZE)
    assert _png(edit.data[0].b64_json).size == (128, 128)

    events = list(
        client.images.generate(prompt="a star", size=SIZE, stream=True, partial_images=2, extra_body={"seed": 3})
    )
    kinds = [e.type for e in events]
    assert kinds.count("image_generation.partial_image") >= 1 and kinds[-1] == "image_generation.completed"


def test_quota_is_exact_across_replicas(ray_app):
    key = _key(ray_app, images_per_day=7)

    def one(_: int) -> int:
        r = httpx.post(
            ray_app["url"] + "/v1/images/generations",
            headers={"Authorization": f"Bearer {key}"},
            json={"prompt": "a cat", "size": SIZE},
            timeout=120,
        )
        return r.status_code

    with ThreadPoolExecutor(20) as pool:
        codes = sorted(pool.map(one, range(20)))
    assert codes == [200] * 7 + [429] * 13


def test_a_killed_model_replica_is_replaced_and_the_retry_succeeds(ray_app):
    from ray.serve._private.common import DeploymentID  # noqa: F401  (Serve's own ids, for the replicas)

    client = _client(ray_app, _key(ray_app), retries=3)
    replicas = [a for a in ray.util.list_named_actors(all_namespaces=True) if "model-tiny" in a["name"]]
    assert len(replicas) == 2
    victim = ray.get_actor(replicas[0]["name"], namespace=replicas[0]["namespace"])
    with ThreadPoolExecutor(1) as pool:
        pending = pool.submit(client.images.generate, prompt="a rocket", size=SIZE, n=4)
        time.sleep(0.3)
        ray.kill(victim, no_restart=True)
        result = pending.result(timeout=180)  # the client's retry reaches a live (or new) replica
    assert len(result.data) == 4
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:  # Serve starts a replacement
        names = [a["name"] for a in ray.util.list_named_actors(all_namespaces=True) if "model-tiny" in a["name"]]
        if len(names) == 2 and replicas[0]["name"] not in names:
            break
        time.sleep(1)
    else:
        raise AssertionError("the killed replica was not replaced")
    assert len(client.images.generate(prompt="a rocket", size=SIZE).data) == 1


def test_url_images_and_creator_jobs_through_ray(ray_app):
    """A stored image is served by whichever ingress replica answers (one shared data folder), and
    an Image Creator job runs on the model's deployment like any other request."""
    client = _client(ray_app, _key(ray_app))
    url = client.images.generate(prompt="a blue car", size=SIZE, response_format="url").data[0].url
    assert all(httpx.get(url, timeout=30).status_code == 200 for _ in range(6))  # both replicas

    web = httpx.Client(base_url=ray_app["url"], follow_redirects=False, timeout=60)
    try:
        web.get("/signup")
        email, password = "ray@example.com", "correct horse battery staple"
        for path in ("/signup", "/signin"):
            r = web.post(path, data={"email": email, "password": password, "csrf_token": web.cookies["limner_csrf"]})
            assert r.status_code == 303, r.text
        r = web.post("/create", data={"prompt": "a red apple", "csrf_token": web.cookies["limner_csrf"]})
        assert r.status_code == 303, r.text
        job = r.headers["location"]
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            page = web.get(job).text
            if 'data-status="done"' in page:
                break
            time.sleep(0.5)
        assert page.count("/file") == 4
    finally:
        web.close()
