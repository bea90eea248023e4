"""An ASGI app served by a real uvicorn on 127.0.0.1, inside the test's own event loop."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from typing import Any

import uvicorn

from sealroom.demo.services import free_port


@contextlib.asynccontextmanager
async def live_server(app: Any) -> AsyncIterator[int]:
    """Serve ``app`` until the block ends; yields the port."""
    port = free_port()
    server = uvicorn.Server(
        uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning", lifespan="off")
    )
    serving = asyncio.create_task(server.serve())
    try:
        while not server.started:
            if serving.done():
                serving.result()  # it failed to start: raise why
                raise RuntimeError("uvicorn stopped before it started")
            await asyncio.sleep(0.02)
        yield port
    finally:
        server.should_exit = True
        await serving
