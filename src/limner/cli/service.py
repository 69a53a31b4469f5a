"""``limner serve`` (plain or on Ray Serve), ``limner mcp`` and ``limner db``."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from limner.cli.app import DatabaseOpt, DataDirOpt, _database, app, console, db_app, fail


@app.command("serve")
def serve(
    host: Annotated[str, typer.Option()] = "127.0.0.1",
    port: Annotated[int, typer.Option()] = 8000,
    models: Annotated[Path | None, typer.Option(help="A models.toml naming more models.")] = None,
    database_url: DatabaseOpt = None,
    data_dir: DataDirOpt = None,
    moderation_policy: Annotated[Path | None, typer.Option(help="A moderation policy TOML.")] = None,
    insecure_cookies: Annotated[bool, typer.Option(help="Allow session cookies over plain HTTP (local use).")] = False,
    ray: Annotated[bool, typer.Option("--ray", help="Serve on Ray Serve (pip install 'limner[ray]').")] = False,
    ray_config: Annotated[Path | None, typer.Option(help="With --ray: replicas and resources (ray.toml).")] = None,
    ray_address: Annotated[
        str | None, typer.Option(help="With --ray: a running cluster ('auto'); default: local.")
    ] = None,
) -> None:
    """Serve the Images API, the Image Creator and the arena (with --ray: on Ray Serve)."""
    if ray:
        _serve_on_ray(
            host, port, models, database_url, data_dir, moderation_policy, insecure_cookies, ray_config, ray_address
        )
        return
    import uvicorn

    from limner.server.app import create_app
    from limner.server.settings import Settings

    settings = Settings.from_env(
        models_file=models,
        database_url=database_url,
        data_dir=data_dir,
        moderation_policy=moderation_policy,
    )
    if insecure_cookies:
        settings.cookie_secure = False
    console.print(f"Limner on http://{host}:{port}  (API at /v1, docs at /docs)")
    uvicorn.run(create_app(settings), host=host, port=port, timeout_graceful_shutdown=120, log_level="info")


def _serve_on_ray(
    host: str,
    port: int,
    models: Path | None,
    database_url: str | None,
    data_dir: Path | None,
    moderation_policy: Path | None,
    insecure_cookies: bool,
    config: Path | None,
    address: str | None,
) -> None:
    """The Ray Serve application of ``limner.server.ray_serve``, as ``serve run`` would start it;
    the options travel to every replica as LIMNER_* variables."""
    import os

    try:
        import ray
        from ray import serve
    except ImportError:
        fail("Ray is not installed: pip install 'limner[ray]'")
    for name, value in (
        ("LIMNER_MODELS", models),
        ("LIMNER_DATABASE_URL", database_url),
        ("LIMNER_DATA_DIR", data_dir and data_dir.resolve()),
        ("LIMNER_MODERATION_POLICY", moderation_policy),
        ("LIMNER_COOKIE_SECURE", "0" if insecure_cookies else None),
    ):
        if value is not None:
            os.environ[name] = str(value)
    os.environ.setdefault("LIMNER_DATA_DIR", str(Path("limner-data").resolve()))  # the same folder for every replica
    from limner.server.ray_serve import APP, app

    ray.init(address=address, include_dashboard=False)
    serve.start(http_options={"host": host, "port": port})
    console.print(f"Limner on Ray Serve at http://{host}:{port}  (API at /v1; `serve status` shows the replicas)")
    serve.run(app({"config": str(config) if config else ""}), name=APP, route_prefix="/", blocking=True)


@app.command("mcp")
def mcp_stdio(
    models: Annotated[Path | None, typer.Option(help="A models.toml naming more models.")] = None,
    database_url: DatabaseOpt = None,
    data_dir: DataDirOpt = None,
    moderation_policy: Annotated[Path | None, typer.Option(help="A moderation policy TOML.")] = None,
    output: Annotated[
        Path | None, typer.Option("-o", "--output", help="Folder for the PNGs; default: DATA_DIR/images.")
    ] = None,
) -> None:
    """Serve the image tools to a local assistant over stdio (Model Context Protocol); see docs/mcp.md."""
    from limner.server.mcp import serve_stdio
    from limner.server.settings import Settings

    settings = Settings.from_env(
        models_file=models, database_url=database_url, data_dir=data_dir, moderation_policy=moderation_policy
    )
    serve_stdio(settings, output or settings.data_dir / "images")


@db_app.command("upgrade")
def db_upgrade(database_url: DatabaseOpt = None, data_dir: DataDirOpt = None) -> None:
    """Create or upgrade the schema to the newest migration."""
    from limner.store.migrations import current

    db = _database(database_url, data_dir)
    console.print(f"database at revision {current(db.engine)}")
