"""Retrieval evaluation against a golden set: recall@1/5/10, MRR@10 and nDCG@10 per retrieval mode, with latency.

Golden set: JSONL, one object per line: ``{"query": "...", "relevant_files": ["a.md"]}`` and/or
``"relevant_chunk_ids": [12, 13]``. With files, the ranked chunks are collapsed to their files (first occurrence
wins) before scoring, so a document found by three chunks counts once.
"""

from __future__ import annotations

import json
import math
import statistics
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from kbqa.errors import KBQAError
from kbqa.retrieval.retriever import RetrievalOptions, Retriever

DEPTH = 10
MODES: dict[str, RetrievalOptions] = {
    "dense": RetrievalOptions(dense=True, keyword=False, rerank=False),
    "keyword": RetrievalOptions(dense=False, keyword=True, rerank=False),
    "hybrid": RetrievalOptions(dense=True, keyword=True, rerank=False),
    "hybrid+rerank": RetrievalOptions(dense=True, keyword=True, rerank=True),
}


class GoldenSetError(KBQAError):
    status_code = 400


@dataclass
class GoldenItem:
    query: str
    relevant_files: set[str] = field(default_factory=set)
    relevant_chunks: set[int] = field(default_factory=set)


def parse_golden(lines: Iterable[str]) -> list[GoldenItem]:
    items = []
    for n, line in enumerate(lines, 1):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
            item = GoldenItem(
                str(row["query"]),
                {str(f) for f in row.get("relevant_files", [])},
                {int(c) for c in row.get("relevant_chunk_ids", [])},
            )
        except (ValueError, KeyError, TypeError) as exc:
            raise GoldenSetError(f"golden set line {n}: {exc}") from exc
        if not item.relevant_files and not item.relevant_chunks:
            raise GoldenSetError(f"golden set line {n}: no relevant_files or relevant_chunk_ids")
        items.append(item)
    if not items:
        raise GoldenSetError("the golden set is empty")
    return items


def load_golden(path: Path) -> list[GoldenItem]:
    with path.open(encoding="utf-8") as fh:
        return parse_golden(fh)


def score_ranking(ranked: Sequence[Any], relevant: set[Any], depth: int = DEPTH) -> dict[str, float]:
    """Binary-relevance metrics of one ranked list."""
    top = list(ranked[:depth])
    hits = [1.0 if item in relevant else 0.0 for item in top]
    n_rel = max(len(relevant), 1)
    rr = next((1.0 / (i + 1) for i, h in enumerate(hits) if h), 0.0)
    dcg = sum(h / math.log2(i + 2) for i, h in enumerate(hits))
    idcg = sum(1.0 / math.log2(i + 2) for i in range(min(len(relevant), depth)))
    return {
        "recall@1": sum(hits[:1]) / n_rel,
        "recall@5": sum(hits[:5]) / n_rel,
        "recall@10": sum(hits[:10]) / n_rel,
        "mrr@10": rr,
        "ndcg@10": dcg / idcg if idcg else 0.0,
    }


def _ranked_items(retriever: Retriever, kbs: Sequence[str], item: GoldenItem, options: RetrievalOptions) -> list[Any]:
    hits = retriever.search(kbs, item.query, options)
    if item.relevant_chunks:
        return [h.chunk_id for h in hits]
    return list(dict.fromkeys(h.path for h in hits))


def evaluate_kb(
    retriever: Retriever,
    kbs: str | Sequence[str],
    golden: Sequence[GoldenItem],
    modes: Sequence[str] = ("dense", "keyword", "hybrid"),
    pool: int = 50,
) -> dict[str, dict[str, float]]:
    """{mode: {metric: mean, "latency_ms_p50", "latency_ms_mean", "queries"}} over the golden set."""
    names = [kbs] if isinstance(kbs, str) else list(kbs)
    results: dict[str, dict[str, float]] = {}
    for mode in modes:
        if mode not in MODES:
            raise GoldenSetError(f"unknown mode {mode!r}; choose from {', '.join(MODES)}")
        base = MODES[mode]
        # Enough chunks that ten distinct files remain after collapsing chunks to files.
        options = RetrievalOptions(
            top_k=pool, candidates=pool * 2, dense=base.dense, keyword=base.keyword, rerank=base.rerank
        )
        sums: dict[str, float] = {}
        latencies = []
        for item in golden:
            started = time.perf_counter()
            ranked = _ranked_items(retriever, names, item, options)
            latencies.append((time.perf_counter() - started) * 1000)
            relevant: set[Any] = item.relevant_chunks or item.relevant_files
            for key, value in score_ranking(ranked, relevant).items():
                sums[key] = sums.get(key, 0.0) + value
        row = {key: value / len(golden) for key, value in sums.items()}
        row["latency_ms_p50"] = statistics.median(latencies)
        row["latency_ms_mean"] = statistics.fmean(latencies)
        row["queries"] = float(len(golden))
        results[mode] = row
    return results


def format_table(results: dict[str, dict[str, float]]) -> str:
    cols = ["recall@1", "recall@5", "recall@10", "mrr@10", "ndcg@10", "latency_ms_p50"]
    lines = ["mode            " + "".join(f"{c:>16}" for c in cols)]
    for mode, row in results.items():
        lines.append(f"{mode:<16}" + "".join(f"{row[c]:>16.3f}" if c in row else f"{'-':>16}" for c in cols))
    return "\n".join(lines)
