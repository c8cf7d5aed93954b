"""The knowledge-base page in Streamlit's AppTest against a real API server: create, list and delete knowledge
bases; upload files with per-file results; the file table; a file's chunks; re-index, delete and rebuild; hit
testing."""

from __future__ import annotations

import time
from collections.abc import Iterator

import httpx
import pytest

from kbqa.db.engine import Database
from kbqa.jobs.manager import Job
from kbqa.jobs.store import JobStore
from kbqa.webui.kb_page import NEW
from tests.api.conftest import LiveServer, ServerFactory
from tests.webui.conftest import KB_PAGE, OpenUI, by_label, texts

PORTS = (
    "# Ports\n\nThe kbqa API server listens on port 7861 by default.\n\n"
    "The Streamlit web UI listens on port 8501 and talks to the API server over HTTP only.\n"
)


@pytest.fixture(scope="module")
def server(server_factory: ServerFactory) -> LiveServer:
    return server_factory()


@pytest.fixture(scope="module")
def http(server: LiveServer) -> Iterator[httpx.Client]:
    with server.client() as c:
        yield c


def _kb_names(http: httpx.Client) -> dict[str, dict]:
    return {kb["name"]: kb for kb in http.get("/knowledge_base/list_kb_details").json()["data"]}


def _files(http: httpx.Client, kb: str) -> dict[str, dict]:
    r = http.get("/knowledge_base/list_file_details", params={"knowledge_base_name": kb})
    return {f["path"]: f for f in r.json()["data"]}


def _create(at: object, name: str, info: str, embed_model: str | None = None) -> None:
    by_label(at.text_input, "Name").input(name)  # type: ignore[attr-defined]
    by_label(at.text_area, "Description").input(info)  # type: ignore[attr-defined]
    if embed_model:
        by_label(at.selectbox, "Embedding model").select(embed_model)  # type: ignore[attr-defined]
    by_label(at.button, "Create").click().run()  # type: ignore[attr-defined]


def test_create_list_and_delete_kb(open_ui: OpenUI, server: LiveServer, http: httpx.Client) -> None:
    at = open_ui(server.url, KB_PAGE)
    assert [t.value for t in at.title] == ["Knowledge bases"]
    # The server offers its embedding models and vector stores for the new knowledge base.
    assert by_label(at.selectbox, "Vector store").options == ["faiss"]
    assert "all-MiniLM-L6-v2" in by_label(at.selectbox, "Embedding model").options

    _create(at, "team_notes", "Meeting notes", "all-MiniLM-L6-v2")
    assert not at.exception and not at.error
    assert at.selectbox(key="kb_selected").value == "team_notes"  # the new KB is opened
    assert "Meeting notes" in [c.value for c in at.caption]
    created = _kb_names(http)["team_notes"]
    assert created["info"] == "Meeting notes" and created["embed_model"] == "all-MiniLM-L6-v2"

    # A second one with the same name: the server's refusal, in words, not a stack trace.
    at.selectbox(key="kb_selected").set_value(NEW).run()
    _create(at, "team_notes", "again")
    assert not at.exception
    assert any("已存在同名知识库 team_notes" in e.value and "HTTP 409" in e.value for e in at.error)

    at.selectbox(key="kb_selected").set_value("team_notes").run()
    delete = by_label(at.button, "Delete knowledge base")
    assert delete.disabled  # not before the confirmation is ticked
    by_label(at.checkbox, "Delete team_notes with all its files and chunks").check().run()
    by_label(at.button, "Delete knowledge base").click().run()
    assert not at.exception and "team_notes" not in _kb_names(http)
    assert by_label(at.selectbox, "Knowledge base").options == ["➕ New knowledge base…"]  # only "create" is left


