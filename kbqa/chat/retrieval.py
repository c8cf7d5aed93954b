"""The one seam between the API and retrieval: Chatchat's search arguments → the hybrid Retriever."""

from __future__ import annotations

import glob
from collections.abc import Sequence
from typing import Any, Protocol

from kbqa.embeddings.pool import EmbedderPool
from kbqa.knowledge.service import KnowledgeBaseService, SearchHit
from kbqa.retrieval.retriever import RetrievalOptions, Retriever
from kbqa.settings import Settings


class Searcher(Protocol):
    def __call__(
        self,
        kbs: str | Sequence[str],
        query: str,
        top_k: int | None,
        score_threshold: float | None,
        file_name: str | None = None,
        metadata: dict[str, Any] | None = None,
    ) -> list[SearchHit]: ...


def _matches(hit: SearchHit, file_name: str | None, metadata: dict[str, Any] | None) -> bool:
    # Exact comparisons: Chatchat used SQL LIKE here, so "_" or "%" matched other files.
    if file_name and hit.path != file_name:
        return False
    return all(str(hit.metadata.get(k)) == str(v) for k, v in (metadata or {}).items())


class _QueryView:
    """The knowledge-base service as the retriever sees it, but with its own embedding models.

    An embedding model instance serialises its calls, and ingestion holds it for a whole batch (seconds on a small
    CPU): with one shared instance every search queued behind the background upload. The native engines release
    the GIL, so a second instance answers queries while the first embeds documents.
    """

    def __init__(self, service: KnowledgeBaseService, embedders: EmbedderPool) -> None:
        self._service = service
        self.embedders = embedders

    def __getattr__(self, name: str) -> Any:
        return getattr(self._service, name)


def make_searcher(
    service: KnowledgeBaseService, settings: Settings, query_embedders: EmbedderPool | None = None
) -> Searcher:
    view: Any = _QueryView(service, query_embedders) if query_embedders is not None else service
    retriever = Retriever(view, settings)

    def search(
        kbs: str | Sequence[str],
        query: str,
        top_k: int | None,
        score_threshold: float | None,
        file_name: str | None = None,
        metadata: dict[str, Any] | None = None,
    ) -> list[SearchHit]:
        options = RetrievalOptions(
            top_k=top_k,
            score_threshold=score_threshold,
            file_glob=glob.escape(file_name) if file_name else None,
            metadata=metadata or None,
        )
        hits = retriever.search(kbs, query, options)
        return [h for h in hits if _matches(h, file_name, metadata)]

    return search
