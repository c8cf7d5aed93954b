"""The native detail routes the web UI's tables are built from: knowledge bases with their settings and counts, a
knowledge base's files with size, chunks, status and error, and the creation choices in /server/configs."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import httpx
import pytest

from tests.api.conftest import LiveServer, ServerFactory

KB = "details_kb"
GOOD = "# Ports\n\nThe API server listens on port 7861. The web UI listens on port 8501.\n"


@pytest.fixture(scope="module")
def server(server_factory: ServerFactory) -> LiveServer:
    srv = server_factory()
    with srv.client() as c:
        body = {"knowledge_base_name": KB, "kb_info": "ports and services", "embed_model": "all-MiniLM-L6-v2"}
        assert c.post("/knowledge_base/create_knowledge_base", json=body).status_code == 200
        files = [
            ("files", ("guide/ports.md", GOOD.encode(), "text/markdown")),
            ("files", ("broken.pdf", b"%PDF-1.4 this is not a pdf", "application/pdf")),
        ]
        r = c.post("/knowledge_base/upload_docs", data={"knowledge_base_name": KB}, files=files)
        assert set(r.json()["data"]["failed_files"]) == {"broken.pdf"}
    return srv


@pytest.fixture(scope="module")
def client(server: LiveServer) -> Iterator[httpx.Client]:
    with server.client() as c:
        yield c


def test_kb_details(client: httpx.Client) -> None:
    r = client.get("/knowledge_base/list_kb_details")
    assert r.status_code == 200 and r.json()["code"] == 200
    (kb,) = [k for k in r.json()["data"] if k["name"] == KB]
    assert kb["info"] == "ports and services" and kb["vs_type"] == "faiss"
    assert kb["embed_model"] == "all-MiniLM-L6-v2" and kb["embed_dim"] == 384
    assert kb["file_count"] == 2 and kb["chunk_count"] >= 1 and kb["created_at"]


def test_file_details(client: httpx.Client) -> None:
    r = client.get("/knowledge_base/list_file_details", params={"knowledge_base_name": KB})
    assert r.status_code == 200
    files = {f["path"]: f for f in r.json()["data"]}
    good, bad = files["guide/ports.md"], files["broken.pdf"]
    assert good["status"] == "ready" and good["error"] == "" and good["chunk_count"] >= 1
    assert good["size"] == len(GOOD.encode()) and good["in_folder"] and good["updated_at"]
    assert bad["status"] == "error" and bad["error"] and bad["chunk_count"] == 0
    assert "sha256" not in good  # the response model keeps to what a client needs


def test_file_details_errors_follow_the_mapping(client: httpx.Client) -> None:
    r = client.get("/knowledge_base/list_file_details", params={"knowledge_base_name": "no_such_kb"})
    assert r.status_code == 404 and r.json() == {"code": 404, "msg": "未找到知识库 no_such_kb", "data": None}
    r = client.get("/knowledge_base/list_file_details", params={"knowledge_base_name": "..%2F..%2Fetc"})
    assert r.status_code == 400 and r.json()["code"] == 403


def test_server_configs_offer_creation_choices(client: httpx.Client) -> None:
    configs = client.post("/server/configs").json()
    assert configs["VS_TYPES"] == ["faiss"]
    assert configs["EMBEDDING_MODELS"][0] == configs["EMBEDDING_MODEL"] == "multilingual-e5-small"
    assert "all-MiniLM-L6-v2" in configs["EMBEDDING_MODELS"]


def test_files_in_the_folder_but_not_in_the_database_are_listed_and_can_be_indexed(
    server: LiveServer, client: httpx.Client
) -> None:
    """A file copied into content/ by hand, or whose ingestion a restart cut off, is shown (Chatchat's in_db flag)
    and indexed by update_docs, instead of staying invisible."""
    text = "The night shift inspects the Zephyr-9 turbine every 41 days.\n"
    dropped = server.service.folder(KB).content / "manual" / "turbine.txt"
    dropped.parent.mkdir(parents=True)
    dropped.write_text(text, encoding="utf-8")

    files = {
        f["path"]: f
        for f in client.get("/knowledge_base/list_file_details", params={"knowledge_base_name": KB}).json()["data"]
    }
    row = files["manual/turbine.txt"]
    assert (row["in_db"], row["in_folder"], row["status"], row["chunk_count"]) == (False, True, "not_indexed", 0)
    assert row["size"] == len(text.encode())
    assert files["guide/ports.md"]["in_db"] is True

    body = {"knowledge_base_name": KB, "file_names": ["manual/turbine.txt"]}
    r = client.post("/knowledge_base/update_docs", json=body)
    assert r.status_code == 200 and r.json()["data"]["failed_files"] == {}
    files = {
        f["path"]: f
        for f in client.get("/knowledge_base/list_file_details", params={"knowledge_base_name": KB}).json()["data"]
    }
    assert files["manual/turbine.txt"]["in_db"] is True and files["manual/turbine.txt"]["status"] == "ready"
    hits = client.post(
        "/knowledge_base/search_docs", json={"knowledge_base_name": KB, "query": "Zephyr-9 turbine"}
    ).json()
    assert hits[0]["metadata"]["source"] == "manual/turbine.txt"


def _aware_utc(value: str) -> datetime:
    when = datetime.fromisoformat(value)
    assert when.utcoffset() == timedelta(0), value  # an offset, and it is UTC
    return when


def test_every_timestamp_is_utc_with_an_offset(server: LiveServer, client: httpx.Client) -> None:
    """Rows from the database and files only on disk (in_db false) alike: one format, with its offset."""
    (server.service.folder(KB).content / "copied_by_hand.txt").write_text("not indexed yet", encoding="utf-8")
    start = datetime.now(UTC) - timedelta(hours=1)
    (kb,) = [k for k in client.get("/knowledge_base/list_kb_details").json()["data"] if k["name"] == KB]
    assert start <= _aware_utc(kb["created_at"]) <= datetime.now(UTC)
    files = client.get("/knowledge_base/list_file_details", params={"knowledge_base_name": KB}).json()["data"]
    assert {f["in_db"] for f in files} == {True, False}
    for f in files:
        _aware_utc(f["created_at"]), _aware_utc(f["updated_at"])
    schema = client.get("/openapi.json").json()["components"]["schemas"]
    assert schema["FileDetail"]["properties"]["created_at"]["format"] == "date-time"
