"""examples/web-client/index.html in headless Chromium against the real LLM services (controller + SmolLM2 worker +
OpenAI server with an API key, subprocesses on loopback): served by the OpenAI server at /ui, and opened from
another origin through CORS, allowed and refused."""

from __future__ import annotations

import functools
import threading
import time
from collections.abc import Iterator
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx
import pytest

from kbqa.embeddings.pool import EmbedderPool
from tests.api.conftest import LiveServer
from tests.conftest import make_settings
from tests.llm.llm_topology import API_KEY, CHAT_MODEL, Service, chat_stack, free_port

pytestmark = pytest.mark.slow

PAGE_DIR = Path(__file__).resolve().parents[2] / "examples" / "web-client"


class _QuietHandler(SimpleHTTPRequestHandler):
    def log_message(self, format: str, *args: Any) -> None:
        pass  # the test output is no place for an access log


@pytest.fixture(scope="module")
def static_port() -> Iterator[int]:
    """The page's folder served as plain files: a second origin, as a developer's own web server would be."""
    port = free_port()
    server = ThreadingHTTPServer(("127.0.0.1", port), functools.partial(_QuietHandler, directory=str(PAGE_DIR)))
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield port
    finally:
        server.shutdown()
        server.server_close()


@pytest.fixture(scope="module")
def llm(tmp_path_factory: pytest.TempPathFactory, static_port: int) -> Iterator[dict[str, Service]]:
    origin = f"http://127.0.0.1:{static_port}"
    with chat_stack(tmp_path_factory.mktemp("web-client-llm"), "--allowed-origins", origin, api_key=API_KEY) as llm:
        yield llm


@pytest.fixture(scope="module")
def api_server(
    tmp_path_factory: pytest.TempPathFactory, embedders: EmbedderPool, llm: dict[str, Service], static_port: int
) -> Iterator[LiveServer]:
    """The API server with a small ``samples`` KB, allowing the static origin: its /kb/v1 is OpenAI-shaped too."""
    settings = make_settings(
        tmp_path_factory.mktemp("web-client-api"),
        api={"cors_origins": [f"http://127.0.0.1:{static_port}"]},
        llm={"client": {"base_url": f"{llm['openai'].url}/v1", "api_key": API_KEY, "max_retries": 0}},
    )
    srv = LiveServer(settings, embedders).start()
    try:
        with srv.client() as c:
            assert c.post("/knowledge_base/create_knowledge_base", json={"knowledge_base_name": "samples"}).is_success
            doc = b"# Ports\n\nThe kbqa API server listens on port 7861. The web UI uses port 8501.\n"
            files = [("files", ("guide/ports.md", doc, "text/markdown"))]
            r = c.post("/knowledge_base/upload_docs", data={"knowledge_base_name": "samples"}, files=files)
            assert r.json()["data"]["failed_files"] == {}
        yield srv
    finally:
        srv.stop()


def connect(page: Any, max_tokens: int, model: str = CHAT_MODEL) -> None:
    """Key in, models loaded, the chat model picked: what a user does first."""
    page.fill("#api-key", API_KEY)
    page.click("#load-models")
    page.wait_for_selector(f'#model option[value="{model}"]', state="attached")
    page.select_option("#model", model)
    page.fill("#max-tokens", str(max_tokens))
    assert page.is_hidden("#error")


def ask(page: Any, question: str) -> Any:
    page.fill("#prompt", question)
    page.press("#prompt", "Enter")
    return page.locator(".msg.assistant").last


def wait_idle(worker: Service, timeout: float = 10) -> None:
    deadline = time.monotonic() + timeout
    while httpx.get(f"{worker.url}/health", timeout=5).json()["detail"]["queue_length"]:
        assert time.monotonic() < deadline, "the worker kept generating after the answer was stopped"
        time.sleep(0.2)


