"""``/mcp`` in ``limner serve``: streamable HTTP, every request with an API key."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import anyio
from fastapi import FastAPI
from mcp.server.mcpserver import MCPServer
from mcp.server.transport_security import TransportSecuritySettings
from starlette.requests import Request
from starlette.routing import Route
from starlette.types import Receive, Scope, Send

from limner.server.body_limit import MCP_PATH, body_limit
from limner.server.deps import get_api_key
from limner.server.mcp.tools import create_server
from limner.server.settings import Settings


class Endpoint:
    """``/mcp`` in ``limner serve``: each request is authenticated with an API key, by the Images
    API's own lookup (a missing or wrong key is its 401), and the tools find the key on the request."""

    def __init__(self, server: MCPServer):
        self.server = server

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        request = Request(scope, receive)
        request.state.api_key = await anyio.to_thread.run_sync(get_api_key, request)
        await self.server.session_manager.handle_request(scope, receive, send)


def mount(app: FastAPI) -> MCPServer:
    """Add ``/mcp`` to the app; its sessions run inside the app's lifespan (``serving``)."""
    server = create_server()
    app.router.routes.append(Route(MCP_PATH, Endpoint(server), include_in_schema=False))
    return server


@asynccontextmanager
async def serving(server: MCPServer, settings: Settings) -> AsyncIterator[None]:
    """Run the endpoint's session manager while the app runs: a fresh one per start (the SDK's runs
    once). Stateless, so any worker process can answer any request. No DNS-rebinding allowlist:
    every request needs an API key, which a page that rebinds a name does not have."""
    server.streamable_http_app(
        streamable_http_path=MCP_PATH,
        stateless_http=True,
        max_request_body_size=body_limit(settings, MCP_PATH),
        transport_security=TransportSecuritySettings(enable_dns_rebinding_protection=False),
    )
    async with server.session_manager.run():
        yield