def test_upload_file_table_chunks_and_file_actions(open_ui: OpenUI, server: LiveServer, http: httpx.Client) -> None:
    kb = "ui_docs"
    http.post("/knowledge_base/create_knowledge_base", json={"knowledge_base_name": kb})
    at = open_ui(server.url, KB_PAGE)
    at.selectbox(key="kb_selected").set_value(kb).run()
    assert "No files yet: add some in the Upload tab." in [i.value for i in at.info]

    at.file_uploader[0].set_value(
        [
            ("ports.md", PORTS.encode(), "text/markdown"),
            ("broken.pdf", b"%PDF-1.4 not really a pdf", "application/pdf"),
        ]
    ).run()  # a browser reruns on upload; the button is enabled then
    by_label(at.text_input, "Into sub-folder (optional)").input("guide")
    by_label(at.button, "Upload and index").click().run()
    assert not at.exception
    # The report of the background job: counts, then each failed file with its reason.
    assert any(s.value.startswith("Done: 1 added, 0 updated, 0 unchanged, 1 failed") for s in at.success)
    assert any(e.value.startswith("**guide/broken.pdf**: ") for e in at.error)
    assert at.file_uploader[0].value == []  # a fresh uploader for the next files

    table = at.dataframe[0].value.set_index("File")
    assert table.loc["guide/ports.md", "Status"] == "ready" and table.loc["guide/ports.md", "Chunks"] >= 1
    assert table.loc["guide/broken.pdf", "Status"] == "failed" and table.loc["guide/broken.pdf", "Error"]
    # The failure is remembered with its time, and said above the table.
    assert table.loc["guide/broken.pdf", "Failed at"] and not table.loc["guide/ports.md", "Failed at"]
    assert any("1 file(s) could not be indexed" in w.value for w in at.warning)
    assert table.loc["guide/ports.md", "Size"] == f"{len(PORTS.encode())} B"

    # A file's chunks, in order.
    at.selectbox(key=f"kb_chunks_file_{kb}").set_value("guide/ports.md").run()
    chunks = at.dataframe[1].value
    assert f"{len(chunks)} chunks in guide/ports.md" in [c.value for c in at.caption]
    assert "7861" in " ".join(chunks["Text"]) and list(chunks["#"]) == sorted(chunks["#"])

    # Re-index one file, then delete the broken one (from disk too).
    at.multiselect(key=f"kb_files_selected_{kb}").set_value(["guide/ports.md"]).run()
    by_label(at.button, "Re-index").click().run()
    assert any(s.value.startswith("Done: 0 added, 1 updated") for s in at.success), [e.value for e in at.error]
    at.multiselect(key=f"kb_files_selected_{kb}").set_value(["guide/broken.pdf"]).run()
    by_label(at.checkbox, "Also delete them from disk").check()
    by_label(at.button, "Delete").click().run()
    assert not at.exception and set(_files(http, kb)) == {"guide/ports.md"}
    assert not (server.settings.kb_root / kb / "content" / "guide" / "broken.pdf").exists()

    # Rebuild the whole index from the content folder.
    by_label(at.button, "Rebuild vector store").click().run()
    assert not at.exception and not at.error
    assert any(s.value.startswith("Done:") and "0 failed" in s.value for s in at.success)
    assert _files(http, kb)["guide/ports.md"]["chunk_count"] >= 1


def test_hit_testing_ranks_chunks_with_relevance(open_ui: OpenUI, server: LiveServer, http: httpx.Client) -> None:
    kb = "ui_hits"
    http.post("/knowledge_base/create_knowledge_base", json={"knowledge_base_name": kb})
    files = [("files", ("ports.md", PORTS.encode(), "text/markdown"))]
    http.post("/knowledge_base/upload_docs", data={"knowledge_base_name": kb}, files=files)
    at = open_ui(server.url, KB_PAGE)
    at.selectbox(key="kb_selected").set_value(kb).run()

    by_label(at.text_input, "Query").input("Which port does the web UI listen on?")
    by_label(at.button, "Search").click().run()
    assert not at.exception
    shown = texts(at.markdown)
    first = next(m for m in shown if m.startswith("**#1** · ports.md"))
    relevance = float(first.rsplit("relevance ", 1)[1].rstrip("]"))
    assert 0.5 <= relevance <= 1  # the default minimum relevance (0.5) applies
    assert any("8501" in m for m in shown)
    assert at.get("progress")  # the relevance bar

    # Nothing passes a minimum relevance of 1: the page says so instead of showing an empty list.
    by_label(at.slider, "Minimum relevance").set_value(1.0)
    by_label(at.button, "Search").click().run()
    assert any(i.value.startswith("Nothing is relevant enough") for i in at.info)


