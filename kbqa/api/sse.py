"""Server-sent events as Chatchat sent them: ``data: <json>\\r\\n\\r\\n``, raw UTF-8 (ensure_ascii=False), one whole
event per write, ``: ping`` comments while idle, no ``[DONE]``."""

from __future__ import annotations

import json
import logging
from collections.abc import AsyncIterator
from typing import Any

from sse_starlette import EventSourceResponse, ServerSentEvent

from kbqa.errors import KBQAError

log = logging.getLogger(__name__)

SEP = "\r\n"


def event(data: Any) -> ServerSentEvent:
    return ServerSentEvent(data=json.dumps(data, ensure_ascii=False), sep=SEP)


def sse_response(events: AsyncIterator[dict[str, Any]], ping_s: float) -> EventSourceResponse:
    async def encoded() -> AsyncIterator[ServerSentEvent]:
        try:
            async for item in events:
                yield event(item)
        except KBQAError as exc:
            # The 200 is already out: the failure travels as a last event in Chatchat's error shape.
            log.warning("stream ended by %s: %s", type(exc).__name__, exc.message)
            yield event({"code": exc.status_code, "msg": exc.message})

    return EventSourceResponse(encoded(), ping=int(max(1, ping_s)), sep=SEP)


async def prefetched(events: AsyncIterator[dict[str, Any]]) -> AsyncIterator[dict[str, Any]]:
    """Pull the first event before the response starts, so an LLM that is down gives a real HTTP error status
    instead of a 200 stream with an error inside."""
    try:
        first = await anext(events)
    except StopAsyncIteration:
        first = None

    async def rest() -> AsyncIterator[dict[str, Any]]:
        if first is not None:
            yield first
        async for item in events:
            yield item

    return rest()
