"""CORS origin lists, checked the same way for the API server (``api.cors_origins``) and the OpenAI-compatible server
(``llm.openai_server.allowed_origins``).

Both servers allow credentials, so an origin list is a list of exact ``scheme://host[:port]`` values: a wildcard
with credentials would let any web page act as the user, and ``null`` (the origin of ``file://`` pages and
sandboxed frames) would let any sandboxed page do the same.
"""

from __future__ import annotations

from urllib.parse import urlsplit


def check_origins(origins: list[str]) -> list[str]:
    """The origins, normalised (no trailing slash); raises ``ValueError`` naming the first bad one."""
    checked: list[str] = []
    for raw in origins:
        origin = raw.strip().rstrip("/")
        if origin == "*":
            raise ValueError("'*' is not allowed because credentials are allowed: list each origin")
        if origin.lower() == "null":
            raise ValueError(
                "'null' is not allowed (every file:// page and sandboxed frame has it): serve the page over http"
            )
        parts = urlsplit(origin)
        if parts.scheme not in ("http", "https") or not parts.netloc or parts.path or parts.query or parts.fragment:
            raise ValueError(f"{raw!r} is not an origin; write scheme://host[:port], e.g. http://localhost:5500")
        # Browsers send scheme and host in lower case; CORSMiddleware compares strings exactly.
        checked.append(f"{parts.scheme}://{parts.netloc.lower()}")
    return checked
