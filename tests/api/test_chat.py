"""Chat routes against the real LLM stack (controller + SmolLM2 worker + OpenAI server, subprocesses on loopback):
Chatchat's SSE wire format, answers with docs and structured sources, records and feedback, file chat, the
KB-as-model OpenAI endpoint, and a real HTTP status when the LLM is down."""

from __future__ import annotations

import json
from collections.abc import Iterator

import httpx
import openai
import pytest

from tests.api.conftest import LiveServer, ServerFactory, llm_overrides
from tests.llm.llm_topology import free_port

pytestmark = pytest.mark.slow

KB = "chat_kb"
DOC = (
    "# kbqa 服务端口\n\n"
    "kbqa 的 API 服务默认监听 7861 端口，OpenAI 兼容服务监听 8000 端口，控制器监听 21001 端口。\n\n"
    "## Ports\n\nThe kbqa API server listens on port 7861 by default. The OpenAI-compatible server uses port 8000.\n"
)


@pytest.fixture(scope="module")
def server(server_factory: ServerFactory, llm_stack: str) -> LiveServer:
    srv = server_factory(**llm_overrides(llm_stack))
    with srv.client() as c:
        assert c.post("/knowledge_base/create_knowledge_base", json={"knowledge_base_name": KB}).json()["code"] == 200
        files = [("files", ("guide/ports.md", DOC.encode(), "text/markdown"))]
        r = c.post("/knowledge_base/upload_docs", data={"knowledge_base_name": KB}, files=files)
        assert r.json()["data"]["failed_files"] == {}
    return srv


@pytest.fixture(scope="module")
def client(server: LiveServer) -> Iterator[httpx.Client]:
    with server.client() as c:
        yield c


def sse_events(client: httpx.Client, path: str, body: dict) -> tuple[httpx.Response, list[dict]]:
    """Parse the way Chatchat's clients do: every HTTP chunk is one whole ``data: {json}\\r\\n\\r\\n`` event."""
    events = []
    with client.stream("POST", path, json=body) as r:
        assert r.status_code == 200, r.read()
        assert r.headers["content-type"].startswith("text/event-stream")
        for chunk in r.iter_text():
            if not chunk.strip() or chunk.startswith(":"):
                continue
            assert chunk.startswith("data: ") and chunk.endswith("\r\n\r\n"), repr(chunk)
            events.append(json.loads(chunk[6:]))
    return r, events


def _kb_chat_body(**extra: object) -> dict:
    return {"query": "kbqa 的 API 服务默认使用哪个端口?", "knowledge_base_name": KB, "max_tokens": 8, **extra}


def test_kb_chat_stream(client: httpx.Client, server: LiveServer) -> None:
    _, events = sse_events(client, "/chat/knowledge_base_chat", _kb_chat_body(stream=True))
    answers = [e for e in events if "answer" in e]
    assert answers and all(set(e) == {"answer"} for e in answers)
    assert "".join(e["answer"] for e in answers).strip()
    final = events[-1]
    # The gate is on, but the shipped settings turn it off for the bundled model (it cannot judge): no score.
    assert set(final) == {"docs", "sources"}
    assert final["docs"][0].startswith(f"出处 [1] [guide/ports.md]({server.url}/knowledge_base/download_doc?")
    assert "7861" in final["docs"][0]
    source = final["sources"][0]
    assert source["file"] == "guide/ports.md" and source["knowledge_base_name"] == KB and "7861" in source["text"]
    assert 0 < source["relevance"] <= 1 and source["url"].startswith(server.url)
    assert httpx.get(source["url"]).text == DOC  # the download link works


def test_kb_chat_not_stream_is_one_event(client: httpx.Client) -> None:
    _, events = sse_events(client, "/chat/knowledge_base_chat", _kb_chat_body(stream=False))
    assert len(events) == 1
    assert set(events[0]) == {"answer", "docs", "sources"} and events[0]["answer"].strip()
    assert events[0]["sources"][0]["file"] == "guide/ports.md"


def test_kb_chat_with_history(client: httpx.Client) -> None:
    # History is sent to the LLM as messages, and the follow-up is rewritten with it before retrieval.
    history = [["human", "kbqa 有哪些服务?"], {"role": "ai", "content": "API 服务、OpenAI 兼容服务和控制器。"}]
    _, events = sse_events(client, "/chat/knowledge_base_chat", _kb_chat_body(history=history))
    assert len(events) == 1 and events[0]["answer"].strip() and isinstance(events[0]["sources"], list)


