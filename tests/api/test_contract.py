"""Schemathesis over both servers' OpenAPI documents: every operation gets a fixed, small number of generated
requests (valid ones, then invalid ones), and every answer must be no server error (apart from the 501s listed below)
and must match the response schema the document gives for its status, error bodies included.

Both servers are real: the API server on uvicorn with the real models, the OpenAI server as a subprocess in front of
a real controller and the bundled MiniLM embedding worker. No chat worker runs: the fuzzer picks max_tokens up to the
bound and n up to 16, and the bundled 135M chat model decodes ~8 tokens/s on a CI core, so a generated chat request
could take minutes. Chat operations are still fuzzed: everything up to the worker (validation, retrieval, prompt
building, dispatch) runs and ends in the documented 4xx ("no such model"); generation itself is covered by
tests/llm/test_llm_openai_api.py and tests/api/test_chat.py.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import requests
import schemathesis
from hypothesis import HealthCheck, Phase, settings
from hypothesis.errors import Unsatisfiable
from schemathesis.checks import not_a_server_error
from schemathesis.generation.hypothesis.builder import HypothesisTestConfig, HypothesisTestMode, create_test
from schemathesis.specs.openapi.checks import response_schema_conformance

from kbqa.embeddings.pool import bundled_minilm_path
from tests.api.conftest import ServerFactory
from tests.llm.llm_topology import EMBED_MODEL, Stack

# Generated requests per operation, valid and invalid mixed, after the document's own examples. Derandomized, so
# repeatable. KBQA_CONTRACT_EXAMPLES=200 and KBQA_CONTRACT_COVERAGE=1 (schemathesis's deterministic coverage phase:
# each bound's edges, missing and wrong-typed fields; ~90 s more on 2 cores) make a deeper sweep by hand.
EXAMPLES = int(os.environ.get("KBQA_CONTRACT_EXAMPLES", "15"))
PHASES = [HypothesisTestMode.EXAMPLES, HypothesisTestMode.FUZZING]
if os.environ.get("KBQA_CONTRACT_COVERAGE") == "1":
    PHASES.append(HypothesisTestMode.COVERAGE)

# Operations documented as not implemented: 501 is their answer, and the only 5xx allowed anywhere.
DOCUMENTED_501 = {
    "POST /chat/search_engine_chat",
    "POST /chat/agent_chat",
    "POST /llm_model/stop",
    "POST /llm_model/change",
    "POST /llm_model/change_model",
    "POST /other/completion",
    "POST /knowledge_base/kb_summary_api/{operation}",
}

KB = "samples"
DOC = "# Ports\n\nThe API server listens on port 7861 and the web UI on port 8501.\n"


def no_server_error(ctx: Any, response: Any, case: Any) -> bool | None:
    if response.status_code == 501 and case.operation.label in DOCUMENTED_501:
        return None
    return not_a_server_error(ctx, response, case)


CHECKS = [no_server_error, response_schema_conformance]


def run_schema(base_url: str) -> tuple[int, list[str]]:
    """Every operation of the server's document; returns (requests sent, failure reports)."""
    schema = schemathesis.openapi.from_url(f"{base_url}/openapi.json", headers={}, timeout=30)
    hypothesis_settings = settings(
        max_examples=EXAMPLES,
        deadline=None,
        derandomize=True,
        database=None,
        phases=[Phase.explicit, Phase.generate],
        suppress_health_check=list(HealthCheck),
    )
    failures: list[str] = []
    sent = 0
    session = requests.Session()

    def call(case: Any) -> None:
        nonlocal sent
        sent += 1
        case.call_and_validate(base_url=base_url, session=session, checks=CHECKS, timeout=120)

    for result in schema.get_all_operations():
        operation = result.ok()
        # schemathesis's own test builder: the same phases as its command line, bounded by the settings above.
        test = create_test(
            operation=operation,
            test_func=call,
            config=HypothesisTestConfig(project=schema.config, modes=PHASES, settings=hypothesis_settings),
        )
        try:
            test()
        except Unsatisfiable:  # nothing valid or invalid left to draw (an operation without parameters)
            continue
        except (Exception, BaseExceptionGroup) as exc:  # one report per operation; the others still run
            failures.append(f"{operation.label}: {exc}")
    return sent, failures


