"""Next-token choice for a batch whose rows each carry their own sampling parameters."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import torch

from kbqa.llm.protocol import SamplingParams


@dataclass
class RowState:
    """What sampling needs to know about one sequence."""

    params: SamplingParams
    prompt_ids: list[int]
    output_ids: list[int]
    generator: torch.Generator | None


def _apply_penalties(logits: torch.Tensor, row: RowState) -> torch.Tensor:
    p = row.params
    device = logits.device
    if p.repetition_penalty != 1.0:
        # HF/CTRL semantics: over prompt and output, shrink positive logits and grow negative ones.
        seen = torch.tensor(sorted(set(row.prompt_ids) | set(row.output_ids)), dtype=torch.long, device=device)
        picked = logits.gather(0, seen)
        picked = torch.where(picked < 0, picked * p.repetition_penalty, picked / p.repetition_penalty)
        logits = logits.scatter(0, seen, picked)
    if (p.presence_penalty or p.frequency_penalty) and row.output_ids:
        # OpenAI semantics: over the generated tokens only.
        out = torch.tensor(row.output_ids, dtype=torch.long, device=device)
        counts = torch.bincount(out, minlength=logits.shape[-1])[: logits.shape[-1]].to(logits.dtype)
        logits = logits - p.frequency_penalty * counts - p.presence_penalty * (counts > 0).to(logits.dtype)
    return logits


def _filter_top_k_top_p(logits: torch.Tensor, top_k: int, top_p: float) -> torch.Tensor:
    if top_k > 0 and top_k < logits.shape[-1]:
        kth = torch.topk(logits, top_k).values[-1]
        logits = logits.masked_fill(logits < kth, float("-inf"))
    if top_p < 1.0:
        sorted_logits, order = torch.sort(logits, descending=True)
        cumulative = sorted_logits.softmax(-1).cumsum(-1)
        # Keep the smallest prefix whose mass reaches top_p (the first token always survives).
        drop_sorted = (cumulative - sorted_logits.softmax(-1)) >= top_p
        drop = torch.zeros_like(drop_sorted).scatter(0, order, drop_sorted)
        logits = logits.masked_fill(drop, float("-inf"))
    return logits


def choose_tokens(logits: torch.Tensor, rows: Sequence[RowState]) -> list[int]:
    """One token per row from ``logits`` [rows, vocab] (float32)."""
    plain_greedy = [
        i
        for i, r in enumerate(rows)
        if r.params.greedy
        and r.params.repetition_penalty == 1.0
        and not r.params.presence_penalty
        and not r.params.frequency_penalty
    ]
    chosen: list[int] = [0] * len(rows)
    if plain_greedy:
        idx = torch.tensor(plain_greedy, device=logits.device)
        for i, tok in zip(plain_greedy, logits.index_select(0, idx).argmax(-1).tolist(), strict=True):
            chosen[i] = tok
    done = set(plain_greedy)
    for i, row in enumerate(rows):
        if i in done:
            continue
        row_logits = _apply_penalties(logits[i], row)
        p = row.params
        if p.greedy:
            chosen[i] = int(row_logits.argmax())
            continue
        row_logits = _filter_top_k_top_p(row_logits / p.temperature, p.top_k, p.top_p)
        probs = row_logits.softmax(-1)
        chosen[i] = int(torch.multinomial(probs, 1, generator=row.generator))
    return chosen