@pytest.mark.parametrize(
    "query", ["Which port does the kbqa API server listen on?", "kbqa 的 API 服务默认监听哪个端口？"]
)
def test_kb_chat_grounded_prompt_answers_in_english_and_chinese(client: httpx.Client, query: str) -> None:
    # No temperature or max_tokens: the server's kb_chat defaults apply; the system message and the numbered sources
    # go through the model's real chat template.
    _, events = sse_events(client, "/chat/knowledge_base_chat", {"query": query, "knowledge_base_name": KB})
    assert len(events) == 1 and events[0]["answer"].strip()
    assert events[0]["sources"][0]["index"] == 1 and events[0]["sources"][0]["file"] == "guide/ports.md"


def test_kb_chat_nothing_found_says_so(client: httpx.Client, server: LiveServer) -> None:
    # A threshold of 0 keeps nothing: the configured empty answer, not an invented one.
    _, events = sse_events(client, "/chat/knowledge_base_chat", _kb_chat_body(score_threshold=0.0))
    assert events[0]["answer"] == server.settings.api.empty_answer
    assert events[0]["sources"] == [] and "未找到相关文档" in events[0]["docs"][0]


def test_kb_chat_with_conversation_id_is_recorded_for_feedback(client: httpx.Client, server: LiveServer) -> None:
    # Not in Chatchat (its KB chat kept no record): with a conversation_id the answer gets a message_id to rate.
    _, events = sse_events(client, "/chat/knowledge_base_chat", _kb_chat_body(stream=True, conversation_id="kbconv"))
    final = events[-1]
    assert set(final) == {"docs", "sources", "message_id"}
    assert all("message_id" not in e for e in events[:-1])
    from kbqa.db.models import Message

    with server.service.db.read() as s:
        row = s.get(Message, final["message_id"])
        assert row is not None and row.chat_type == "knowledge_base_chat" and row.conversation_id == "kbconv"
        assert row.response == "".join(e.get("answer", "") for e in events) and row.meta["knowledge_base_name"] == KB
    r = client.post("/chat/feedback", json={"message_id": final["message_id"], "score": 0, "reason": "wrong port"})
    assert r.status_code == 200
    r = client.post("/chat/knowledge_base_chat", json=_kb_chat_body(conversation_id="not a valid id!"))
    assert r.status_code == 400


def test_kb_chat_missing_kb_is_json_404(client: httpx.Client) -> None:
    r = client.post("/chat/knowledge_base_chat", json={"query": "hi", "knowledge_base_name": "no_such_kb"})
    assert r.status_code == 404 and r.json() == {"code": 404, "msg": "未找到知识库 no_such_kb", "data": None}


def test_llm_chat_records_and_feedback(client: httpx.Client, server: LiveServer) -> None:
    _, events = sse_events(
        client, "/chat/chat", {"query": "Say hi", "stream": True, "max_tokens": 6, "conversation_id": "conv1"}
    )
    assert events and all(set(e) == {"text", "message_id"} for e in events)
    message_id = events[0]["message_id"]
    assert len(message_id) == 32
    _, single = sse_events(
        client, "/chat/chat", {"query": "And again?", "conversation_id": "conv1", "history_len": 3, "max_tokens": 6}
    )
    assert len(single) == 1 and single[0]["text"] and single[0]["message_id"] != message_id
    from kbqa.db.models import Message

    with server.service.db.read() as s:
        row = s.get(Message, message_id)
        assert row is not None and row.query == "Say hi" and row.conversation_id == "conv1"
        assert row.response == "".join(e["text"] for e in events)
    r = client.post("/chat/feedback", json={"message_id": message_id, "score": 90, "reason": "good"})
    assert r.json() == {"code": 200, "msg": f"已反馈聊天记录 {message_id}", "data": None}
    with server.service.db.read() as s:
        row = s.get(Message, message_id)
        assert row is not None and (row.feedback_score, row.feedback_reason) == (90, "good")
    r = client.post("/chat/feedback", json={"message_id": "0" * 32, "score": 1})
    assert r.status_code == 404


def test_file_chat(client: httpx.Client) -> None:
    files = [("files", ("notes/ports.txt", b"The secret port of the test service is 4242.", "text/plain"))]
    r = client.post("/knowledge_base/upload_temp_docs", files=files)
    data = r.json()["data"]
    assert r.status_code == 200 and data["failed_files"] == [] and len(data["id"]) == 32
    body = {"query": "What is the secret port?", "knowledge_id": data["id"], "max_tokens": 6}
    _, events = sse_events(client, "/chat/file_chat", body)
    assert len(events) == 1 and events[0]["answer"].strip()
    assert events[0]["docs"][0].startswith("出处 [1] [notes/ports.txt] \n\n")
    _, recorded = sse_events(client, "/chat/file_chat", {**body, "conversation_id": "fileconv"})
    assert len(recorded[0]["message_id"]) == 32
    r = client.post("/chat/file_chat", json={**body, "knowledge_id": "f" * 32})
    assert r.status_code == 404 and r.json()["msg"] == f"未找到临时知识库 {'f' * 32}，请先上传文件"


