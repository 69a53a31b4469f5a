"""``limner keys``, ``limner users`` and ``limner usage``: who may use the service and what they used."""

from __future__ import annotations

from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table

from limner.cli.app import DatabaseOpt, DataDirOpt, _database, app, console, fail, keys_app, users_app


@users_app.command("reset-link")
def users_reset_link(
    email: Annotated[str, typer.Argument(help="The account's email.")],
    hours: Annotated[float, typer.Option(help="How long the link works.")] = 1.0,
    url: Annotated[
        str | None, typer.Option(help="The server's address as users reach it. Default: $LIMNER_PUBLIC_URL.")
    ] = None,
    database_url: DatabaseOpt = None,
    data_dir: DataDirOpt = None,
) -> None:
    """Print a link that lets the account choose a new password (once, for HOURS). Hand it to
    the person yourself: anyone with the link can set the password."""
    from sqlalchemy import select

    from limner.server.settings import Settings
    from limner.server.web.reset import reset_link
    from limner.store.db import User

    settings = Settings.from_env(database_url=database_url, data_dir=data_dir)
    base = url or settings.public_url
    if not base:
        fail("say where users reach the server: --url https://images.example.org (or set LIMNER_PUBLIC_URL)")
    if not 0 < hours <= 72:
        fail("--hours must be more than 0 and at most 72")
    db = _database(database_url, data_dir)
    with db.session() as s:
        user = s.scalar(select(User).where(User.email == email.strip().lower()))
        if user is None:
            fail(f"no account has the email {email!r}")
        link = reset_link(settings, user, str(base), hours)
    console.print(f"a reset link for {user.email}, valid {hours:g} h and once:", highlight=False)
    print(link)


@keys_app.command("create")
def keys_create(
    name: Annotated[str, typer.Option(help="Who or what the key is for.")],
    images_per_minute: Annotated[int | None, typer.Option(help="Rate limit.")] = None,
    images_per_day: Annotated[int | None, typer.Option(help="Daily quota (UTC days).")] = None,
    size_policy: Annotated[
        str | None, typer.Option(help="'resize' or 'strict' for this key (default: the server's LIMNER_SIZE_POLICY).")
    ] = None,
    database_url: DatabaseOpt = None,
    data_dir: DataDirOpt = None,
) -> None:
    """Create a key and print it (once: only a salted hash is stored)."""
    from limner.store.keys import create_key

    if size_policy not in (None, "resize", "strict"):
        fail("--size-policy must be 'resize' or 'strict'")
    db = _database(database_url, data_dir)
    with db.session() as s:
        key, row = create_key(s, name, images_per_minute, images_per_day, size_policy)
        key_id = row.id
    console.print(f"key {key_id} ({name}) created; store it now, it will not be shown again:")
    print(key)


@keys_app.command("list")
def keys_list(database_url: DatabaseOpt = None, data_dir: DataDirOpt = None) -> None:
    """List keys (never the keys themselves)."""
    from sqlalchemy import select

    from limner.store.db import ApiKey

    db = _database(database_url, data_dir)
    table = Table(title="API keys")
    for col in (
        "id",
        "name",
        "prefix",
        "created",
        "per minute",
        "per day",
        "used today",
        "revoked",
    ):
        table.add_column(col)
    with db.session() as s:
        for k in s.scalars(select(ApiKey).order_by(ApiKey.id)):
            table.add_row(
                str(k.id),
                k.name,
                f"lim-{k.prefix}…",
                k.created.strftime("%Y-%m-%d %H:%M"),
                str(k.images_per_minute or "–"),
                str(k.images_per_day or "–"),
                str(k.used_day),
                "yes" if k.revoked else "",
            )
    Console().print(table)


@keys_app.command("revoke")
def keys_revoke(
    key_id: Annotated[int, typer.Argument(help="The id shown by `limner keys list`.")],
    database_url: DatabaseOpt = None,
    data_dir: DataDirOpt = None,
) -> None:
    """Revoke a key: it stops working at once."""
    from limner.store.keys import revoke

    db = _database(database_url, data_dir)
    with db.session() as s:
        if not revoke(s, key_id):
            fail(f"no key with id {key_id}")
    console.print(f"key {key_id} revoked")


@keys_app.command("set")
def keys_set(
    key_id: Annotated[int, typer.Argument(help="The id shown by `limner keys list`.")],
    operator: Annotated[
        bool | None, typer.Option("--operator/--no-operator", help="May see what a watermark resolves to.")
    ] = None,
    watermark: Annotated[
        bool | None, typer.Option("--watermark/--no-watermark", help="Watermark this key's images.")
    ] = None,
    manifest: Annotated[
        bool | None, typer.Option("--manifest/--no-manifest", help="Sign this key's images with a C2PA manifest.")
    ] = None,
    server_default: Annotated[
        bool, typer.Option("--server-default", help="Watermark and manifest as the server's settings say.")
    ] = False,
    database_url: DatabaseOpt = None,
    data_dir: DataDirOpt = None,
) -> None:
    """Set a key's provenance switches: the operator flag, its watermark and its manifest."""
    from limner.store.db import ApiKey

    db = _database(database_url, data_dir)
    with db.session() as s:
        row = s.get(ApiKey, key_id)
        if row is None:
            fail(f"no key with id {key_id}")
        if server_default:
            row.watermark = row.content_credentials = None
        if operator is not None:
            row.operator = operator
        if watermark is not None:
            row.watermark = watermark
        if manifest is not None:
            row.content_credentials = manifest
        shown = {None: "server's", True: "on", False: "off"}
        console.print(
            f"key {key_id}: operator {'yes' if row.operator else 'no'}, watermark {shown[row.watermark]}, "
            f"manifest {shown[row.content_credentials]}"
        )


@app.command("usage")
def usage(
    days: Annotated[int, typer.Option(help="How many days back.")] = 30,
    as_json: Annotated[bool, typer.Option("--json", help="One JSON object per line instead of a table.")] = False,
    database_url: DatabaseOpt = None,
    data_dir: DataDirOpt = None,
) -> None:
    """Requests, images, megapixels, seconds and failures per key and UTC day."""
    import json

    from limner.store.usage import usage_by_day

    if days < 1:
        fail("--days must be at least 1")
    db = _database(database_url, data_dir)
    with db.session() as s:
        rows = usage_by_day(s, days)
    if as_json:
        for row in rows:
            print(json.dumps(row.as_dict()))
        return
    table = Table(title=f"usage, last {days} days")
    for col in ("day", "key", "requests", "images", "megapixels", "seconds", "failed"):
        table.add_column(col)
    for r in rows:
        table.add_row(
            r.day,
            r.key or "(web)",
            str(r.requests),
            str(r.images),
            f"{r.megapixels:.2f}",
            f"{r.seconds:.1f}",
            str(r.failed),
        )
    Console().print(table)