def test_page_served_at_ui_streams_an_answer(page: Any, llm: dict[str, Service], screenshot_dir: Path) -> None:
    page.goto(f"{llm['openai'].url}/ui")
    # The page loads without a key; its first call does not, and it says why.
    page.wait_for_selector("#error:not([hidden])")
    assert "HTTP 401" in page.inner_text("#error")
    assert page.input_value("#api-base") == f"{llm['openai'].url}/v1"
    connect(page, max_tokens=16)
    # Every state the answer's text goes through, recorded by the page's own DOM events, so a fast answer is seen too.
    page.evaluate(
        """() => {
            window.__snapshots = [];
            new MutationObserver(() => {
                const text = document.querySelector('.msg.assistant .text')?.textContent;
                if (text) window.__snapshots.push(text);
            }).observe(document.getElementById('log'), {childList: true, subtree: true, characterData: true});
        }"""
    )
    answer = ask(page, "What is the capital of France?")
    page.wait_for_selector('.msg.assistant[data-state="done"]', timeout=60_000)
    final = answer.locator(".text").inner_text()
    snapshots = page.evaluate("() => window.__snapshots")
    assert int(answer.get_attribute("data-chunks")) > 1
    assert final and final == snapshots[-1].strip()
    partial = [s for s in snapshots if s != snapshots[-1]]
    assert partial and all(snapshots[-1].startswith(s) for s in partial), snapshots  # it grew, piece by piece
    assert page.locator(".msg.user").inner_text().endswith("What is the capital of France?")
    assert "chunk(s) in" in page.inner_text("#status")
    page.screenshot(path=str(screenshot_dir / "web_client_answer.png"), full_page=True)


def test_stop_button_stops_the_answer_and_the_generation(page: Any, llm: dict[str, Service]) -> None:
    page.goto(f"{llm['openai'].url}/ui")
    connect(page, max_tokens=400)
    answer = ask(page, "Write a long story about a dragon who learns to bake bread.")
    page.wait_for_function("() => Number(document.querySelector('.msg.assistant')?.dataset.chunks) >= 2")
    page.click("#stop")
    page.wait_for_selector('.msg.assistant[data-state="stopped"]')
    assert page.is_enabled("#send") and page.is_disabled("#stop")
    assert answer.locator(".text").inner_text()
    wait_idle(llm["worker"])


def test_page_from_an_allowed_origin_chats_across_origins(page: Any, llm: dict[str, Service], static_port: int) -> None:
    page.goto(f"http://127.0.0.1:{static_port}/index.html?api={llm['openai'].url}/v1")
    connect(page, max_tokens=12)
    ask(page, "Say hello.")
    page.wait_for_selector('.msg.assistant[data-state="done"]', timeout=60_000)
    assert page.is_hidden("#error")


def test_page_from_another_origin_is_refused(page: Any, llm: dict[str, Service], static_port: int) -> None:
    origin = f"http://localhost:{static_port}"
    page.goto(f"{origin}/index.html?api={llm['openai'].url}/v1")
    page.fill("#api-key", API_KEY)
    page.click("#load-models")
    page.wait_for_function(f"() => document.getElementById('error').textContent.includes('{origin}')")
    assert "does not allow this page's origin" in page.inner_text("#error")
    assert page.locator("#model option").count() == 0


def test_cors_preflight_allows_only_the_listed_origin(llm: dict[str, Service], static_port: int) -> None:
    url = f"{llm['openai'].url}/v1/chat/completions"
    preflight = {
        "Access-Control-Request-Method": "POST",
        "Access-Control-Request-Headers": "authorization,content-type",
    }
    allowed = f"http://127.0.0.1:{static_port}"
    r = httpx.options(url, headers={**preflight, "Origin": allowed})
    assert r.status_code == 200
    assert r.headers["access-control-allow-origin"] == allowed
    assert r.headers["access-control-allow-credentials"] == "true"
    assert "authorization" in r.headers["access-control-allow-headers"].lower()
    r = httpx.options(url, headers={**preflight, "Origin": "http://evil.example"})
    assert r.status_code == 400 and "access-control-allow-origin" not in r.headers


def test_page_chats_with_a_knowledge_base_through_the_api_server(
    page: Any, api_server: LiveServer, static_port: int
) -> None:
    """The same page against the API server's KB-as-a-model endpoint, across origins: the answer lists its sources."""
    page.goto(f"http://127.0.0.1:{static_port}/index.html?api={api_server.url}/kb/v1")
    connect(page, max_tokens=12, model="samples")
    answer = ask(page, "Which port does the API server listen on?")
    page.wait_for_selector('.msg.assistant[data-state="done"]', timeout=60_000)
    assert answer.locator(".text").inner_text().strip()
    first = answer.locator(".sources li a").first
    assert first.inner_text().startswith("guide/ports.md")
    assert first.get_attribute("href").startswith(f"{api_server.url}/knowledge_base/download_doc?")
