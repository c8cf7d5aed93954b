"""Names and paths from requests, URL-decoded and then validated by the knowledge-base core's rules.

Chatchat validated before ``urllib.parse.unquote`` in several routes, so ``..%2F`` passed the check and became
``../``. Here the decoded value is the one validated and the one used.
"""

from __future__ import annotations

from urllib.parse import unquote

from fastapi import Request

from kbqa.api.auth import check_kb
from kbqa.errors import InvalidName, InvalidPath
from kbqa.knowledge.naming import normalize_relative_path, validate_kb_name


def kb_name(request: Request, raw: object) -> str:
    if not isinstance(raw, str):
        raise InvalidName("knowledge base name must be a string")
    decoded = unquote(raw)
    request.state.kb_name = decoded  # for Chatchat's messages, which name the KB
    kb = validate_kb_name(decoded)
    check_kb(request, kb)  # a key limited to other knowledge bases stops here, whatever the route
    return kb


def file_path(raw: object) -> str:
    if not isinstance(raw, str):
        raise InvalidPath("file name must be a string")
    return normalize_relative_path(unquote(raw))


def file_paths(raws: list[str]) -> list[str]:
    return [file_path(r) for r in raws]
