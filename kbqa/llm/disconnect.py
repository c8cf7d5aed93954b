"""Stopping work for clients that went away.

Starlette cancels a *streaming* body when the client disconnects, but a plain handler runs to the end regardless
(FastChat's non-stream generation did exactly that). This races the work against the disconnect.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable
from typing import TypeVar

from starlette.requests import Request

from kbqa.llm.errors import InvalidRequest

T = TypeVar("T")

_POLL_S = 0.25


class ClientDisconnected(InvalidRequest):
    """Nobody will read this answer; the status is only for logs (nginx's 499)."""

    status_code = 499
    code = "client_disconnected"


async def _disconnected(request: Request) -> None:
    while not await request.is_disconnected():
        await asyncio.sleep(_POLL_S)


async def unless_disconnected(request: Request, work: Awaitable[T]) -> T:
    """``await work``, cancelling it if the client disconnects first."""
    task = asyncio.ensure_future(work)
    watch = asyncio.ensure_future(_disconnected(request))
    try:
        await asyncio.wait({task, watch}, return_when=asyncio.FIRST_COMPLETED)
    finally:
        watch.cancel()
    if not task.done():
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
        raise ClientDisconnected("the client disconnected")
    return task.result()
