"""The transformers engine step for :class:`ContinuousBatcher`: left-padded prefill merged into one running cache.

Cache layout: one ``DynamicCache`` whose layers hold ``[batch, kv_heads, time, head_dim]`` tensors, left-padded.
``attention_mask`` [batch, time] marks the real positions and ``position_ids`` count real tokens per row, so rows of
different lengths share the tensors exactly as if each ran alone. Leading columns that became padding for every
row (after long sequences leave) are cut off, so the cache never grows beyond the longest running sequence.
"""

from __future__ import annotations

from typing import Any

import torch
from transformers import DynamicCache

from kbqa.llm.backends.batching import ContinuousBatcher, Sequence
from kbqa.llm.backends.sampling import choose_tokens


class TransformersBatcher(ContinuousBatcher):
    """Continuous batching over a Hugging Face causal LM."""

    def __init__(self, model: Any, tokenizer: Any, **options: Any) -> None:
        super().__init__(tokenizer, **options)
        self.model = model
        self.device = next(model.parameters()).device
        self.pad_id = self._pad_id()
        self._cache: DynamicCache | None = None
        self._mask: torch.Tensor | None = None  # [B, T] long
        self._next_pos: torch.Tensor | None = None  # [B] long
        self._last_tokens: torch.Tensor | None = None  # [B] long
        self.start()

    @property
    def sampling_device(self) -> torch.device:
        return self.device

    def _pad_id(self) -> int:
        for candidate in (self.tokenizer.pad_token_id, self.tokenizer.eos_token_id, 0):
            if candidate is not None:
                return int(candidate)
        return 0

    def kv_cache_bytes(self) -> int | None:
        cache = self._cache  # read without the scheduler's lock: a figure for metrics, one step old at worst
        if cache is None:
            return 0
        return sum(layer.keys.nbytes + layer.values.nbytes for layer in cache.layers if layer.keys is not None)

    def _release_all(self) -> None:
        self._cache = self._mask = self._next_pos = self._last_tokens = None

    @torch.inference_mode()
    def _step(self, arrivals: list[Sequence]) -> None:
        self._drop([i for i, s in enumerate(self._running) if s.cancelled or s.finished])
        arrivals = [s for s in arrivals if not s.cancelled]
        if arrivals:
            self._prefill(arrivals)
        if self._running:
            self._decode()

    def _prefill(self, arrivals: list[Sequence]) -> None:
        length = max(len(s.prompt_ids) for s in arrivals)
        ids = torch.full((len(arrivals), length), self.pad_id, dtype=torch.long)
        mask = torch.zeros((len(arrivals), length), dtype=torch.long)
        for row, seq in enumerate(arrivals):
            n = len(seq.prompt_ids)
            ids[row, length - n :] = torch.tensor(seq.prompt_ids, dtype=torch.long)
            mask[row, length - n :] = 1
        ids, mask = ids.to(self.device), mask.to(self.device)
        positions = (mask.cumsum(-1) - 1).clamp(min=0)
        cache = DynamicCache()
        out = self.model(
            input_ids=ids,
            attention_mask=mask,
            position_ids=positions,
            past_key_values=cache,
            use_cache=True,
            logits_to_keep=1,
        )
        self.stats.forward_calls += 1
        self.stats.prefill_calls += 1
        _zero_padding(cache, mask)
        logits = out.logits[:, -1, :].float()
        tokens = choose_tokens(logits, [s.row_state() for s in arrivals])
        self._merge(arrivals, cache, mask, mask.sum(-1), torch.tensor(tokens, device=self.device))
        self._accept(list(range(len(self._running) - len(arrivals), len(self._running))), tokens, logits)

    def _decode(self) -> None:
        assert self._cache is not None and self._mask is not None
        assert self._next_pos is not None and self._last_tokens is not None
        batch = len(self._running)
        mask = torch.cat([self._mask, torch.ones((batch, 1), dtype=torch.long, device=self.device)], dim=1)
        out = self.model(
            input_ids=self._last_tokens[:, None],
            attention_mask=mask,
            position_ids=self._next_pos[:, None],
            past_key_values=self._cache,
            use_cache=True,
            logits_to_keep=1,
        )
        self.stats.forward_calls += 1
        self.stats.decode_steps += 1
        self._mask = mask
        self._next_pos = self._next_pos + 1
        logits = out.logits[:, -1, :].float()
        tokens = choose_tokens(logits, [s.row_state() for s in self._running])
        self._last_tokens = torch.tensor(tokens, device=self.device)
        self._accept(list(range(batch)), tokens, logits)
        self._drop([i for i, s in enumerate(self._running) if s.finished or s.cancelled])

    # -- batch bookkeeping --------------------------------------------------------------------------------------
    def _merge(
        self,
        seqs: list[Sequence],
        cache: DynamicCache,
        mask: torch.Tensor,
        next_pos: torch.Tensor,
        last_tokens: torch.Tensor,
    ) -> None:
        if self._cache is None:
            self._cache, self._mask, self._next_pos, self._last_tokens = cache, mask, next_pos, last_tokens
        else:
            assert self._mask is not None and self._next_pos is not None and self._last_tokens is not None
            old_t, new_t = self._mask.shape[1], mask.shape[1]
            width = max(old_t, new_t)
            for old_layer, new_layer in zip(self._cache.layers, cache.layers, strict=True):
                old_layer.keys = torch.cat(
                    [_left_pad(old_layer.keys, width, -2), _left_pad(new_layer.keys, width, -2)], dim=0
                )
                old_layer.values = torch.cat(
                    [_left_pad(old_layer.values, width, -2), _left_pad(new_layer.values, width, -2)], dim=0
                )
            self._mask = torch.cat([_left_pad(self._mask, width, -1), _left_pad(mask, width, -1)], dim=0)
            self._next_pos = torch.cat([self._next_pos, next_pos])
            self._last_tokens = torch.cat([self._last_tokens, last_tokens])
        self._running.extend(seqs)
        self.stats.max_running = max(self.stats.max_running, len(self._running))

    def _drop(self, rows: list[int]) -> None:
        if not rows:
            return
        gone = set(rows)
        keep = [i for i in range(len(self._running)) if i not in gone]
        self._running = [self._running[i] for i in keep]
        if not keep:
            self._cache = self._mask = self._next_pos = self._last_tokens = None
            return
        assert self._cache is not None and self._mask is not None
        assert self._next_pos is not None and self._last_tokens is not None
        index = torch.tensor(keep, device=self.device)
        mask = self._mask.index_select(0, index)
        # Columns that are padding in every remaining row carry nothing: cut them off.
        first = int(mask.any(dim=0).long().argmax())
        for layer in self._cache.layers:
            layer.keys = layer.keys.index_select(0, index)[..., first:, :]
            layer.values = layer.values.index_select(0, index)[..., first:, :]
        self._mask = mask[:, first:]
        self._next_pos = self._next_pos.index_select(0, index)
        self._last_tokens = self._last_tokens.index_select(0, index)


def _left_pad(t: torch.Tensor, width: int, dim: int) -> torch.Tensor:
    missing = width - t.shape[dim]
    if missing <= 0:
        return t
    shape = list(t.shape)
    shape[dim] = missing
    return torch.cat([torch.zeros(shape, dtype=t.dtype, device=t.device), t], dim=dim)


def _zero_padding(cache: DynamicCache, mask: torch.Tensor) -> None:
    """Pad positions may hold NaN (a fully masked attention row); masked NaN still poisons a matmul, so zero them."""
    keep = mask.bool()[:, None, :, None]
    for layer in cache.layers:
        layer.keys = torch.where(keep, layer.keys, 0)
        layer.values = torch.where(keep, layer.values, 0)
