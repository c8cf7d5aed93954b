"""Acceptance: the three processes on loopback, driven by the official `openai` package and LangChain's ChatOpenAI."""

from __future__ import annotations

import base64
import json
import struct
import time

import httpx
import openai
import pytest
from llm_topology import API_KEY, CHAT_MODEL, EMBED_MODEL, Service

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def client(stack: dict[str, Service]) -> openai.OpenAI:
    return openai.OpenAI(base_url=stack["openai"].url + "/v1", api_key=API_KEY, max_retries=0)


def test_models_list_and_retrieve(client: openai.OpenAI) -> None:
    ids = {m.id for m in client.models.list()}
    assert {CHAT_MODEL, EMBED_MODEL} <= ids
    model = client.models.retrieve(CHAT_MODEL)
    assert model.id == CHAT_MODEL and model.object == "model"


def test_chat_non_stream(client: openai.OpenAI) -> None:
    r = client.chat.completions.create(
        model=CHAT_MODEL,
        messages=[
            {"role": "system", "content": "You are a helpful assistant."},
            {
                "role": "user",
                "content": [{"type": "text", "text": "What is the capital of France? Answer in one sentence."}],
            },
        ],
        max_tokens=8,
        temperature=0,
    )
    assert r.object == "chat.completion"
    assert r.choices[0].message.role == "assistant"
    assert "Paris" in (r.choices[0].message.content or "")
    assert r.choices[0].finish_reason in {"stop", "length"}
    assert r.usage is not None and r.usage.completion_tokens <= 8
    assert r.usage.total_tokens == r.usage.prompt_tokens + r.usage.completion_tokens


def test_chat_stream_chunks_are_complete(client: openai.OpenAI) -> None:
    stream = client.chat.completions.create(
        model=CHAT_MODEL,
        messages=[
            {"role": "developer", "content": "Answer briefly."},
            {"role": "user", "content": "Say hello."},
            {
                "role": "assistant",
                "content": None,
                "tool_calls": [{"id": "call_1", "type": "function", "function": {"name": "greet", "arguments": "{}"}}],
            },
            {"role": "tool", "tool_call_id": "call_1", "content": "Hello!"},
            {"role": "user", "content": "Again, please."},
        ],
        max_completion_tokens=6,
        temperature=0,
        n=2,
        stream=True,
        stream_options={"include_usage": True},
    )
    chunks = list(stream)
    ids = {c.id for c in chunks}
    assert len(ids) == 1
    content_chunks = [c for c in chunks if c.choices]
    for c in chunks:
        assert c.object == "chat.completion.chunk" and c.created > 0 and c.model == CHAT_MODEL
    first_by_choice: dict[int, object] = {}
    finishes: dict[int, int] = {0: 0, 1: 0}
    texts: dict[int, str] = {0: "", 1: ""}
    for c in content_chunks:
        for ch in c.choices:
            first_by_choice.setdefault(ch.index, ch.delta.role)
            if ch.finish_reason is not None:
                finishes[ch.index] += 1
            texts[ch.index] += ch.delta.content or ""
    assert first_by_choice == {0: "assistant", 1: "assistant"}, "the role chunk comes first"
    assert finishes == {0: 1, 1: 1}, "exactly one finish per choice"
    assert texts[0] == texts[1] and texts[0], "greedy choices agree"
    usage_chunk = chunks[-1]
    assert usage_chunk.choices == [] and usage_chunk.usage is not None
    assert usage_chunk.usage.completion_tokens <= 12


def test_stream_wire_ends_with_done(stack: dict[str, Service]) -> None:
    body = {"model": CHAT_MODEL, "messages": [{"role": "user", "content": "Hi"}], "max_tokens": 3, "stream": True}
    with httpx.stream(
        "POST", stack["openai"].url + "/v1/chat/completions", json=body, headers={"Authorization": f"Bearer {API_KEY}"}
    ) as r:
        assert r.status_code == 200
        assert r.headers["content-type"].startswith("text/event-stream")
        lines = [line for line in r.iter_lines() if line]
    assert lines[-1] == "data: [DONE]"
    payloads = [json.loads(line[6:]) for line in lines[:-1]]
    for p in payloads:
        assert set(p) >= {"id", "object", "created", "model", "choices"}
        for ch in p["choices"]:
            assert set(ch) >= {"index", "delta", "finish_reason"}
    assert sum(1 for p in payloads for ch in p["choices"] if ch["finish_reason"]) == 1