@pytest.fixture(scope="module")
def llm_side(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, str]]:
    stack = Stack(tmp_path_factory.mktemp("contract-llm"))
    try:
        controller = stack.controller()
        stack.wait_http(controller)
        stack.worker("embed-worker", controller, "--model-path", bundled_minilm_path())
        openai = stack.openai_server(controller)
        stack.wait_for_models(controller, {EMBED_MODEL}, workers=1)
        stack.wait_http(openai)
        yield {"controller": controller.url, "openai": openai.url}
    finally:
        stack.stop_all()


def test_api_server_contract(
    server_factory: ServerFactory, llm_side: dict[str, str], tmp_path_factory: pytest.TempPathFactory
) -> None:
    llm = {
        "client": {"base_url": f"{llm_side['openai']}/v1", "max_tokens": 8, "max_retries": 0, "timeout_s": 30},
        "openai_server": {"controller_address": llm_side["controller"]},
    }
    server = server_factory(Path(tmp_path_factory.mktemp("contract-api")), llm=llm)
    with server.client() as c:
        assert c.post("/knowledge_base/create_knowledge_base", json={"knowledge_base_name": KB}).status_code == 200
        files = [("files", ("ports.md", DOC.encode(), "text/markdown"))]
        assert c.post("/knowledge_base/upload_docs", data={"knowledge_base_name": KB}, files=files).status_code == 200
    sent, failures = run_schema(server.url)
    print(f"{sent} requests")
    assert not failures, f"{len(failures)} failing operation(s) of {sent} requests:\n\n" + "\n\n".join(failures)


def test_openai_server_contract(llm_side: dict[str, str]) -> None:
    sent, failures = run_schema(llm_side["openai"])
    print(f"{sent} requests")
    assert not failures, f"{len(failures)} failing operation(s) of {sent} requests:\n\n" + "\n\n".join(failures)


HUGE = 2**70


def test_openai_and_worker_bounds_refuse_before_any_worker_runs(llm_side: dict[str, str]) -> None:
    """Values that reached torch or a C integer (a 2**70 seed overflowed the generator) are 400s at the edge."""
    chat = {"model": EMBED_MODEL, "messages": [{"role": "user", "content": "hi"}]}
    bad_bodies = [
        ("/v1/chat/completions", {**chat, "seed": HUGE}),
        ("/v1/chat/completions", {**chat, "max_tokens": HUGE}),
        ("/v1/chat/completions", {**chat, "max_completion_tokens": 10**7}),
        ("/v1/chat/completions", {**chat, "top_k": HUGE}),
        ("/v1/chat/completions", {**chat, "n": 17}),
        ("/v1/chat/completions", {**chat, "stop": ["x"] * 17}),
        ("/v1/chat/completions", {**chat, "metadata": {str(i): "v" for i in range(17)}}),
        ("/v1/chat/completions", {**chat, "messages": [{"role": "user", "content": "x"}] * 2049}),
        ("/v1/completions", {"model": EMBED_MODEL, "prompt": [HUGE]}),
        ("/v1/completions", {"model": EMBED_MODEL, "prompt": "x", "best_of": 10**6}),
        ("/v1/embeddings", {"model": EMBED_MODEL, "input": ["x"] * 2049}),
        ("/v1/embeddings", {"model": EMBED_MODEL, "input": "x", "dimensions": HUGE}),
    ]
    for path, body in bad_bodies:
        r = requests.post(llm_side["openai"] + path, json=body, timeout=30)
        assert r.status_code == 400 and r.json()["error"]["type"] == "invalid_request_error", (path, r.text[:300])
    # The worker's own routes are bounded too (it may listen beyond loopback for a remote controller).
    worker = requests.post(
        f"{llm_side['controller']}/get_worker_address", json={"model": EMBED_MODEL}, timeout=10
    ).json()["address"]
    for path, body in [
        ("/worker_generate", {"model": EMBED_MODEL, "prompt": "x", "params": {"seed": HUGE}}),
        ("/worker_generate", {"model": EMBED_MODEL, "prompt_token_ids": [HUGE]}),
        ("/worker_get_embeddings", {"model": EMBED_MODEL, "input": ["x"] * 2049}),
    ]:
        r = requests.post(worker + path, json=body, timeout=30)
        assert r.status_code == 400, (path, r.text[:300])
    r = requests.post(
        f"{llm_side['controller']}/receive_heart_beat", json={"worker_name": worker, "queue_length": HUGE}, timeout=10
    )
    assert r.status_code == 400
