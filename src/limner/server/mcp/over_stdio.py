"""``limner mcp``: the tools over stdin and stdout for a local assistant."""

from __future__ import annotations

from pathlib import Path

from limner.moderation import Policy
from limner.provenance import Provenance
from limner.server.mcp.door import Door
from limner.server.mcp.tools import create_server
from limner.server.settings import Settings
from limner.server.work import Slots
from limner.store.db import Database


def local_door(settings: Settings, outputs: Path) -> Door:
    """What ``limner mcp`` draws with: the data folder's database (usage is recorded there, with no
    key), the engine (configured models only: an assistant names no folders), the moderation policy."""
    settings.data_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
    db = Database(settings.resolved_database_url())
    db.migrate()
    engine = settings.make_engine()
    slots = Slots(settings.max_running_requests, settings.max_waiting_requests)
    policy = Policy.load(settings.moderation_policy)
    return Door(db, engine, policy, slots, settings, outputs=outputs, provenance=Provenance.from_settings(settings))


def serve_stdio(settings: Settings, outputs: Path) -> None:
    """``limner mcp``: the tools over stdin and stdout, until the assistant closes them."""
    door = local_door(settings, outputs)
    try:
        create_server(door).run("stdio")
    finally:
        door.engine.close(wait=False)
        door.db.engine.dispose()
