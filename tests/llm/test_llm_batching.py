"""The continuous-batching scheduler, in-process, with the real bundled model: the contract every generating
backend (transformers, llama.cpp) passes, batched greedy output equal to a lone run included."""

from __future__ import annotations

import asyncio
import time

import pytest

from kbqa.llm.backends.batching import Sequence
from kbqa.llm.backends.chat_backend import BatchedChatBackend
from kbqa.llm.errors import ContextOverflow, Overloaded
from kbqa.llm.protocol import GenerateEvent, GenerateRequest, SamplingParams, WorkerMessage

QUESTIONS = [
    "What is the capital of France? Answer in one sentence.",
    "Name three colors.",
    "Say hello.",
    "What is 2+2?",
]


def _request(question: str, max_tokens: int = 12, **params: object) -> GenerateRequest:
    return GenerateRequest(
        model="SmolLM2-135M-Instruct",
        messages=[WorkerMessage(role="user", content=question)],
        params=SamplingParams(max_tokens=max_tokens, **{"temperature": 0.0, **params}),  # type: ignore[arg-type]
    )


async def _run(backend: BatchedChatBackend, request: GenerateRequest) -> tuple[str, GenerateEvent]:
    stream = await backend.generate_stream(request)
    parts: list[str] = []
    last = None
    async for event in stream:
        assert event.error is None, event.error
        parts.append(event.text)
        last = event
    assert last is not None and last.finish_reason is not None
    return "".join(parts), last


def test_concurrent_requests_share_forward_passes_and_match_unbatched_greedy(chat_backend: BatchedChatBackend) -> None:
    async def main() -> None:
        singles = [await _run(chat_backend, _request(q)) for q in QUESTIONS]
        stats = chat_backend.batcher.stats
        before = stats.forward_calls
        batched = await asyncio.gather(*(_run(chat_backend, _request(q)) for q in QUESTIONS))
        calls = stats.forward_calls - before
        tokens = sum(e.usage.completion_tokens for _, e in batched if e.usage)
        # One at a time would need one forward per token; shared passes need about one per step of the longest.
        assert calls <= max(e.usage.completion_tokens for _, e in batched if e.usage) + len(QUESTIONS)
        assert calls < tokens
        assert stats.max_running >= 2
        for (single_text, single_end), (batch_text, batch_end) in zip(singles, batched, strict=True):
            assert batch_text == single_text
            assert batch_end.usage == single_end.usage
            assert batch_end.finish_reason == single_end.finish_reason

    asyncio.run(main())


def test_late_arrival_joins_the_running_batch(chat_backend: BatchedChatBackend) -> None:
    async def main() -> None:
        solo_text, _ = await _run(chat_backend, _request(QUESTIONS[1], max_tokens=8))
        baseline = chat_backend.batcher.stats.tokens_generated
        first = asyncio.create_task(_run(chat_backend, _request("Write a long story about a dragon.", max_tokens=30)))
        # Wait until the first request is decoding, then add another: it must join between decode steps.
        while chat_backend.batcher.stats.tokens_generated < baseline + 2:
            await asyncio.sleep(0.01)
        steps_before = chat_backend.batcher.stats.decode_steps
        second_text, _ = await _run(chat_backend, _request(QUESTIONS[1], max_tokens=8))
        assert not first.done(), "the long request should still be running when the short one finishes"
        await first
        assert second_text == solo_text
        assert chat_backend.batcher.stats.decode_steps - steps_before >= 7

    asyncio.run(main())


def test_max_tokens_is_exact_and_reported(chat_backend: BatchedChatBackend) -> None:
    async def main() -> None:
        text, end = await _run(chat_backend, _request("Write a long story about a dragon.", max_tokens=5))
        assert end.finish_reason == "length"
        assert end.usage is not None and end.usage.completion_tokens == 5
        prompt_ids = chat_backend._chat_prompt_ids(
            [WorkerMessage(role="user", content="Write a long story about a dragon.")]
        )
        assert end.usage.prompt_tokens == len(prompt_ids)
        assert end.usage.total_tokens == len(prompt_ids) + 5
        assert text

    asyncio.run(main())


def test_stop_string_cuts_the_text_and_finishes(chat_backend: BatchedChatBackend) -> None:
    async def main() -> None:
        full, _ = await _run(chat_backend, _request(QUESTIONS[0], max_tokens=12))
        words = full.split()
        assert len(words) >= 3
        stop = words[2]
        text, end = await _run(chat_backend, _request(QUESTIONS[0], max_tokens=12, stop=[stop]))
        assert end.finish_reason == "stop"
        assert text == full[: full.index(stop)]

    asyncio.run(main())


