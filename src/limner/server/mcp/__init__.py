"""Limner as a Model Context Protocol server, so assistants (Claude Desktop, VS Code, Cursor, custom
agents) can draw with it: ``generate_image``, ``edit_image`` and ``list_models``, over stdio
(``limner mcp``) and over streamable HTTP at ``/mcp`` in ``limner serve``, where every request
carries an API key.

A call takes the Images API's path — ``generation.admission`` (moderation, the key's quota), then
``generation.run`` with endpoint "mcp" — so quotas, moderation and usage records are the API's. A
refusal comes back as a tool error holding the API's error object (same code, same words). Images
come back as PNG image content with their seed and parameters, and a link to the kept file: over
HTTP the API's signed file URL, over stdio the PNG written to the output folder.

The package: ``tools`` (the three tools), ``door`` (what a call draws with), ``inputs`` (an
edit's image argument), ``over_http`` and ``over_stdio`` (the two ways in)."""

from limner.server.mcp.door import Door, Drawn
from limner.server.mcp.over_http import mount, serving
from limner.server.mcp.over_stdio import local_door, serve_stdio
from limner.server.mcp.tools import create_server, tool_error

__all__ = ["Door", "Drawn", "create_server", "local_door", "mount", "serve_stdio", "serving", "tool_error"]
