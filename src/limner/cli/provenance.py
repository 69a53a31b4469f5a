"""``limner verify``: Content Credentials and the watermark of image files."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from limner.cli.app import DatabaseOpt, DataDirOpt, _database, app, console
from limner.errors import LimnerError


@app.command("verify")
def verify_files(
    files: Annotated[list[Path], typer.Argument(help="PNG, JPEG or WebP images.")],
    as_json: Annotated[bool, typer.Option("--json", help="Print the reports as JSON.")] = False,
    database_url: DatabaseOpt = None,
    data_dir: DataDirOpt = None,
) -> None:
    """Check images for Content Credentials (C2PA) and Limner's watermark; with the server's data
    folder (or database URL), say what each watermark resolves to — for the operator's eyes."""
    import json

    from limner.provenance import ledger
    from limner.provenance.verify import verify
    from limner.server.settings import Settings
    from limner.server.uploads import read_image

    settings = Settings.from_env(database_url=database_url, data_dir=data_dir)
    root = settings.data_dir / "c2pa-root.pem"
    roots = root.read_bytes() if root.exists() else None
    resolve = None
    if settings.database_url or (settings.data_dir / "limner.db").exists():
        db = _database(database_url, data_dir)
        cipher = ledger.Cipher(settings.resolved_secret())

        def resolve(payload: int) -> dict | None:
            with db.session() as s:
                return ledger.resolve(s, cipher, payload)

    failed = False
    for path in files:
        try:
            data = path.read_bytes()
            report = verify(data, read_image(data, param=str(path), max_pixels=settings.max_upload_pixels),
                            trusted_roots=roots, resolve=resolve)  # fmt: skip
        except (OSError, LimnerError) as e:
            console.print(f"[red]{path}: {getattr(e, 'message', e)}")
            failed = True
            continue
        if as_json:
            print(json.dumps({"file": str(path), **report}, sort_keys=True))
            continue
        m, w = report["manifest"], report["watermark"]
        if not m["present"]:
            cred = "no Content Credentials"
        elif m["tampered"]:
            cred = f"Content Credentials TAMPERED ({', '.join(m['failures']) or m['error']})"
        else:
            trust = "trusted signer" if m["trusted"] else "untrusted signer"
            cred = f"Content Credentials {'valid' if m['valid'] else 'invalid'} ({trust}: {m['signer']})"
        print(f"{path}: {cred}")
        for a in m["actions"]:
            source = a.get("digitalSourceType", "").rsplit("/", 1)[-1]
            print(
                f"  {a['action']}"
                + (f" [{source}]" if source else "")
                + (f" {a['description']}" if a.get("description") else "")
            )
        for ingredient in m["ingredients"]:
            print(f"  ingredient: {ingredient}")
        if w["found"]:
            print(f"  watermark: found (confidence {w['confidence']:.9f})")
            if "resolves_to" in w:
                print(f"  resolves to: {json.dumps(w['resolves_to'], sort_keys=True)}")
        else:
            print("  watermark: not found")
    if failed:
        raise typer.Exit(1)