def test_kb_as_openai_model(server: LiveServer) -> None:
    oa = openai.OpenAI(base_url=f"{server.url}/kb/v1", api_key="unused", max_retries=0)
    assert KB in [m.id for m in oa.models.list().data]
    question = [{"role": "user", "content": "Which port does the kbqa API server use?"}]
    completion = oa.chat.completions.create(model=KB, messages=question, max_tokens=6)  # type: ignore[arg-type]
    assert completion.choices[0].message.content
    sources = completion.model_extra["sources"]  # type: ignore[index]
    assert sources[0]["file"] == "guide/ports.md"
    chunks = list(oa.chat.completions.create(model=KB, messages=question, max_tokens=6, stream=True))  # type: ignore
    assert "".join(c.choices[0].delta.content or "" for c in chunks if c.choices).strip()
    assert chunks[-1].model_extra["sources"][0]["file"] == "guide/ports.md"  # type: ignore[index]
    with pytest.raises(openai.NotFoundError):
        oa.chat.completions.create(model="no_such_kb", messages=question)  # type: ignore[arg-type]


def test_llm_down_gives_real_status(server_factory: ServerFactory) -> None:
    dead = server_factory(**llm_overrides(f"http://127.0.0.1:{free_port()}/v1"))
    with dead.client() as c:
        c.post("/knowledge_base/create_knowledge_base", json={"knowledge_base_name": KB})
        c.post(
            "/knowledge_base/upload_docs",
            data={"knowledge_base_name": KB},
            files=[("files", ("ports.md", DOC.encode(), "text/markdown"))],
        )
        for stream in (True, False):
            r = c.post("/chat/knowledge_base_chat", json=_kb_chat_body(stream=stream))
            assert r.status_code == 503 and r.json()["code"] == 503, r.text
        r = c.post("/chat/chat", json={"query": "hi", "stream": True})
        assert r.status_code == 503


def test_list_running_models_asks_only_the_configured_side(client: httpx.Client) -> None:
    # A client-supplied controller address is ignored (Chatchat POSTed to it: server-side request forgery).
    r = client.post("/llm_model/list_running_models", json={"controller_address": "http://169.254.169.254"})
    data = r.json()["data"]
    assert r.status_code == 200 and "SmolLM2-135M-Instruct" in data
    assert "api_key" not in json.dumps(data)


def _gated_server(server_factory: ServerFactory, llm_stack: str, **api: object) -> LiveServer:
    # No per-model entries: the shipped settings turn the gate off for the bundled model, which cannot judge.
    api = {"answerability_thresholds": {}, **api}
    overrides = llm_overrides(llm_stack)
    srv = server_factory(**{**overrides, "api": {**dict(overrides.get("api", {})), **api}})  # type: ignore[arg-type]
    with srv.client() as c:
        assert c.post("/knowledge_base/create_knowledge_base", json={"knowledge_base_name": KB}).json()["code"] == 200
        files = [("files", ("guide/ports.md", DOC.encode(), "text/markdown"))]
        assert c.post("/knowledge_base/upload_docs", data={"knowledge_base_name": KB}, files=files).status_code == 200
    return srv


def test_answerability_gate_refuses_below_its_threshold(server_factory: ServerFactory, llm_stack: str) -> None:
    # English: the bundled 135M model puts "Yes"/"No" among its first tokens there (not for a Chinese question).
    body = _kb_chat_body(
        query="Which port does the kbqa API server listen on?", stream=False, temperature=0.0, max_tokens=8
    )
    watching = _gated_server(server_factory, llm_stack, answerability_gate=True, answerability_threshold=0.0)
    with watching.client() as c:
        _, events = sse_events(c, "/chat/knowledge_base_chat", body)
    score = events[0]["answerability"]
    assert 0.0 <= score < 1.0  # "no" is always among the first token's 20 alternatives
    assert events[0]["answer"] != watching.settings.api.refusal_en  # threshold 0: the model answered
    # The same question, gate threshold just above its score: the configured refusal, with the sources looked at.
    strict = _gated_server(
        server_factory, llm_stack, answerability_gate=True, answerability_threshold=min(1.0, score + 1e-3)
    )
    with strict.client() as c:
        _, refused = sse_events(c, "/chat/knowledge_base_chat", body)
        _, streamed = sse_events(c, "/chat/knowledge_base_chat", {**body, "stream": True})
    assert refused[0]["answer"] == strict.settings.api.refusal_en
    assert "".join(e.get("answer", "") for e in streamed) == strict.settings.api.refusal_en
    assert refused[0]["answerability"] == score
    assert refused[0]["sources"][0]["file"] == "guide/ports.md"
    off = _gated_server(server_factory, llm_stack, answerability_gate=False)
    with off.client() as c:
        _, events = sse_events(c, "/chat/knowledge_base_chat", body)
    assert "answerability" not in events[0] and events[0]["answer"].strip()
