"""Who a request is and what it may do: API keys with a scope (read < write < admin) and an optional list of
knowledge bases.

The middleware finds the request's key and leaves a :class:`Principal` in the ASGI scope; one app-wide dependency,
:func:`authorize`, compares it with :data:`ROUTE_SCOPES`, the single table saying which scope each route needs. A
route missing from the table needs admin, so a new route is closed until someone decides otherwise. Knowledge-base
lists are checked where a request's KB name is read (``kbqa.api.names.kb_name``) and where KBs are listed.
"""

from __future__ import annotations

import enum
import secrets
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from fastapi import Request
from starlette.types import Scope as ASGIScope

from kbqa.api.errors import ApiError
from kbqa.api.settings import APIKey


class Scope(enum.IntEnum):
    READ = 1
    WRITE = 2
    ADMIN = 3


@dataclass(frozen=True)
class Principal:
    scope: Scope
    knowledge_bases: frozenset[str] | None  # None: every knowledge base
    name: str = ""

    def may_use(self, kb: str) -> bool:
        return self.knowledge_bases is None or kb in self.knowledge_bases

    def describe(self) -> dict[str, object]:
        kbs = None if self.knowledge_bases is None else sorted(self.knowledge_bases)
        return {"scope": self.scope.name.lower(), "knowledge_bases": kbs, "name": self.name}


UNRESTRICTED = Principal(Scope.ADMIN, None)  # a server without keys: everyone may do everything, as in Chatchat

_R, _W, _A = Scope.READ, Scope.WRITE, Scope.ADMIN

# (method, route path) -> the scope it needs. Paths are the route templates, as FastAPI declares them.
ROUTE_SCOPES: dict[tuple[str, str], Scope] = {
    # docs and probes
    ("GET", "/"): _R,
    ("GET", "/docs"): _R,
    ("GET", "/redoc"): _R,
    ("GET", "/openapi.json"): _R,
    ("GET", "/health"): _R,
    ("GET", "/ready"): _R,
    ("GET", "/auth/whoami"): _R,
    ("GET", "/metrics"): _R,  # a plain route (no dependency): any valid key, or metrics.api_key alone when set
    # chat and retrieval
    ("POST", "/chat/chat"): _R,
    ("POST", "/chat/feedback"): _R,
    ("POST", "/chat/knowledge_base_chat"): _R,
    ("POST", "/chat/file_chat"): _R,
    ("POST", "/chat/search_engine_chat"): _R,
    ("POST", "/chat/agent_chat"): _R,
    ("POST", "/knowledge_base/upload_temp_docs"): _R,  # file chat's own temporary files, no knowledge base
    ("GET", "/kb/v1/models"): _R,
    ("POST", "/kb/v1/chat/completions"): _R,
    ("GET", "/knowledge_base/list_knowledge_bases"): _R,
    ("GET", "/knowledge_base/list_kb_details"): _R,
    ("GET", "/knowledge_base/list_files"): _R,
    ("GET", "/knowledge_base/list_file_details"): _R,
    ("POST", "/knowledge_base/search_docs"): _R,
    ("GET", "/knowledge_base/download_doc"): _R,
    ("POST", "/knowledge_base/evaluate"): _R,
    ("POST", "/other/embed_texts"): _R,
    ("POST", "/other/completion"): _R,
    ("POST", "/server/configs"): _R,
    ("POST", "/server/list_search_engines"): _R,
    ("POST", "/server/get_prompt_template"): _R,
    ("POST", "/llm_model/list_running_models"): _R,
    ("POST", "/llm_model/list_models"): _R,
    ("POST", "/llm_model/list_config_models"): _R,
    ("POST", "/llm_model/get_model_config"): _R,
    ("GET", "/jobs"): _R,
    ("GET", "/jobs/{job_id}"): _R,
    # a knowledge base's files
    ("POST", "/knowledge_base/upload_docs"): _W,
    ("POST", "/knowledge_base/delete_docs"): _W,
    ("POST", "/knowledge_base/update_docs"): _W,
    ("POST", "/knowledge_base/update_docs_by_id"): _W,
    ("POST", "/jobs/{job_id}/cancel"): _W,
    # knowledge bases themselves, models, backups
    ("POST", "/knowledge_base/create_knowledge_base"): _A,
    ("POST", "/knowledge_base/delete_knowledge_base"): _A,
    ("POST", "/knowledge_base/update_info"): _A,
    ("POST", "/knowledge_base/recreate_vector_store"): _A,
    ("POST", "/knowledge_base/kb_summary_api/{operation}"): _A,
    ("POST", "/knowledge_base/export"): _A,
    ("POST", "/knowledge_base/import"): _A,
    ("GET", "/knowledge_base/download_backup"): _A,
    ("POST", "/llm_model/stop"): _A,
    ("POST", "/llm_model/change"): _A,
    ("POST", "/llm_model/change_model"): _A,
}


def required_scope(method: str, path: str) -> Scope:
    return ROUTE_SCOPES.get((method, path), Scope.ADMIN)


class KeyRing:
    """The configured keys, looked up in constant time per key (the time taken does not tell which key matched)."""

    def __init__(self, keys: Sequence[APIKey]) -> None:
        self._keys = [
            (
                k.key.get_secret_value().encode(),
                Principal(
                    Scope[k.scope.upper()],
                    None if k.knowledge_bases is None else frozenset(k.knowledge_bases),
                    k.name,
                ),
            )
            for k in keys
            if k.key.get_secret_value()
        ]

    def __bool__(self) -> bool:
        return bool(self._keys)

    def find(self, given: Iterable[bytes]) -> Principal | None:
        found: Principal | None = None
        for g in given:
            for secret, principal in self._keys:
                # compare_digest against every key, no early exit: timing says nothing about which key matched.
                if secrets.compare_digest(g, secret) and found is None:
                    found = principal
        return found


PRINCIPAL_KEY = "kbqa_principal"


def set_principal(scope: ASGIScope, principal: Principal) -> None:
    scope.setdefault("state", {})[PRINCIPAL_KEY] = principal


def principal_of(request: Request) -> Principal:
    return request.scope.get("state", {}).get(PRINCIPAL_KEY, UNRESTRICTED)


def _route_path(request: Request) -> str:
    # The matched route's template (/jobs/{job_id}), which the router puts in the scope before dependencies run.
    return getattr(request.scope.get("route"), "path", request.url.path)


async def authorize(request: Request) -> None:
    """The app-wide dependency: refuse with 403 a key whose scope is below what the route needs."""
    principal = principal_of(request)
    method = "GET" if request.method == "HEAD" else request.method
    needed = required_scope(method, _route_path(request))
    if principal.scope < needed:
        raise ApiError(
            403,
            f"此 API key 无权执行该操作 (this key's scope is {principal.scope.name.lower()}; "
            f"{needed.name.lower()} is needed)",
        )


def check_kb(request: Request, kb: str) -> None:
    """Refuse with 403 a key limited to other knowledge bases."""
    if not principal_of(request).may_use(kb):
        raise ApiError(403, f"此 API key 无权访问知识库 {kb} (this key may not use knowledge base {kb})")


def may_use(request: Request, kb: str) -> bool:
    """Whether this request's key may see ``kb`` (for routes that list knowledge bases)."""
    return principal_of(request).may_use(kb)
