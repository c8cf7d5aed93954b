"""Combining rankings: reciprocal-rank fusion and weighted min-max score fusion."""

from __future__ import annotations

from collections.abc import Sequence


def rrf(rankings: Sequence[tuple[Sequence[int], float]], k: int = 60) -> dict[int, float]:
    """``rankings``: (ids best first, weight). Score = sum of weight / (k + rank), rank starting at 1."""
    fused: dict[int, float] = {}
    for ids, weight in rankings:
        if weight <= 0:
            continue
        for rank, item in enumerate(ids, 1):
            fused[item] = fused.get(item, 0.0) + weight / (k + rank)
    return fused


def weighted(rankings: Sequence[tuple[Sequence[tuple[int, float]], float]]) -> dict[int, float]:
    """``rankings``: ((id, raw score) best first, weight). Each ranking's scores are min-max normalised to [0, 1]
    (a single hit counts 1), then weighted and summed; an id missing from a ranking gets 0 there."""
    fused: dict[int, float] = {}
    for scored, weight in rankings:
        if weight <= 0 or not scored:
            continue
        values = [s for _, s in scored]
        lo, hi = min(values), max(values)
        span = hi - lo
        for item, score in scored:
            norm = 1.0 if span == 0 else (score - lo) / span
            fused[item] = fused.get(item, 0.0) + weight * norm
    return fused


def ordered(fused: dict[int, float]) -> list[tuple[int, float]]:
    """Best first; ties broken by id so results are deterministic."""
    return sorted(fused.items(), key=lambda kv: (-kv[1], kv[0]))
