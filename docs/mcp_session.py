"""A real client session with ``limner mcp``: the official MCP SDK's client starts the server the way
a desktop assistant does (a subprocess speaking JSON-RPC on stdin and stdout, the shipped model),
lists the tools and the models, draws a poster while progress arrives, edits it by the link the
result gave, and meets a refusal. It prints the transcript docs/mcp.md shows and writes the images
it got back to docs/mcp-*.png.

    .venv/bin/python docs/mcp_session.py                  # a fresh data folder in /tmp
    .venv/bin/python docs/mcp_session.py --data-dir /tmp/limner-mcp-demo
"""

from __future__ import annotations

import argparse
import base64
import json
import sys
import tempfile
import time
from pathlib import Path

import anyio
from mcp import Client, StdioServerParameters
from mcp.types import CallToolResult

DOCS = Path(__file__).parent


def blocks(result: CallToolResult, save_as: str | None = None) -> list[Path]:
    """Print a tool result block by block (image data shortened), saving its images."""
    saved = []
    print("<- is_error:", result.is_error)
    for block in result.content:
        if block.type == "text":
            print("<- text:", block.text)
        elif block.type == "image":
            print(f"<- image: {block.mime_type}, {len(block.data):,} base64 characters ({block.data[:24]}…)")
            if save_as:
                path = DOCS / (f"{save_as}.png" if not saved else f"{save_as}-{len(saved) + 1}.png")
                path.write_bytes(base64.b64decode(block.data))
                saved.append(path)
        elif block.type == "resource_link":
            print(f"<- resource_link: {block.name} {block.uri}")
    return saved


async def session(server: StdioServerParameters) -> None:
    started = time.perf_counter()
    async with Client(server) as client:
        info = client.server_info
        print(f"connected in {time.perf_counter() - started:.1f} s to {info.name} {info.version}")
        print("\n-> tools/list")
        for tool in (await client.list_tools()).tools:
            params = ", ".join(tool.input_schema["properties"])
            print(f"<- {tool.name}({params}): {tool.description.splitlines()[0]}")

        print("\n-> tools/call list_models {}")
        blocks(await client.call_tool("list_models", {}))

        async def progress(done: float, total: float | None, message: str | None) -> None:
            print(f"<- progress {done:g}/{total:g}: {message}")

        poster = {"prompt": 'a poster that says "DRAW ME", flat design', "seed": 7}
        print("\n-> tools/call generate_image", json.dumps(poster))
        started = time.perf_counter()
        result = await client.call_tool("generate_image", poster, progress_callback=progress)
        print(f"({time.perf_counter() - started:.1f} s)")
        blocks(result, save_as="mcp-poster")
        link = next(str(b.uri) for b in result.content if b.type == "resource_link")

        edit = {"image": link, "prompt": 'a blue poster that says "DRAW ME", flat design', "strength": 0.85, "seed": 7}
        print("\n-> tools/call edit_image", json.dumps(edit))
        started = time.perf_counter()
        result = await client.call_tool("edit_image", edit, progress_callback=progress)
        print(f"({time.perf_counter() - started:.1f} s)")
        blocks(result, save_as="mcp-edit")

        print("\n-> tools/call generate_image", json.dumps({"prompt": "a gory battlefield"}))
        blocks(await client.call_tool("generate_image", {"prompt": "a gory battlefield"}))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data-dir", type=Path, default=None, help="default: a new folder in /tmp")
    args = parser.parse_args()
    data_dir = args.data_dir or Path(tempfile.mkdtemp(prefix="limner-mcp-"))
    server = StdioServerParameters(
        command=sys.executable,
        args=["-m", "limner.cli", "mcp", "--data-dir", str(data_dir)],
        env={"PYTHONPATH": ":".join(sys.path)},  # the same limner as this script's
    )
    print(f"$ limner mcp --data-dir {data_dir}   (started by the SDK's stdio client)")
    anyio.run(session, server)


if __name__ == "__main__":
    main()
