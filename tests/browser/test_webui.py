"""The Streamlit web UI in a real browser: `streamlit run webui.py` as a subprocess against a real API server and the
real LLM stack, driven by Playwright in Debian's headless Chromium. A user creates a knowledge base, uploads a file,
tests retrieval, and asks a question in knowledge-base chat; the streamed answer and its source appear. Nothing may
phone home: every browser request stays on the UI's loopback origin and the Streamlit process opens no connection
through the (recording) proxy it is given."""

from __future__ import annotations

import os
import re
import socket
import subprocess
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit

import httpx
import pytest

from kbqa.webui.launch import streamlit_argv
from tests.api.conftest import LiveServer, ServerFactory, llm_overrides, llm_stack, server_factory  # noqa: F401
from tests.llm.llm_topology import free_port

pytestmark = pytest.mark.slow

REPO = Path(__file__).resolve().parents[2]
KB = "ports_kb"
DOC = """# kbqa services and ports

## API server

The kbqa API server listens on port 7861 by default. It serves the Langchain-Chatchat compatible REST API and the
interactive documentation at /docs, and it answers questions from knowledge bases with cited sources.

## Web UI

The Streamlit web UI listens on port 8501. It talks to the API server over HTTP only, so it can run on another
machine than the server; its address and API key are set in the sidebar.

## LLM serving

The OpenAI-compatible server listens on port 8000. It asks the controller on port 21001 which model worker
should answer; the first model worker listens on port 21002.

## Storage

Every knowledge base keeps its uploaded files in knowledge_base/<name>/content and its FAISS index in
knowledge_base/<name>/vector_store; the metadata of every file and chunk lives in SQLite.
"""
WAIT_MS = 90_000  # generous: 2 CPU cores shared with the model worker


class RecordingProxy:
    """A proxy that refuses everything and remembers what was asked of it: the Streamlit process gets it as
    HTTP(S)_PROXY, so any request it makes to the outside world shows up here."""

    def __init__(self) -> None:
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen()
        self.url = f"http://127.0.0.1:{self.sock.getsockname()[1]}"
        self.requests: list[str] = []
        threading.Thread(target=self._serve, daemon=True).start()

    def _serve(self) -> None:
        while True:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            with conn:
                conn.settimeout(2)
                try:
                    self.requests.append(conn.recv(4096).split(b"\r\n", 1)[0].decode("latin-1"))
                except OSError:
                    self.requests.append("(connection without a request line)")

    def close(self) -> None:
        self.sock.close()


@dataclass
class StreamlitUI:
    url: str
    proc: subprocess.Popen[bytes]
    log: Path
    proxy: RecordingProxy
    browser_requests: list[str] = field(default_factory=list)

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(10)
        self.proxy.close()


@pytest.fixture(scope="module")
def api(server_factory: ServerFactory, llm_stack: str) -> LiveServer:  # noqa: F811
    overrides = llm_overrides(llm_stack)
    overrides["llm"]["client"]["max_tokens"] = 24  # type: ignore[index]  # a whole sentence for the screenshot
    return server_factory(**overrides)


@pytest.fixture(scope="module")
def webui(api: LiveServer, tmp_path_factory: pytest.TempPathFactory) -> Iterator[StreamlitUI]:
    tmp = tmp_path_factory.mktemp("webui")
    port = free_port()
    proxy = RecordingProxy()
    argv = streamlit_argv("127.0.0.1", port, api_url=api.url, script=REPO / "webui.py")
    env = {
        **os.environ,
        "HOME": str(tmp),  # no user-level ~/.streamlit settings, and nothing written to the real home
        **{name: proxy.url for name in ("HTTP_PROXY", "HTTPS_PROXY", "http_proxy", "https_proxy")},
        "NO_PROXY": "127.0.0.1,localhost",
        "no_proxy": "127.0.0.1,localhost",
    }
    log = tmp / "streamlit.log"
    proc = subprocess.Popen(argv, cwd=REPO, env=env, stdout=log.open("wb"), stderr=subprocess.STDOUT)
    ui = StreamlitUI(f"http://127.0.0.1:{port}", proc, log, proxy)
    try:
        deadline = time.monotonic() + 60
        while True:
            if proc.poll() is not None:
                pytest.fail(f"streamlit exited early:\n{log.read_text()[-3000:]}")
            try:
                if httpx.get(f"{ui.url}/_stcore/health", timeout=2).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if time.monotonic() > deadline:
                pytest.fail(f"streamlit did not start:\n{log.read_text()[-3000:]}")
            time.sleep(0.3)
        yield ui
    finally:
        ui.stop()


