"""An ASGI app served by a real uvicorn on 127.0.0.1: inside the test's own event loop, or
from a thread of its own."""

from __future__ import annotations

import asyncio
import contextlib
import threading
import time
from collections.abc import AsyncIterator, Iterator
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


@contextlib.contextmanager
def live_server_thread(app: Any) -> Iterator[int]:
    """Serve ``app`` from a thread of its own until the block ends; yields the port. For
    tests that drive it with synchronous clients (``SyncClient`` runs its own loop)."""
    port = free_port()
    server = uvicorn.Server(
        uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning", lifespan="off")
    )
    thread = threading.Thread(target=server.run, name=f"uvicorn-{port}", daemon=True)
    thread.start()
    try:
        while not server.started:
            if not thread.is_alive():
                raise RuntimeError("uvicorn stopped before it started")
            time.sleep(0.02)
        yield port
    finally:
        server.should_exit = True
        thread.join(timeout=30)