def test_unindexed_files_are_shown_and_indexed_from_the_table(
    open_ui: OpenUI, server: LiveServer, http: httpx.Client
) -> None:
    kb = "ui_dropped"
    http.post("/knowledge_base/create_knowledge_base", json={"knowledge_base_name": kb})
    dropped = server.settings.kb_root / kb / "content" / "ports.md"  # copied in by hand, never indexed
    dropped.parent.mkdir(parents=True, exist_ok=True)
    dropped.write_text(PORTS, encoding="utf-8")
    at = open_ui(server.url, KB_PAGE)
    at.selectbox(key="kb_selected").set_value(kb).run()
    table = at.dataframe[0].value.set_index("File")
    assert table.loc["ports.md", "Status"] == "not indexed: select it and Re-index"

    at.multiselect(key=f"kb_files_selected_{kb}").set_value(["ports.md"]).run()
    by_label(at.button, "Re-index").click().run()
    assert not at.exception and not at.error
    table = at.dataframe[0].value.set_index("File")
    assert table.loc["ports.md", "Status"] == "ready" and table.loc["ports.md", "Chunks"] >= 1


def test_background_jobs_are_listed_and_one_a_restart_cut_off_says_so(
    open_ui: OpenUI, server_factory: ServerFactory, tmp_path_factory: pytest.TempPathFactory
) -> None:
    root = tmp_path_factory.mktemp("jobs_ui")
    first = server_factory(root)
    with first.client() as c:
        c.post("/knowledge_base/create_knowledge_base", json={"knowledge_base_name": "jobs_kb"})
        files = [("files", (f"n{i}.md", f"Note {i}.".encode(), "text/markdown")) for i in range(2)]
        form = {"knowledge_base_name": "jobs_kb", "background": "true"}
        job_id = c.post("/knowledge_base/upload_docs", data=form, files=files).json()["data"]["job_id"]
        while c.get(f"/jobs/{job_id}").json()["data"]["status"] != "succeeded":
            time.sleep(0.1)
    first.stop()
    # as a server killed in the middle of a second upload leaves its record
    db = Database(first.settings.database_url)
    JobStore(db).save(Job("b" * 32, "upload_docs", "jobs_kb", status="running", total=5, finished=2))
    db.dispose()

    second = server_factory(root)  # the restart
    at = open_ui(second.url, KB_PAGE)
    at.selectbox(key="kb_selected").set_value("jobs_kb").run()
    assert not at.exception
    assert "Background jobs (2)" in [e.label for e in at.expander]
    table = at.table[0].value
    assert list(table["Status"]) == ["interrupted by a restart", "succeeded"]  # newest first
    assert list(table["Files done"]) == ["2/5", "2/2"]
    assert "re-index" in table["Error"].iloc[0] and table["Error"].iloc[1] == ""


def test_the_page_hides_what_the_key_may_not_do(open_ui: OpenUI, server_factory: ServerFactory) -> None:
    keys = [
        {"key": "ui-admin", "scope": "admin"},
        {"key": "ui-read", "scope": "read"},
        {"key": "ui-w", "scope": "write"},
    ]
    srv = server_factory(api={"api_keys": keys})
    with srv.client(headers={"X-API-Key": "ui-admin"}) as c:
        c.post("/knowledge_base/create_knowledge_base", json={"knowledge_base_name": "shared"})
        c.post(
            "/knowledge_base/upload_docs", data={"knowledge_base_name": "shared"}, files=[("files", ("p.md", PORTS))]
        )

    def labels(at: object) -> set[str]:
        found = {b.label for b in at.button} | {e.label for e in at.expander}  # type: ignore[attr-defined]
        return found | {t.label for t in at.tabs}  # type: ignore[attr-defined]

    admin = open_ui(srv.url, KB_PAGE, KBQA_WEBUI__API_KEY="ui-admin")
    assert {"Upload", "Re-index", "Delete", "Rebuild vector store", "Manage"} <= labels(admin)
    writer = open_ui(srv.url, KB_PAGE, KBQA_WEBUI__API_KEY="ui-w")
    assert {"Upload", "Re-index", "Delete"} <= labels(writer)
    assert not {"Rebuild vector store", "Manage"} & labels(writer)
    assert "➕ New knowledge base…" not in by_label(writer.selectbox, "Knowledge base").options
    reader = open_ui(srv.url, KB_PAGE, KBQA_WEBUI__API_KEY="ui-read")
    assert by_label(reader.selectbox, "Knowledge base").options == ["shared"]  # no "create" entry
    assert not {"Upload", "Re-index", "Delete", "Rebuild vector store", "Manage"} & labels(reader)
    assert {"Files", "Hit testing"} <= labels(reader) and not reader.error