def test_completions_stream_and_not(client: openai.OpenAI) -> None:
    r = client.completions.create(model=CHAT_MODEL, prompt="The sky is", max_tokens=4, temperature=0, echo=True)
    assert r.object == "text_completion"
    assert r.choices[0].text.startswith("The sky is")
    assert r.usage is not None and r.usage.completion_tokens == 4 and r.choices[0].finish_reason == "length"
    batch = client.completions.create(model=CHAT_MODEL, prompt=["One, two,", "Red, green,"], max_tokens=2, n=2)
    assert [c.index for c in batch.choices] == [0, 1, 2, 3]
    assert batch.usage is not None and batch.usage.completion_tokens == 8
    tokens = client.completions.create(model=CHAT_MODEL, prompt=[504, 3365, 314], max_tokens=2, temperature=0)
    assert tokens.usage is not None and tokens.usage.prompt_tokens == 3
    chunks = list(
        client.completions.create(
            model=CHAT_MODEL,
            prompt="The sky is",
            max_tokens=4,
            temperature=0,
            stream=True,
            stream_options={"include_usage": True},
        )
    )
    streamed = "".join(c.choices[0].text for c in chunks if c.choices)
    assert streamed == r.choices[0].text.removeprefix("The sky is")
    assert [c.choices[0].finish_reason for c in chunks if c.choices].count("length") == 1
    assert chunks[-1].usage is not None and chunks[-1].usage.completion_tokens == 4


def test_stop_sequences_and_seed(client: openai.OpenAI) -> None:
    full = (
        client.chat.completions.create(
            model=CHAT_MODEL,
            messages=[{"role": "user", "content": "What is the capital of France? Answer in one sentence."}],
            max_tokens=10,
            temperature=0,
        )
        .choices[0]
        .message.content
        or ""
    )
    assert "Paris" in full
    cut = client.chat.completions.create(
        model=CHAT_MODEL,
        messages=[{"role": "user", "content": "What is the capital of France? Answer in one sentence."}],
        max_tokens=10,
        temperature=0,
        stop=["Paris"],
    ).choices[0]
    assert cut.finish_reason == "stop" and cut.message.content == full[: full.index("Paris")]
    sampled = [
        client.chat.completions.create(
            model=CHAT_MODEL,
            messages=[{"role": "user", "content": "Tell me a joke."}],
            max_tokens=6,
            temperature=1.0,
            top_p=0.95,
            seed=42,
            presence_penalty=0.5,
            frequency_penalty=0.5,
        )
        .choices[0]
        .message.content
        for _ in range(2)
    ]
    assert sampled[0] == sampled[1]


def test_embeddings_float_base64_order_and_dimensions(client: openai.OpenAI) -> None:
    texts = ["The cat sits on the mat.", "Quantum chromodynamics", "A kitten rests on a rug.", "hello"]
    r = client.embeddings.create(model=EMBED_MODEL, input=texts)
    assert [d.index for d in r.data] == [0, 1, 2, 3]
    vectors = [d.embedding for d in r.data]
    assert all(len(v) == 384 for v in vectors)

    def cos(a: list[float], b: list[float]) -> float:
        return sum(x * y for x, y in zip(a, b, strict=True))

    assert cos(vectors[0], vectors[2]) > cos(vectors[0], vectors[1])
    single = client.embeddings.create(model=EMBED_MODEL, input="hello").data[0].embedding
    assert max(abs(a - b) for a, b in zip(single, vectors[3], strict=True)) < 1e-5, "batch-independent vectors"
    assert r.usage.prompt_tokens > 0 and r.usage.total_tokens == r.usage.prompt_tokens

    raw = httpx.post(
        str(client.base_url) + "embeddings",
        json={"model": EMBED_MODEL, "input": ["hello"], "encoding_format": "base64"},
        headers={"Authorization": f"Bearer {API_KEY}"},
    ).json()
    decoded = struct.unpack("<384f", base64.b64decode(raw["data"][0]["embedding"]))
    assert max(abs(a - b) for a, b in zip(decoded, vectors[3], strict=True)) < 1e-6

    short = client.embeddings.create(model=EMBED_MODEL, input=["hello"], dimensions=64).data[0].embedding
    assert len(short) == 64 and abs(sum(x * x for x in short) - 1.0) < 1e-5


