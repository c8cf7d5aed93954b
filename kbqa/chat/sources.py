"""Citations: Chatchat's markdown ``docs`` strings for old clients and a structured ``sources`` list for new ones."""

from __future__ import annotations

from typing import Any
from urllib.parse import urlencode

from kbqa.knowledge.service import SearchHit

NO_DOCS_LLM = "<span style='color:red'>未找到相关文档,该回答为大模型自身能力解答！</span>"
NO_DOCS = "<span style='color:red'>未找到相关文档</span>"


def download_url(base_url: str, kb: str, path: str) -> str:
    query = urlencode({"knowledge_base_name": kb, "file_name": path})
    return f"{base_url.rstrip('/')}/knowledge_base/download_doc?{query}"


def source_of(index: int, hit: SearchHit, base_url: str | None) -> dict[str, Any]:
    meta = hit.metadata
    return {
        "index": index,
        "knowledge_base_name": hit.kb,
        "file": hit.path,
        "page": meta.get("page"),
        "heading": meta.get("heading") or meta.get("title"),
        "chunk_id": str(hit.chunk_id),
        "text": hit.text,
        "relevance": round(hit.relevance, 6),
        "score": round(hit.distance, 6),
        "url": download_url(base_url, hit.kb, hit.path) if base_url else None,
    }


def sources_of(hits: list[SearchHit], base_url: str | None) -> list[dict[str, Any]]:
    return [source_of(i + 1, h, base_url) for i, h in enumerate(hits)]


def chatchat_docs(sources: list[dict[str, Any]], *, llm_answered_without_docs: bool) -> list[str]:
    """Chatchat's format: ``出处 [i] [file](url) \\n\\n text\\n\\n`` (no link for file chat); never an empty list."""
    if not sources:
        return [NO_DOCS_LLM if llm_answered_without_docs else NO_DOCS]
    out = []
    for s in sources:
        where = f"[{s['file']}]({s['url']})" if s["url"] else f"[{s['file']}]"
        out.append(f"出处 [{s['index']}] {where} \n\n{s['text']}\n\n")
    return out
