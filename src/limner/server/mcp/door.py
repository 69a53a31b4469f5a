"""What one MCP call draws with and for whom (``Door``), and what it drew (``Drawn``)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from limner.engine import Engine
from limner.moderation import Policy
from limner.provenance import Provenance
from limner.server.settings import Settings
from limner.server.work import Slots
from limner.store.db import ApiKey, Database
from limner.store.files import FileStore


@dataclass
class Door:
    """What one call draws with, and for whom: the service's objects, the caller's key, and where
    the images are kept."""

    db: Database
    engine: Engine
    policy: Policy
    slots: Slots
    settings: Settings
    key: ApiKey | None = None  # HTTP: the request's key; stdio: none (the local user, as `limner generate`)
    request_id: str = "-"
    files: FileStore | None = None  # HTTP: images are stored and linked by signed URL
    base_url: str = ""
    outputs: Path | None = None  # stdio: images are written here and linked as files
    provenance: Provenance | None = None  # the watermark and the manifest's signer (None: neither)


@dataclass
class Drawn:
    png: bytes
    parameters: dict
    link: str | None
