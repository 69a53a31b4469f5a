"""Ray Serve against the plain server, on this machine, in one run (ratios, not absolute figures,
are what compare: timings swing ±15 % on a shared host).

    python bench/ray_serve.py --model weights/limner-1 --out bench/results/ray_serve.json

Three servers in turn, each a child process on a free port, each serving the same model:
``limner serve``; ``limner serve --ray`` (one ingress and one model replica); the same with the
model's ``@serve.batch`` off (``max_batch_images = 1``). For each: one caller making images one
request after another (seconds per request, the overhead), then 8 callers at once (images per
second, the batching gain).
"""

from __future__ import annotations

import argparse
import json
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parents[1]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def make_key(data: Path) -> str:
    from limner.store.db import Database
    from limner.store.keys import create_key

    db = Database(f"sqlite:///{data / 'limner.db'}")
    db.migrate()
    with db.session() as s:
        key, _ = create_key(s, "bench")
    db.engine.dispose()
    return key


def start(args: list[str], env: dict, port: int) -> subprocess.Popen:
    proc = subprocess.Popen([sys.executable, "-m", "limner.cli", "serve", "--port", str(port), *args], env=env)
    deadline = time.monotonic() + 300
    while time.monotonic() < deadline:
        try:
            if httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=2).status_code == 200:
                return proc
        except httpx.HTTPError:
            time.sleep(0.5)
    proc.kill()
    raise RuntimeError("the server did not start")


def measure(url: str, key: str, requests: int, callers: int) -> dict:
    def one(i: int) -> float:
        started = time.perf_counter()
        r = httpx.post(
            url + "/v1/images/generations",
            headers={"Authorization": f"Bearer {key}"},
            json={"prompt": f"a red apple, 3D render {i}", "n": 1, "seed": i},
            timeout=300,
        )
        r.raise_for_status()
        return time.perf_counter() - started

    one(0)  # warm: the model loads on first use
    single = [one(i) for i in range(1, requests + 1)]
    started = time.perf_counter()
    with ThreadPoolExecutor(callers) as pool:
        list(pool.map(one, range(100, 100 + callers * requests)))
    wall = time.perf_counter() - started
    return {
        "seconds_per_request_one_caller": round(statistics.median(single), 3),
        f"images_per_second_{callers}_callers": round(callers * requests / wall, 3),
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--model", type=Path, default=ROOT / "weights" / "limner-1")
    ap.add_argument("--requests", type=int, default=8)
    ap.add_argument("--callers", type=int, default=8)
    ap.add_argument("--out", type=Path)
    args = ap.parse_args()
    results = {}
    with tempfile.TemporaryDirectory() as tmp:
        tmp_path = Path(tmp)
        (tmp_path / "models.toml").write_text(f'default = "bench"\n[models.bench]\npath = "{args.model.resolve()}"\n')
        for name, extra, ray_toml in [
            ("plain", [], None),
            ("ray", ["--ray"], "[models.bench]\nmax_batch_images = 8\n"),
            ("ray, no @serve.batch", ["--ray"], "[models.bench]\nmax_batch_images = 1\n"),
        ]:
            data = tmp_path / name.replace(" ", "_").replace(",", "").replace("@", "")
            data.mkdir()
            env = {
                **os.environ,
                "PYTHONPATH": str(ROOT / "src"),
                "LIMNER_DATA_DIR": str(data),
                "LIMNER_MODELS": str(tmp_path / "models.toml"),
                "LIMNER_WEIGHTS": str(tmp_path / "none"),
            }
            if ray_toml:
                (data / "ray.toml").write_text(ray_toml)
                extra = [*extra, "--ray-config", str(data / "ray.toml")]
            key = make_key(data)
            port = free_port()
            proc = start(extra, env, port)
            try:
                results[name] = measure(f"http://127.0.0.1:{port}", key, args.requests, args.callers)
            finally:
                proc.terminate()
                proc.wait(120)
                if ray_toml:
                    subprocess.run([sys.executable, "-m", "ray.scripts.scripts", "stop", "--force"], check=False)
            print(name, results[name], flush=True)
    plain, ray_on, ray_off = results["plain"], results["ray"], results["ray, no @serve.batch"]
    key_rate = f"images_per_second_{args.callers}_callers"
    summary = {
        "machine": os.uname().machine + ", " + str(os.cpu_count()) + " CPUs",
        "results": results,
        "ray_overhead_one_caller": round(
            ray_on["seconds_per_request_one_caller"] / plain["seconds_per_request_one_caller"] - 1, 3
        ),
        "serve_batch_gain": round(ray_on[key_rate] / ray_off[key_rate], 3),
    }
    print(json.dumps(summary, indent=1))
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps(summary, indent=1) + "\n")


if __name__ == "__main__":
    main()
