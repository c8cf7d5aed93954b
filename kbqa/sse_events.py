"""Server-sent events as our HTTP clients (web UI, terminal chat) read them: parsed by the spec, not by HTTP chunk.

Chatchat's own client assumed one chunk per event and broke when a long ``docs`` event arrived in pieces."""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator
from typing import Any


def iter_data(lines: Iterable[str]) -> Iterator[str]:
    """The ``data`` of each event in ``lines`` (already split at CR, LF or CRLF, without the line ends).

    A blank line ends an event; several ``data:`` lines of one event are joined with newlines; comments
    (``: ping``) and other fields (``event:``, ``id:``, ``retry:``) are skipped.
    """
    data: list[str] = []
    for line in lines:
        if not line:
            if data:
                yield "\n".join(data)
                data = []
            continue
        if line.startswith(":"):
            continue
        name, _, value = line.partition(":")
        if name == "data":
            data.append(value[1:] if value.startswith(" ") else value)
    if data:  # a stream cut right after its last data line still delivers it
        yield "\n".join(data)


def iter_json(lines: Iterable[str]) -> Iterator[dict[str, Any]]:
    """Each event's data decoded as a JSON object."""
    for data in iter_data(lines):
        value = json.loads(data)
        if isinstance(value, dict):
            yield value