@pytest.fixture
def ui_page(page: object, webui: StreamlitUI) -> object:
    page.set_default_timeout(WAIT_MS)  # type: ignore[attr-defined]
    # Tall enough for a page's main parts in one screenshot (Streamlit scrolls inside its own container).
    page.set_viewport_size({"width": 1400, "height": 1250})  # type: ignore[attr-defined]
    page.on("request", lambda request: webui.browser_requests.append(request.url))  # type: ignore[attr-defined]
    return page


def _shot(page: object, directory: Path, name: str) -> None:
    from playwright.sync_api import expect

    expect(page.get_by_test_id("stToast")).to_have_count(0)  # type: ignore[attr-defined]  # toasts fade in ~4 s
    page.wait_for_timeout(300)  # type: ignore[attr-defined]  # let the last rerun's fade-in finish
    page.screenshot(path=str(directory / f"webui_{name}.png"), full_page=True)  # type: ignore[attr-defined]


def _idle(page: object) -> None:
    """Wait until Streamlit has finished its current run (its status widget disappears)."""
    page.get_by_test_id("stStatusWidget").wait_for(state="hidden")  # type: ignore[attr-defined]


def test_kb_lifecycle_and_kb_chat(ui_page: object, webui: StreamlitUI, api: LiveServer, screenshot_dir: Path) -> None:
    from playwright.sync_api import expect

    expect.set_options(timeout=WAIT_MS)
    page = ui_page
    page.goto(f"{webui.url}/knowledge_base")  # type: ignore[attr-defined]
    expect(page.get_by_role("heading", name="Knowledge bases", exact=True)).to_be_visible()  # type: ignore[attr-defined]

    # Create a knowledge base (no KB exists yet, so the page opens on the creation form).
    page.get_by_label("Name", exact=True).fill(KB)  # type: ignore[attr-defined]
    page.get_by_label("Description", exact=True).fill("Ports of the kbqa services")  # type: ignore[attr-defined]
    page.get_by_role("button", name="Create").click()  # type: ignore[attr-defined]
    expect(page.get_by_test_id("stMetricLabel").first).to_contain_text("Files")  # type: ignore[attr-defined]

    # Upload a file and follow its indexing.
    page.get_by_role("tab", name="Upload").click()  # type: ignore[attr-defined]
    page.get_by_test_id("stFileUploaderDropzoneInput").set_input_files(  # type: ignore[attr-defined]
        {"name": "ports.md", "mimeType": "text/markdown", "buffer": DOC.encode()}
    )
    page.get_by_label("Into sub-folder (optional)", exact=True).fill("guide")  # type: ignore[attr-defined]
    page.get_by_role("button", name="Upload and index").click()  # type: ignore[attr-defined]
    expect(page.get_by_text(re.compile(r"Done: 1 added"))).to_be_visible()  # type: ignore[attr-defined]
    _idle(page)

    # The file table.
    page.get_by_role("tab", name="Files").click()  # type: ignore[attr-defined]
    expect(page.get_by_test_id("stMetricValue").first).to_have_text("1")  # type: ignore[attr-defined]
    expect(page.get_by_test_id("stDataFrame").first).to_be_visible()  # type: ignore[attr-defined]
    page.get_by_role("combobox", name="View the chunks of").click()  # type: ignore[attr-defined]
    page.get_by_role("option", name="guide/ports.md").click()  # type: ignore[attr-defined]
    expect(page.get_by_text(re.compile(r"^[2-9] chunks in guide/ports\.md$"))).to_be_visible()  # type: ignore
    _idle(page)
    _shot(page, screenshot_dir, "kb_files")

    # Hit testing: retrieval alone, ranked chunks with relevance.
    page.get_by_role("tab", name="Hit testing").click()  # type: ignore[attr-defined]
    page.get_by_label("Query", exact=True).fill("Which port does the web UI use?")  # type: ignore[attr-defined]
    page.get_by_test_id("stForm").get_by_role("button", name="Search").click()  # type: ignore[attr-defined]
    expect(page.get_by_text(re.compile(r"#1 · guide/ports\.md"))).to_be_visible()  # type: ignore[attr-defined]
    _idle(page)
    _shot(page, screenshot_dir, "hit_testing")

    # Knowledge-base chat: the streamed answer, then its sources.
    page.get_by_role("link", name="Chat").click()  # type: ignore[attr-defined]
    expect(page.get_by_role("heading", name="Chat", exact=True)).to_be_visible()  # type: ignore[attr-defined]
    chat_input = page.get_by_test_id("stChatInputTextArea")  # type: ignore[attr-defined]
    expect(chat_input).to_have_attribute("placeholder", f"Ask {KB}…")
    chat_input.fill("Which port does the kbqa web UI listen on?")
    chat_input.press("Enter")
    sources = page.get_by_text(re.compile(r"Sources \(\d+\)"))  # type: ignore[attr-defined]
    expect(sources).to_be_visible()
    answer = page.get_by_test_id("stChatMessage").nth(1)  # type: ignore[attr-defined]
    expect(answer).not_to_have_text("")
    sources.click()
    expect(page.get_by_text(re.compile(r"\[1\] guide/ports\.md"))).to_be_visible()  # type: ignore[attr-defined]
    expect(page.get_by_role("button", name="Send feedback")).to_be_visible()  # type: ignore[attr-defined]
    _idle(page)
    _shot(page, screenshot_dir, "chat")

    # Nothing left the machine: the browser only spoke to the UI's origin, Streamlit dialled no outside host.
    urls = map(urlsplit, webui.browser_requests)
    origins = {f"{u.scheme}://{u.netloc}" for u in urls if u.scheme in ("http", "https")}
    assert origins == {webui.url}, [u for u in webui.browser_requests if not u.startswith(webui.url)]
    assert webui.proxy.requests == [], webui.proxy.requests