def test_eos_finishes_with_stop(chat_backend: BatchedChatBackend) -> None:
    async def main() -> None:
        _, end = await _run(chat_backend, _request("Say the single word: yes", max_tokens=40))
        assert end.finish_reason == "stop"
        assert end.usage is not None and end.usage.completion_tokens < 40

    asyncio.run(main())


def test_seeded_sampling_is_reproducible(chat_backend: BatchedChatBackend) -> None:
    async def main() -> None:
        a, _ = await _run(chat_backend, _request("Tell me a joke.", 10, temperature=1.0, top_p=0.9, top_k=40, seed=7))
        b, _ = await _run(chat_backend, _request("Tell me a joke.", 10, temperature=1.0, top_p=0.9, top_k=40, seed=7))
        assert a == b
        penalised, end = await _run(
            chat_backend,
            _request("Tell me a joke.", 10, temperature=0.8, repetition_penalty=1.3, frequency_penalty=0.5, seed=3),
        )
        assert end.usage is not None and end.usage.completion_tokens >= 1 and isinstance(penalised, str)

    asyncio.run(main())


def test_closing_the_stream_cancels_generation(chat_backend: BatchedChatBackend) -> None:
    async def main() -> None:
        stream = await chat_backend.generate_stream(_request("Write a long story about a dragon.", max_tokens=200))
        async for event in stream:
            if event.text:
                break
        generated_at_close = chat_backend.batcher.stats.tokens_generated
        await stream.aclose()
        deadline = time.monotonic() + 10
        while chat_backend.queue_length() and time.monotonic() < deadline:
            await asyncio.sleep(0.02)
        assert chat_backend.queue_length() == 0
        assert chat_backend.batcher.stats.tokens_generated - generated_at_close < 5

    asyncio.run(main())


def test_full_queue_is_refused_with_retry_after(chat_backend: BatchedChatBackend) -> None:
    batcher = chat_backend.batcher
    blockers: list[Sequence] = []
    # Hold the scheduler's lock so nothing is admitted while the queue is filled to its bound.
    with batcher._cond:
        for _ in range(batcher.max_queue_size):
            seq = Sequence(
                prompt_ids=[1, 2, 3], params=SamplingParams(max_tokens=1), max_new_tokens=1, sink=lambda e: None
            )
            batcher._waiting.append(seq)
            blockers.append(seq)
        with pytest.raises(Overloaded) as info:
            batcher.submit(
                Sequence(prompt_ids=[1, 2], params=SamplingParams(max_tokens=1), max_new_tokens=1, sink=lambda e: None)
            )
        for seq in blockers:
            seq.cancel()
        batcher._cond.notify()
    assert info.value.status_code == 503
    assert info.value.retry_after is not None


def test_context_overflow_is_refused_before_generation(chat_backend: BatchedChatBackend) -> None:
    async def main() -> None:
        with pytest.raises(ContextOverflow) as info:
            await chat_backend.generate_stream(_request("hi", max_tokens=chat_backend.context_length))
        assert info.value.status_code == 400
        assert info.value.code == "context_length_exceeded"

    asyncio.run(main())


def test_logprobs_describe_the_chosen_tokens(chat_backend: BatchedChatBackend) -> None:
    async def main() -> None:
        stream = await chat_backend.generate_stream(_request(QUESTIONS[0], max_tokens=6, logprobs=3))
        events = [e async for e in stream]
        entries = [entry for e in events for entry in (e.logprobs or [])]
        text = "".join(e.text for e in events)
        end = events[-1]
        assert end.usage is not None
        # One entry per generated token (an end-of-sequence token has none), in order, spelling the text.
        assert len(entries) == end.usage.completion_tokens - (end.finish_reason == "stop")
        assert "".join(entry.token for entry in entries).strip() == text.strip()
        for entry in entries:
            assert entry.logprob <= 0.0
            assert len(entry.top_logprobs) == 3
            # Greedy: the chosen token is the most likely one.
            assert entry.top_logprobs[0].token == entry.token
            assert abs(entry.top_logprobs[0].logprob - entry.logprob) < 1e-5
            assert entry.top_logprobs[0].logprob >= entry.top_logprobs[1].logprob >= entry.top_logprobs[2].logprob
        plain = await chat_backend.generate_stream(_request(QUESTIONS[0], max_tokens=6))
        assert all(e.logprobs is None for e in [e async for e in plain])

    asyncio.run(main())
