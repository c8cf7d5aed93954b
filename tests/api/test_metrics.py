"""/metrics on every server of a real stack (API server, OpenAI server, controller, worker as processes): after an
upload and a short knowledge-base chat the counters have moved; the metrics key and the off switch work."""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from tests.api.conftest import LiveServer, ServerFactory, llm_overrides
from tests.llm.llm_topology import Service, chat_stack

DOC = "# Ports\n\nThe kbqa API server listens on port 7861 by default. The web UI listens on port 8501.\n"


def sample(text: str, name: str, **labels: str) -> float:
    """The value of one series (0 when absent: a counter not yet touched)."""
    for family in text_string_to_metric_families(text):
        for s in family.samples:
            if s.name == name and all(s.labels.get(k) == v for k, v in labels.items()):
                return float(s.value)
    return 0.0


def scrape(url: str, **headers: str) -> str:
    r = httpx.get(f"{url}/metrics", headers=headers, timeout=30)
    assert r.status_code == 200, r.text
    assert r.headers["content-type"].startswith("text/plain")
    return r.text


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Service]]:
    with chat_stack(tmp_path_factory.mktemp("metrics-stack"), max_batch_size=4) as services:
        yield services


@pytest.fixture(scope="module")
def api(server_factory: ServerFactory, stack: dict[str, Service]) -> LiveServer:
    srv = server_factory(**llm_overrides(f"{stack['openai'].url}/v1"))
    with srv.client() as c:
        assert c.post("/knowledge_base/create_knowledge_base", json={"knowledge_base_name": "m"}).status_code == 200
    return srv


@pytest.mark.slow
def test_counters_move_on_every_server_after_an_upload_and_a_chat(api: LiveServer, stack: dict[str, Service]) -> None:
    urls = {"api": api.url, **{name: s.url for name, s in stack.items()}}
    before = {name: scrape(url) for name, url in urls.items()}

    with api.client() as c:
        files = [("files", ("ports.md", DOC.encode(), "text/markdown"))]
        assert c.post("/knowledge_base/upload_docs", data={"knowledge_base_name": "m"}, files=files).status_code == 200
        body = {"query": "Which port does the API server use?", "knowledge_base_name": "m", "stream": True}
        with c.stream("POST", "/chat/knowledge_base_chat", json=body) as r:
            assert r.status_code == 200 and "answer" in r.read().decode()

    after = {name: scrape(url) for name, url in urls.items()}

    def moved(at: str, name: str, **labels: str) -> float:
        return sample(after[at], name, **labels) - sample(before[at], name, **labels)

    upload = {"server": "api", "route": "/knowledge_base/upload_docs", "method": "POST", "status": "200"}
    assert moved("api", "kbqa_http_requests_total", **upload) == 1
    chat_route = "/chat/knowledge_base_chat"
    assert moved("api", "kbqa_http_request_duration_seconds_count", server="api", route=chat_route) == 1
    assert moved("api", "kbqa_ingest_files_total", status="done") == 1
    assert moved("api", "kbqa_ingest_chunks_total") >= 1
    assert moved("api", "kbqa_search_seconds_count") >= 1
    assert moved("api", "kbqa_kb_chat_first_token_seconds_count", route=chat_route) == 1
    assert moved("api", "kbqa_kb_chat_seconds_count", route=chat_route) == 1
    assert sample(after["api"], "kbqa_jobs", state="running") == 0

    chat = {"server": "openai", "route": "/v1/chat/completions", "method": "POST", "status": "200"}
    assert moved("openai", "kbqa_http_requests_total", **chat) == 1

    assert sample(after["controller"], "kbqa_controller_workers") == 1
    assert moved("controller", "kbqa_http_requests_total", route="/get_worker_address", status="200") >= 1

    assert moved("worker", "kbqa_worker_prompt_tokens_total") > 10  # the grounded prompt with the retrieved chunk
    generated = moved("worker", "kbqa_worker_generation_tokens_total")
    assert 1 <= generated <= 12  # llm_overrides: kb_chat_max_tokens 12
    finished = sum(moved("worker", "kbqa_worker_requests_total", finish_reason=r) for r in ("stop", "length"))
    assert finished == 1
    assert moved("worker", "kbqa_worker_time_to_first_token_seconds_count") == 1
    assert moved("worker", "kbqa_worker_batch_size_count") == 1
    assert moved("worker", "kbqa_worker_time_per_output_token_seconds_count") == (1 if generated > 1 else 0)
    assert sample(after["worker"], "kbqa_worker_requests_running") == 0
    assert sample(after["worker"], "kbqa_worker_requests_waiting") == 0
    # the histograms' sums are real durations, not zeros
    assert moved("worker", "kbqa_worker_time_to_first_token_seconds_sum") > 0
    assert moved("api", "kbqa_kb_chat_seconds_sum", route=chat_route) >= moved(
        "api", "kbqa_kb_chat_first_token_seconds_sum", route=chat_route
    )


def test_metrics_key_and_off_switch(server_factory: ServerFactory) -> None:
    keyed = server_factory(api={"api_keys": ["k-read"]}, metrics={"api_key": "scrape-me"})
    assert httpx.get(f"{keyed.url}/metrics").status_code == 401
    assert httpx.get(f"{keyed.url}/metrics", headers={"Authorization": "Bearer k-read"}).status_code == 401
    assert "kbqa_http_requests_total" in scrape(keyed.url, Authorization="Bearer scrape-me")
    # the metrics key opens /metrics only
    assert httpx.get(f"{keyed.url}/health", headers={"Authorization": "Bearer scrape-me"}).status_code == 401

    guarded = server_factory(api={"api_keys": ["k-read"]})  # no metrics key: the server's own keys guard it
    assert httpx.get(f"{guarded.url}/metrics").status_code == 401
    assert "kbqa_search_seconds" in scrape(guarded.url, Authorization="Bearer k-read")

    off = server_factory(metrics={"enabled": False})
    assert httpx.get(f"{off.url}/metrics").status_code == 404
