"""Dependencies shared by the routers, as ``Annotated`` aliases."""

from __future__ import annotations

import ipaddress
from collections.abc import Iterator
from typing import Annotated

from fastapi import Depends, Request
from sqlalchemy.orm import Session

from limner.engine import Engine
from limner.errors import Unauthorized
from limner.moderation import Policy
from limner.server.settings import Settings
from limner.store.db import ApiKey, Database
from limner.store.files import FileStore
from limner.store.keys import find_key


def get_db(request: Request) -> Database:
    return request.app.state.db


def get_session(request: Request) -> Iterator[Session]:
    with request.app.state.db.session() as s:  # committed after the handler, rolled back if it raised
        yield s


def presented_key(request: Request) -> str | None:
    auth = request.headers.get("authorization", "")
    if auth.lower().startswith("bearer "):
        return auth[7:].strip()
    return request.headers.get("api-key")


def get_api_key(request: Request) -> ApiKey:
    """The caller's live key. Looked up in a short session of its own: a connection held for the
    whole request while generation takes a second one exhausts the pool under load."""
    key = presented_key(request)
    if not key:
        raise Unauthorized(
            "You didn't provide an API key. Send it as 'Authorization: Bearer KEY' "
            "(or an 'api-key' header); create one with `limner keys create`.",
            code="missing_api_key",
        )
    with request.app.state.db.session() as session:
        row = find_key(session, key)
        if row is None:
            raise Unauthorized("Incorrect API key provided.", code="invalid_api_key")
        session.expunge(row)
    request.state.api_key_id = row.id  # the response carries this key's rate-limit headers
    return row


def address_block(address: str) -> str:
    """What one client is, for counting: its IPv4 address, or the /64 an IPv6 address lies in (one
    host is handed a whole /64 and may pick any address in it)."""
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        return address
    return str(ipaddress.ip_network(f"{ip}/64", strict=False)) if ip.version == 6 else address


def client_address(request: Request) -> str:
    """The caller, as the per-address limits count it (``address_block``); behind a proxy, run
    uvicorn with --proxy-headers so it is the real one."""
    return address_block(request.client.host) if request.client else "unknown"


def get_engine(request: Request) -> Engine:
    return request.app.state.engine


def get_policy(request: Request) -> Policy:
    return request.app.state.policy


def get_files(request: Request) -> FileStore:
    return request.app.state.files


def get_settings(request: Request) -> Settings:
    return request.app.state.settings


DB = Annotated[Database, Depends(get_db)]
DbSession = Annotated[Session, Depends(get_session)]
Key = Annotated[ApiKey, Depends(get_api_key)]
EngineDep = Annotated[Engine, Depends(get_engine)]
PolicyDep = Annotated[Policy, Depends(get_policy)]
FilesDep = Annotated[FileStore, Depends(get_files)]
SettingsDep = Annotated[Settings, Depends(get_settings)]
