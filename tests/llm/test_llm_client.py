"""kbqa's own LLM client against the running stack: sync and async, streaming, errors, settings-only switching."""

from __future__ import annotations

import asyncio

import pytest
from llm_topology import API_KEY, CHAT_MODEL, EMBED_MODEL, Service
from pydantic import SecretStr

from kbqa.llm.client import AsyncLLMClient, LLMClient
from kbqa.llm.errors import AuthenticationFailed, ContextOverflow, ModelNotFound, Overloaded
from kbqa.llm.settings import ClientSettings

pytestmark = pytest.mark.slow

QUESTION = [{"role": "user", "content": "What is the capital of France? Answer in one sentence."}]


def _settings(stack: dict[str, Service], **kw: object) -> ClientSettings:
    values = {
        "base_url": stack["openai"].url + "/v1",
        "api_key": SecretStr(API_KEY),
        "model": CHAT_MODEL,
        "embedding_model": EMBED_MODEL,
        "temperature": 0.0,
        "max_tokens": 8,
        "max_retries": 0,
        **kw,
    }
    return ClientSettings.model_validate(values)


def test_sync_client(stack: dict[str, Service]) -> None:
    with LLMClient(_settings(stack)) as client:
        assert CHAT_MODEL in client.models()
        result = client.chat(QUESTION)
        assert "Paris" in result.text and result.usage["completion_tokens"] <= 8
        deltas = list(client.stream_chat(QUESTION))
        assert "".join(d.text for d in deltas) == result.text
        assert [d.finish_reason for d in deltas if d.finish_reason] == [result.finish_reason]
        assert (
            deltas[-1].usage is not None and deltas[-1].usage["completion_tokens"] == result.usage["completion_tokens"]
        )
        assert client.complete("The sky is", max_tokens=2).usage["completion_tokens"] == 2
        vectors = client.embed(["a", "b"])
        assert len(vectors) == 2 and len(vectors[0]) == 384


def test_async_client(stack: dict[str, Service]) -> None:
    async def main() -> None:
        async with AsyncLLMClient(_settings(stack)) as client:
            results = await asyncio.gather(client.chat(QUESTION), client.chat(QUESTION))
            assert results[0].text == results[1].text and "Paris" in results[0].text
            text = "".join([d.text async for d in client.stream_chat(QUESTION)])
            assert text == results[0].text
            assert len(await client.embed(["x"])) == 1

    asyncio.run(main())


def test_client_errors_keep_their_status(stack: dict[str, Service]) -> None:
    with LLMClient(_settings(stack, api_key=SecretStr("wrong"))) as client, pytest.raises(AuthenticationFailed):
        client.chat(QUESTION)
    with LLMClient(_settings(stack, model="no-such-model")) as client, pytest.raises(ModelNotFound):
        client.chat(QUESTION)
    with LLMClient(_settings(stack)) as client, pytest.raises(ContextOverflow):
        client.chat(QUESTION, max_tokens=100_000)
    with LLMClient(_settings(stack, model="busy-model")) as client:
        with pytest.raises(Overloaded) as info:
            list(client.stream_chat(QUESTION))
        assert info.value.status_code == 503 and info.value.retry_after is not None


def test_unreachable_endpoint_is_a_503_after_retries() -> None:
    settings = ClientSettings(base_url="http://127.0.0.1:9/v1", max_retries=1)
    with LLMClient(settings) as client, pytest.raises(Overloaded):
        client.chat(QUESTION)