def test_a_long_upload_can_be_cancelled(ui_page: object, webui: StreamlitUI, api: LiveServer) -> None:
    """Cancel under the progress bar stops the background job; what was not indexed is listed as such."""
    from playwright.sync_api import expect

    expect.set_options(timeout=WAIT_MS)
    kb = "cancel_kb"
    with api.client() as http:
        assert http.post("/knowledge_base/create_knowledge_base", json={"knowledge_base_name": kb}).status_code == 200
    page = ui_page
    page.goto(f"{webui.url}/knowledge_base")  # type: ignore[attr-defined]
    page.get_by_role("combobox", name="Knowledge base").click()  # type: ignore[attr-defined]
    page.get_by_role("option", name=kb, exact=True).click()  # type: ignore[attr-defined]
    _idle(page)
    page.get_by_role("tab", name="Upload").click()  # type: ignore[attr-defined]
    files = [
        {"name": f"note{i:03d}.txt", "mimeType": "text/plain", "buffer": f"Note {i}: port {7000 + i}.\n".encode()}
        for i in range(300)
    ]
    page.get_by_test_id("stFileUploaderDropzoneInput").set_input_files(files)  # type: ignore[attr-defined]
    page.get_by_role("button", name="Upload and index").click()  # type: ignore[attr-defined]
    page.get_by_role("button", name="Cancel").click()  # type: ignore[attr-defined]
    expect(page.get_by_text("The job was cancelled.")).to_be_visible()  # type: ignore[attr-defined]
    _idle(page)

    with api.client() as http:
        rows = http.get("/knowledge_base/list_file_details", params={"knowledge_base_name": kb}).json()["data"]
    indexed = [r for r in rows if r["in_db"]]
    assert len(rows) == 300 and len(indexed) < 300  # every file saved, the indexing stopped part-way
    assert all(r["status"] == "not_indexed" for r in rows if not r["in_db"])
