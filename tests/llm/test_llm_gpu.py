"""The same scheduler on CUDA (bf16). Skipped cleanly where no GPU is present."""

from __future__ import annotations

import asyncio

import pytest
import torch

from kbqa.llm.protocol import GenerateRequest, SamplingParams, WorkerMessage
from kbqa.llm.settings import WorkerSettings

pytestmark = [
    pytest.mark.gpu,
    pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device"),
]


def test_batched_generation_on_cuda() -> None:
    from kbqa.llm.backends.loader import load_backend

    backend = load_backend(
        WorkerSettings(device="cuda", register_with_controller=False, num_threads=torch.get_num_threads())
    )
    try:
        assert backend.details.device.startswith("cuda") and backend.details.dtype == "bfloat16"

        async def one(q: str) -> int:
            req = GenerateRequest(
                model="SmolLM2-135M-Instruct",
                messages=[WorkerMessage(role="user", content=q)],
                params=SamplingParams(temperature=0, max_tokens=16),
            )
            stream = await backend.generate_stream(req)
            last = None
            async for event in stream:
                last = event
            assert last is not None and last.usage is not None
            return last.usage.completion_tokens

        async def main() -> list[int]:
            return await asyncio.gather(*(one(f"Count to {i}.") for i in range(8)))

        counts = asyncio.run(main())
        assert all(0 < c <= 16 for c in counts)
        assert backend.batcher.stats.max_running >= 2
    finally:
        backend.close()