def test_langchain_chat_openai(stack: dict[str, Service]) -> None:
    from langchain_openai import ChatOpenAI

    llm = ChatOpenAI(
        model=CHAT_MODEL,
        base_url=stack["openai"].url + "/v1",
        api_key=API_KEY,
        temperature=0,
        max_tokens=8,
        max_retries=0,
    )
    answer = llm.invoke("What is the capital of France? Answer in one sentence.")
    assert "Paris" in str(answer.content)
    pieces = list(llm.stream("What is the capital of France? Answer in one sentence."))
    assert "".join(str(p.content) for p in pieces) == answer.content
    streamed_usage = ChatOpenAI(
        model=CHAT_MODEL,
        base_url=stack["openai"].url + "/v1",
        api_key=API_KEY,
        temperature=0,
        max_tokens=4,
        max_retries=0,
        stream_usage=True,
    )
    total = None
    for piece in streamed_usage.stream("Hi"):
        total = piece if total is None else total + piece
    assert total is not None and total.usage_metadata is not None
    assert total.usage_metadata["output_tokens"] <= 4


def _wait_idle(worker: str, seconds: float) -> bool:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if httpx.get(worker + "/worker_get_status").json()["queue_length"] == 0:
            return True
        time.sleep(0.1)
    return False


def test_client_disconnect_stops_generation(stack: dict[str, Service]) -> None:
    """400 forced tokens take about a minute here; after the client leaves, the worker must be idle in seconds."""
    long = {
        "model": CHAT_MODEL,
        "messages": [{"role": "user", "content": "Write a long story."}],
        "max_tokens": 400,
        "ignore_eos": True,
    }
    url = stack["openai"].url + "/v1/chat/completions"
    with httpx.stream("POST", url, json={**long, "stream": True}, headers={"Authorization": f"Bearer {API_KEY}"}) as r:
        for line in r.iter_lines():
            if '"content":"' in line and '"content":""' not in line:
                break
    assert _wait_idle(stack["chat"].url, 10), "streaming generation kept running for a departed client"

    with pytest.raises(httpx.ReadTimeout):
        httpx.post(url, json=long, headers={"Authorization": f"Bearer {API_KEY}"}, timeout=3)
    assert _wait_idle(stack["chat"].url, 10), "non-stream generation kept running for a departed client"


def test_chat_logprobs(client: openai.OpenAI) -> None:
    question = [{"role": "user", "content": "Name three colors."}]
    r = client.chat.completions.create(
        model=CHAT_MODEL, messages=question, max_tokens=5, temperature=0, logprobs=True, top_logprobs=2
    )
    content = r.choices[0].logprobs.content if r.choices[0].logprobs else None
    assert content and len(content) == r.usage.completion_tokens - (r.choices[0].finish_reason == "stop")
    assert all(t.logprob <= 0 and len(t.top_logprobs) == 2 and t.top_logprobs[0].token == t.token for t in content)
    assert "".join(t.token for t in content).strip() == (r.choices[0].message.content or "").strip()
    chunks = list(
        client.chat.completions.create(
            model=CHAT_MODEL, messages=question, max_tokens=5, temperature=0, logprobs=True, stream=True
        )
    )
    streamed = [t for c in chunks if c.choices and c.choices[0].logprobs for t in c.choices[0].logprobs.content or []]
    assert [t.token for t in streamed] == [t.token for t in content]
    assert all(t.top_logprobs == [] for t in streamed)
    plain = client.chat.completions.create(model=CHAT_MODEL, messages=question, max_tokens=3, temperature=0)
    assert plain.choices[0].logprobs is None
