"""Chatchat 0.2's custom ``docs`` over real HTTP: taken only for files in the content folder (on disk already, or
uploaded in the same call), reported in ``skipped_docs`` otherwise, kept by update_docs unless
``override_custom_docs``, and gone with their file."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from kbqa.errors import FileNotInKB
from kbqa.ingest.document import Document
from tests.api.conftest import LiveServer, ServerFactory

KB = "custom_docs_kb"
PARSED = "Apples grow on trees in the orchard behind the farmhouse."
CUSTOM_A = "Zebras have black and white stripes that confuse biting flies."
CUSTOM_B = "Lighthouses warn ships about rocks along the coast at night."


@pytest.fixture(scope="module")
def server(server_factory: ServerFactory) -> LiveServer:
    return server_factory()


@pytest.fixture(scope="module")
def client(server: LiveServer) -> Iterator[httpx.Client]:
    with server.client() as c:
        r = c.post("/knowledge_base/create_knowledge_base", json={"knowledge_base_name": KB})
        assert r.json()["code"] == 200
        yield c


def _docs(**by_file: str) -> str:
    return json.dumps(
        {name.replace("_", "."): [{"page_content": text, "metadata": {}}] for name, text in by_file.items()}
    )


def _chunks(client: httpx.Client, file_name: str) -> list[str]:
    r = client.post("/knowledge_base/search_docs", json={"knowledge_base_name": KB, "file_name": file_name})
    assert r.status_code == 200, r.text
    return [d["page_content"] for d in r.json()]


def _files(client: httpx.Client) -> list[str]:
    return sorted(client.get("/knowledge_base/list_files", params={"knowledge_base_name": KB}).json()["data"])


def _upload(client: httpx.Client, files: dict[str, str], **form: Any) -> dict[str, Any]:
    parts = [("files", (name, text.encode(), "text/plain")) for name, text in files.items()]
    r = client.post("/knowledge_base/upload_docs", data={"knowledge_base_name": KB, **form}, files=parts)
    assert r.status_code in (200, 202), r.text
    return r.json()


def test_custom_docs_for_a_file_uploaded_in_the_same_call(client: httpx.Client, server: LiveServer) -> None:
    data = _upload(client, {"a.txt": PARSED}, override="true", docs=_docs(a_txt=CUSTOM_A, ghost_md=CUSTOM_B))
    assert data["code"] == 200 and data["data"]["failed_files"] == {}
    assert list(data["data"]["skipped_docs"]) == ["ghost.md"]
    assert "not in the knowledge base's content folder" in data["data"]["skipped_docs"]["ghost.md"]
    assert _files(client) == ["a.txt"]
    assert _chunks(client, "a.txt") == [CUSTOM_A]  # the custom docs replace the parsed text
    assert _chunks(client, "ghost.md") == []
    assert not (server.settings.kb_root / KB / "content" / "ghost.md").exists()
    info = next(f for f in server.service.list_files(KB) if f.path == "a.txt")
    assert info.custom_docs


def test_custom_docs_for_a_file_already_on_disk(client: httpx.Client) -> None:
    # Saved but not indexed: on disk, not in the KB's file list yet.
    data = _upload(client, {"b.txt": "placeholder text about nothing much"}, to_vector_store="false")
    assert data["code"] == 200 and _files(client) == ["a.txt"]
    body = {"knowledge_base_name": KB, "file_names": [], "docs": _docs(b_txt=CUSTOM_B, nope_txt=CUSTOM_B)}
    data = client.post("/knowledge_base/update_docs", json=body).json()
    assert data["code"] == 200 and data["data"]["failed_files"] == {}
    assert list(data["data"]["skipped_docs"]) == ["nope.txt"]
    assert _files(client) == ["a.txt", "b.txt"] and _chunks(client, "b.txt") == [CUSTOM_B]


def test_update_docs_keeps_custom_docs_unless_overridden(client: httpx.Client) -> None:
    body = {"knowledge_base_name": KB, "file_names": ["a.txt"]}
    assert client.post("/knowledge_base/update_docs", json=body).json()["data"]["failed_files"] == {}
    assert _chunks(client, "a.txt") == [CUSTOM_A]
    body["override_custom_docs"] = True
    assert client.post("/knowledge_base/update_docs", json=body).json()["data"]["failed_files"] == {}
    assert _chunks(client, "a.txt") == [PARSED]


def test_deleting_a_file_deletes_its_custom_docs(client: httpx.Client) -> None:
    query = {"knowledge_base_name": KB, "query": "ships and rocks on the coast", "top_k": 3, "score_threshold": 1.0}
    assert any(d["page_content"] == CUSTOM_B for d in client.post("/knowledge_base/search_docs", json=query).json())
    r = client.post("/knowledge_base/delete_docs", json={"knowledge_base_name": KB, "file_names": ["b.txt"]})
    assert r.json()["data"]["failed_files"] == {}
    hits = client.post("/knowledge_base/search_docs", json=query).json()
    assert hits and all(d["page_content"] != CUSTOM_B for d in hits)
    assert _files(client) == ["a.txt"] and _chunks(client, "b.txt") == []


def test_background_upload_reports_skipped_docs_in_the_job(client: httpx.Client) -> None:
    data = _upload(client, {"c.txt": PARSED}, background="true", docs=_docs(missing_md=CUSTOM_A))
    job_id = data["data"]["job_id"]
    deadline = time.monotonic() + 120
    while True:
        job = client.get(f"/jobs/{job_id}").json()["data"]
        if job["status"] not in ("queued", "running") or time.monotonic() > deadline:
            break
        time.sleep(0.1)
    assert job["status"] == "succeeded", job
    assert list(job["result"]["skipped_docs"]) == ["missing.md"] and job["result"]["failed_files"] == {}
    assert "missing.md" not in _files(client)


def test_service_refuses_custom_docs_without_their_file(server: LiveServer, client: httpx.Client) -> None:
    with pytest.raises(FileNotInKB):
        server.service.add_documents(KB, "ghost.md", [Document(CUSTOM_B, {})])
    assert "ghost.md" not in _files(client)
