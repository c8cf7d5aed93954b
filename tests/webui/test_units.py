"""The web UI's plain parts: SSE parsing, the conversation and its export, Markdown escaping, settings and the
Streamlit command line, and the rule that kbqa.webui reaches data over HTTP only."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Iterator
from datetime import datetime

import httpx
import pytest

from kbqa.settings import load_settings
from kbqa.sse_events import iter_data
from kbqa.webui.api_client import ApiClientError, KBQAClient
from kbqa.webui.app import parse_args
from kbqa.webui.conversation import Conversation, Turn
from kbqa.webui.launch import SCRIPT, streamlit_argv
from kbqa.webui.models import Source
from kbqa.webui.settings import default_api_url
from kbqa.webui.widgets import plain
from tests.webui.conftest import REPO


def test_sse_events_by_the_spec() -> None:
    lines = [": ping - 2024-01-01", "", 'data: {"a": 1}', "", "event: x", "data: line1", "data:line2", "", "data: end"]
    assert list(iter_data(lines)) == ['{"a": 1}', "line1\nline2", "end"]


class _Chunks(httpx.SyncByteStream):
    def __init__(self, chunks: list[bytes]) -> None:
        self.chunks = chunks

    def __iter__(self) -> Iterator[bytes]:
        yield from self.chunks


def _sse_client(chunks: list[bytes]) -> KBQAClient:
    """A client whose server answers with these exact HTTP body chunks."""

    def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, headers={"content-type": "text/event-stream"}, stream=_Chunks(chunks))

    return KBQAClient("http://kbqa.test", transport=httpx.MockTransport(handler))


def test_chat_stream_split_across_chunks() -> None:
    # Chatchat's own client broke when one event arrived in several HTTP chunks; UTF-8 and CRLF split too.
    docs = {
        "docs": ["出处 [1] " + "长" * 3000],
        "sources": [{"index": 1, "file": "a.md", "text": "t", "relevance": 0.9}],
    }
    raw = 'data: {"answer": "端口"}\r\n\r\n'.encode() + b": ping\r\n\r\n" + f"data: {json.dumps(docs)}\r\n\r\n".encode()
    chunks = [raw[i : i + 7] for i in range(0, len(raw), 7)]
    events = list(_sse_client(chunks).kb_chat("q", "kb"))
    assert [e.text for e in events] == ["端口", ""]
    assert events[1].sources is not None and events[1].sources[0].file == "a.md" and events[1].docs == docs["docs"]


def test_error_event_after_the_stream_started_is_raised() -> None:
    raw = b'data: {"answer": "x"}\r\n\r\ndata: {"code": 500, "msg": "the index broke"}\r\n\r\n'
    events = _sse_client([raw[:10], raw[10:]]).kb_chat("q", "kb")
    assert next(events).text == "x"
    with pytest.raises(ApiClientError, match=r"^the index broke$"):
        next(events)


def test_conversation_history_and_markdown_export() -> None:
    source = Source(index=1, file="guide/ports.md", page=2, heading="Ports", text="port 7861", relevance=0.875)
    conversation = Conversation(
        [
            Turn("q1", "kb", "docs", answer="a1", sources=[source]),
            Turn("q2", "llm", answer="", error="LLM down"),
            Turn("q3", "llm", answer="a3"),
        ]
    )
    # Failed turns are not history; the newest pairs are kept, oldest first.
    assert conversation.history(5) == [
        {"role": "user", "content": "q1"},
        {"role": "assistant", "content": "a1"},
        {"role": "user", "content": "q3"},
        {"role": "assistant", "content": "a3"},
    ]
    assert conversation.history(1) == [{"role": "user", "content": "q3"}, {"role": "assistant", "content": "a3"}]
    assert conversation.history(0) == []
    markdown = conversation.to_markdown(datetime(2024, 5, 1, 9, 30))
    assert markdown.startswith("# kbqa conversation (2024-05-01 09:30)\n")
    assert "## 1. Knowledge base chat — docs\n\n**Question:** q1\n\n**Answer:**\n\na1\n" in markdown
    assert '1. guide/ports.md (page 2, "Ports") — relevance 0.88' in markdown
    assert "**Error:** LLM down" in markdown and "_(no answer)_" in markdown


def test_plain_shows_chunk_text_literally() -> None:
    assert plain("# Title\n:red[x] *a*_b_ $x$") == r"\# Title  " + "\n" + r"\:red\[x\] \*a\*\_b\_ \$x\$"


def test_streamlit_command_stays_offline() -> None:
    argv = streamlit_argv("127.0.0.1", 8600, api_url="http://127.0.0.1:7900", extra=["--config", "/c.yaml"])
    assert argv[:5] == [sys.executable, "-m", "streamlit", "run", str(SCRIPT)]
    options = dict(zip(argv[5 : argv.index("--") : 2], argv[6 : argv.index("--") : 2], strict=True))
    assert options["--browser.gatherUsageStats"] == "false"
    # An explicit address: a headless Streamlit without one asks checkip.amazonaws.com for the external IP.
    assert options["--server.address"] == "127.0.0.1" and options["--server.headless"] == "true"
    assert options["--server.port"] == "8600"
    assert argv[argv.index("--") + 1 :] == ["--api-url", "http://127.0.0.1:7900", "--config", "/c.yaml"]
    assert parse_args(argv[argv.index("--") + 1 :]).api_url == "http://127.0.0.1:7900"
    assert parse_args(["-q", "--config-file", "x", "tests/webui"]).config is None  # someone else's argv (pytest)
    # The in-package script (python -m kbqa.webui, the launcher) and the repository's webui.py run the same code.
    code = [
        [line for line in path.read_text().splitlines() if line.startswith(("from ", "main("))]
        for path in (SCRIPT, REPO / "webui.py")
    ]
    assert code[0] == code[1] == ["from kbqa.webui.app import main", "main()"]


def test_api_url_from_settings_and_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    config = REPO / "configs" / "settings.yaml"
    monkeypatch.delenv("KBQA_WEBUI__API_URL", raising=False)
    assert default_api_url(load_settings(config)) == "http://127.0.0.1:7861"
    assert default_api_url(load_settings(config, api={"host": "0.0.0.0", "port": 9000})) == "http://127.0.0.1:9000"
    monkeypatch.setenv("KBQA_WEBUI__API_URL", "http://kb.example:7861/")
    assert default_api_url(load_settings(config)) == "http://kb.example:7861"


def test_webui_reaches_data_over_http_only() -> None:
    # Importing every UI module must not pull in the database, the knowledge service or a model runtime.
    code = (
        "import sys, kbqa.webui.app, kbqa.webui.chat_page, kbqa.webui.kb_page\n"
        "print(' '.join(sorted(m for m in sys.modules if m.split('.')[0] in ('kbqa', 'sqlalchemy', 'torch', 'faiss'))))"
    )
    loaded = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=REPO)
    modules = set(loaded.stdout.split())
    assert "kbqa.webui.api_client" in modules
    forbidden = {m for m in modules if m.split(".")[0] in ("sqlalchemy", "torch", "faiss")}
    forbidden |= {m for m in modules if m.startswith(("kbqa.db", "kbqa.knowledge", "kbqa.store", "kbqa.embeddings"))}
    assert not forbidden


def test_an_interrupted_job_counts_as_finished_and_says_what_to_do() -> None:
    from streamlit.testing.v1 import AppTest

    def page() -> None:
        from kbqa.webui.models import Job
        from kbqa.webui.widgets import job_summary

        job = Job(id="a" * 32, status="interrupted", errors={"bad.pdf": "no text layer"})
        assert job.done
        job_summary(job)

    at = AppTest.from_function(page).run()
    assert not at.exception, [e.value for e in at.exception]
    assert "re-index" in at.warning[0].value and "bad.pdf" in at.error[0].value
