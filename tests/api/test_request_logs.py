"""One structured line per request, and a request id that follows a knowledge-base chat from the API server through
the OpenAI server and the controller to the worker (real processes, their log files read back). The LLM processes
run with ``logging.format: json``; the API server's records are formatted here with both formats."""

from __future__ import annotations

import json
import logging
import re
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from kbqa.observability.log_format import JSONFormatter, TextFormatter
from tests.api.conftest import LiveServer, ServerFactory, llm_overrides
from tests.llm.llm_topology import Service, chat_stack

pytestmark = pytest.mark.slow
KEY = "s3cret-ops-key"


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Service]]:
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("KBQA_LOGGING__FORMAT", "json")  # the LLM processes read it from the environment
        with chat_stack(tmp_path_factory.mktemp("log-stack"), max_batch_size=4) as services:
            yield services


@pytest.fixture(scope="module")
def api(server_factory: ServerFactory, stack: dict[str, Service]) -> LiveServer:
    overrides = llm_overrides(f"{stack['openai'].url}/v1")
    overrides["api"] = {**overrides["api"], "api_keys": [{"key": KEY, "name": "ops"}]}  # type: ignore[dict-item]
    srv = server_factory(**overrides)
    with srv.client(headers={"X-API-Key": KEY}) as c:
        c.post("/knowledge_base/create_knowledge_base", json={"knowledge_base_name": "logs"})
        files = [("files", ("ports.md", b"The kbqa API server listens on port 7861.", "text/markdown"))]
        c.post("/knowledge_base/upload_docs", data={"knowledge_base_name": "logs"}, files=files)
    return srv


def _json_lines(log: Path) -> list[dict]:
    out = []
    for line in log.read_text(encoding="utf-8", errors="replace").splitlines():
        if line.startswith("{"):
            out.append(json.loads(line))  # every line the server wrote itself is one JSON object
    return out


def _request_lines(log: Path, rid: str, at_least: int = 1) -> list[dict]:
    """The request lines of ``rid`` in a server's log; waits a little: a line is written when the server has sent
    the last byte, which can be just after the client has read it."""
    deadline = time.monotonic() + 10
    while True:
        found = [r for r in _json_lines(log) if r.get("logger") == "kbqa.requests" and r.get("request_id") == rid]
        if len(found) >= at_least or time.monotonic() > deadline:
            return found
        time.sleep(0.1)


def _chat(api: LiveServer, headers: dict[str, str]) -> str:
    """A streamed KB chat; returns the request id the API server answered with."""
    body = {"query": "Which port does the API server use?", "knowledge_base_name": "logs", "stream": True}
    with (
        api.client(headers={"X-API-Key": KEY, **headers}) as c,
        c.stream("POST", "/chat/knowledge_base_chat", json=body) as r,
    ):
        assert r.status_code == 200
        r.read()
        return r.headers["x-request-id"]


def _records(caplog: pytest.LogCaptureFixture, rid: str) -> list[logging.LogRecord]:
    return [r for r in caplog.records if r.name == "kbqa.requests" and getattr(r, "request_id", None) == rid]


def test_a_kb_chat_carries_the_clients_request_id_to_the_worker(
    api: LiveServer, stack: dict[str, Service], caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.INFO, logger="kbqa.requests"):
        rid = _chat(api, {"X-Request-ID": "trace-2026-abc"})
        deadline = time.monotonic() + 10
        while not (mine := _records(caplog, rid)) and time.monotonic() < deadline:
            time.sleep(0.1)
    assert rid == "trace-2026-abc"
    assert len(mine) == 1  # one line for the request
    fields = mine[0].request  # type: ignore[attr-defined]
    assert fields["route"] == "/chat/knowledge_base_chat" and fields["status"] == 200 and fields["key"] == "ops"
    assert fields["server"] == "api" and fields["duration_ms"] > 0

    # the same record, as each format writes it
    as_json = json.loads(JSONFormatter().format(mine[0]))
    assert (
        as_json["request_id"] == rid and as_json["route"] == "/chat/knowledge_base_chat" and as_json["level"] == "info"
    )
    assert KEY not in json.dumps(as_json)  # the key's name is logged, never the key
    as_text = TextFormatter().format(mine[0])
    assert re.search(r"kbqa\.requests: POST /chat/knowledge_base_chat 200 [\d.]+ms \[rid=trace-2026-abc\]$", as_text)

    # the OpenAI server and the worker wrote their lines under the same id (the controller too, for the dispatch)
    openai = _request_lines(stack["openai"].log, rid)
    assert [(r["route"], r["status"]) for r in openai] == [("/v1/chat/completions", 200)]
    worker = _request_lines(stack["worker"].log, rid)
    assert [(r["route"], r["status"]) for r in worker] == [("/worker_generate_stream", 200)]
    assert worker[0]["server"] == "worker" and worker[0]["duration_ms"] > 0
    assert any(r["route"] == "/get_worker_address" for r in _request_lines(stack["controller"].log, rid))


def test_without_a_client_id_one_is_made_and_still_followed(api: LiveServer, stack: dict[str, Service]) -> None:
    rid = _chat(api, {"X-Request-ID": "not valid: spaces and ; semicolons"})  # unusable: replaced
    assert re.fullmatch(r"[0-9a-f]{32}", rid)
    assert len(_request_lines(stack["worker"].log, rid)) == 1
    assert len(_request_lines(stack["openai"].log, rid)) == 1
    # every log line of the LLM processes is JSON, start-up lines included (transformers' progress bar is no log line)
    for service in stack.values():
        text = service.log.read_text(encoding="utf-8", errors="replace")
        lines = [line for line in text.splitlines() if line.strip() and not line.startswith("Loading weights")]
        assert len(lines) >= 3 and all(line.startswith("{") for line in lines), (service.name, lines[:3])
