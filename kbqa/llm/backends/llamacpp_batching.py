"""The llama.cpp engine step for :class:`ContinuousBatcher`: quantized GGUF weights, one KV-cache slot per row.

Every running sequence owns a llama.cpp sequence id (a slot) with its own cells: a request's prompt plus completion
is checked against the slot's size before it is queued, so a step never runs out of cache half-way. A scheduler step
builds *one* ``llama_batch`` holding the next token of every decoding row plus prompt chunks of rows still
prefilling, up to ``n_batch`` tokens, and runs one ``llama_decode``: decode and prefill share the pass (chunked
prefill), so a long prompt that joins does not stall the running streams for its whole length. Logits are read only
where a token is to be chosen.

Slots are separate KV streams (``kv_unified`` off): in one shared pool the attention of a row depends on where its
cells lie, and copies of one prompt decoded side by side gave logits up to 0.37 apart and different answers;
separate streams gave bit-identical rows, equal to the prompt run alone.
"""

from __future__ import annotations

import ctypes
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from kbqa.llm.backends.batching import ContinuousBatcher, Sequence
from kbqa.llm.backends.sampling import choose_tokens
from kbqa.llm.errors import InternalError


@dataclass
class _Row:
    slot: int
    fed: int = 0  # tokens of this sequence already in the KV cache


class LlamaCppBatcher(ContinuousBatcher):
    """Continuous batching over a llama.cpp context (``llama_cpp`` low-level bindings)."""

    def __init__(
        self,
        lib: Any,
        ctx: Any,
        vocab_size: int,
        tokenizer: Any,
        *,
        n_batch: int,
        kv_bytes: int | None = None,
        **options: Any,
    ) -> None:
        super().__init__(tokenizer, **options)
        self._lib = lib
        self._ctx = ctx
        self._memory = lib.llama_get_memory(ctx)
        self._vocab_size = vocab_size
        self._n_batch = n_batch
        self._batch = lib.llama_batch_init(n_batch, 0, 1)
        self._rows: dict[int, _Row] = {}  # id(seq) -> its slot and progress
        self._free_slots = list(range(self.max_batch_size - 1, -1, -1))
        self._kv_bytes = kv_bytes
        self.start()

    def close(self) -> None:
        self._lib.llama_batch_free(self._batch)

    def kv_cache_bytes(self) -> int | None:
        # llama.cpp allocates every slot's cells when the context is made.
        return int(self._lib.llama_state_get_size(self._ctx)) if self._kv_bytes is None else self._kv_bytes

    # -- the step -----------------------------------------------------------------------------------------------
    def _step(self, arrivals: list[Sequence]) -> None:
        self._drop([s for s in self._running if s.cancelled or s.finished])
        for seq in arrivals:
            if seq.cancelled:
                continue
            self._rows[id(seq)] = _Row(slot=self._free_slots.pop())
            self._running.append(seq)
        self.stats.max_running = max(self.stats.max_running, len(self._running))
        if not self._running:
            return

        batch = self._batch
        n = 0
        choosers: list[tuple[int, int]] = []  # (index in _running, index in the batch whose logits choose)
        prefilling = False
        # Decoding rows first: one token each, so they advance every step whatever joins.
        for index, seq in enumerate(self._running):
            row = self._rows[id(seq)]
            if row.fed < len(seq.prompt_ids):
                continue
            self._put(n, seq.output_ids[-1], row.fed, row.slot, True)
            row.fed += 1
            choosers.append((index, n))
            n += 1
        for index, seq in enumerate(self._running):
            row = self._rows[id(seq)]
            todo = len(seq.prompt_ids) - row.fed
            if todo <= 0 or n >= self._n_batch:
                continue
            take = min(todo, self._n_batch - n)
            for k in range(take):
                last = row.fed + k == len(seq.prompt_ids) - 1
                self._put(n, seq.prompt_ids[row.fed + k], row.fed + k, row.slot, last)
                if last:
                    choosers.append((index, n))
                n += 1
            row.fed += take
            prefilling = True
        batch.n_tokens = n
        status = self._lib.llama_decode(self._ctx, batch)
        if status != 0:
            raise InternalError(f"llama_decode failed with status {status}")
        self.stats.forward_calls += 1
        if prefilling:
            self.stats.prefill_calls += 1
        else:
            self.stats.decode_steps += 1
        if not choosers:
            return
        logits = torch.from_numpy(np.stack([self._logits(i) for _, i in choosers]))
        rows = [index for index, _ in choosers]
        tokens = choose_tokens(logits, [self._running[i].row_state() for i in rows])
        self._accept(rows, tokens, logits)
        self._drop([s for s in self._running if s.finished or s.cancelled])

    def _put(self, i: int, token: int, pos: int, slot: int, wants_logits: bool) -> None:
        batch = self._batch
        batch.token[i] = token
        batch.pos[i] = pos
        batch.n_seq_id[i] = 1
        batch.seq_id[i][0] = slot
        batch.logits[i] = wants_logits

    def _logits(self, batch_index: int) -> np.ndarray:
        pointer = self._lib.llama_get_logits_ith(self._ctx, batch_index)
        # Copied: the buffer is overwritten by the next decode.
        return np.ctypeslib.as_array(ctypes.cast(pointer, ctypes.POINTER(ctypes.c_float)), (self._vocab_size,)).copy()

    # -- bookkeeping --------------------------------------------------------------------------------------------
    def _drop(self, gone: list[Sequence]) -> None:
        if not gone:
            return
        ids = {id(s) for s in gone}
        for seq in gone:
            row = self._rows.pop(id(seq), None)
            if row is None:
                continue
            self._lib.llama_memory_seq_rm(self._memory, row.slot, -1, -1)
            self._free_slots.append(row.slot)
        self._running = [s for s in self._running if id(s) not in ids]

    def _release_all(self) -> None:
        self._lib.llama_memory_clear(self._memory, True)
        self._rows.clear()
        self._free_slots = list(range(self.max_batch_size - 1, -1, -1))
