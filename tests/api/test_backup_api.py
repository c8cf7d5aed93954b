"""/knowledge_base/export, /download_backup and /import on real servers: a knowledge base exported by one server and
imported by another (its own root) answers the same; a clash is a 409 at once; an altered archive fails its job with
the reason and leaves no knowledge base; both work as background jobs."""

from __future__ import annotations

import time
from collections.abc import Iterator

import httpx
import pytest

from tests.api.conftest import LiveServer, ServerFactory

DOCS = {
    "ports.md": "# Ports\n\nThe API server listens on port 7861. The web UI listens on port 8501.\n",
    "部署.md": "# 部署\n\n知识库问答系统可以完全离线运行。嵌入模型随安装包提供。\n",
}
QUERIES = ["Which port does the web UI use?", "离线运行", "API server port"]


@pytest.fixture(scope="module")
def origin(server_factory: ServerFactory) -> LiveServer:
    srv = server_factory()
    with srv.client() as c:
        assert c.post("/knowledge_base/create_knowledge_base", json={"knowledge_base_name": "team"}).status_code == 200
        files = [("files", (name, text.encode(), "text/markdown")) for name, text in DOCS.items()]
        assert (
            c.post("/knowledge_base/upload_docs", data={"knowledge_base_name": "team"}, files=files).status_code == 200
        )
    return srv


@pytest.fixture(scope="module")
def archive(origin: LiveServer) -> bytes:
    with origin.client() as c:
        r = c.post("/knowledge_base/export", json={"knowledge_base_name": "team"})
        assert r.status_code == 200, r.text
        data = r.json()["data"]
        assert data["files"] == 2 and data["chunks"] >= 2 and data["archive"].startswith("team-")
        download = c.get(data["download_url"])
        assert download.status_code == 200 and len(download.content) == data["bytes"]
        return download.content


@pytest.fixture(scope="module")
def target(server_factory: ServerFactory) -> Iterator[httpx.Client]:
    with server_factory().client() as c:
        yield c


def _search(c: httpx.Client, kb: str) -> list[list[tuple[str, str]]]:
    out = []
    for q in QUERIES:
        hits = c.post("/knowledge_base/search_docs", json={"query": q, "knowledge_base_name": kb, "top_k": 3}).json()
        out.append([(h["metadata"]["source"], h["page_content"]) for h in hits])
    return out


def _import(c: httpx.Client, data: bytes, **form: str) -> httpx.Response:
    return c.post("/knowledge_base/import", files=[("file", ("team.kbqa.tar", data))], data=form)


def test_export_on_one_server_import_on_another(origin: LiveServer, archive: bytes, target: httpx.Client) -> None:
    r = _import(target, archive)
    assert r.status_code == 200, r.text
    assert r.json()["data"]["knowledge_base_name"] == "team" and r.json()["data"]["files"] == 2
    with origin.client() as c:
        expected = _search(c, "team")
    assert all(expected) and _search(target, "team") == expected
    got = target.get("/knowledge_base/download_doc", params={"knowledge_base_name": "team", "file_name": "部署.md"})
    assert got.content.decode() == DOCS["部署.md"]
    # the name is taken now: a 409 before any job runs, unless another name or overwrite is asked for
    clash = _import(target, archive)
    assert clash.status_code == 409 and clash.json()["code"] == 404  # Chatchat's code for an existing KB
    assert _import(target, archive, new_name="team2").status_code == 200
    assert _import(target, archive, overwrite="true").status_code == 200
    assert _search(target, "team2") == expected


def test_an_altered_archive_fails_its_job_and_leaves_no_kb(archive: bytes, target: httpx.Client) -> None:
    altered = archive.replace(b"listens on port 7861", b"listens on port 6666", 1)
    assert altered != archive
    r = _import(target, altered, new_name="altered")
    assert r.status_code == 400 and "checksum mismatch for 'chunks.jsonl'" in r.json()["msg"]
    assert "altered" not in target.get("/knowledge_base/list_knowledge_bases").json()["data"]
    junk = target.post("/knowledge_base/import", files=[("file", ("x.tar", b"not an archive" * 50))])
    assert junk.status_code == 400 and "not a readable tar archive" in junk.json()["msg"]


def _job(c: httpx.Client, job_id: str) -> dict:
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        job = c.get(f"/jobs/{job_id}").json()["data"]
        if job["status"] not in ("queued", "running"):
            return job
        time.sleep(0.1)
    raise AssertionError("job did not finish")


def test_export_and_import_as_background_jobs(origin: LiveServer, archive: bytes, target: httpx.Client) -> None:
    with origin.client() as c:
        r = c.post("/knowledge_base/export", json={"knowledge_base_name": "team", "background": True, "compress": True})
        assert r.status_code == 202
        job = _job(c, r.json()["data"]["job_id"])
        assert job["status"] == "succeeded" and job["kind"] == "export_knowledge_base", job
        assert job["result"]["archive"].endswith(".kbqa.tar.gz")
        gz = c.get(r.json()["data"]["download_url"]).content
        missing = c.get("/knowledge_base/download_backup", params={"file_name": "../info.db"})
        assert missing.status_code == 400
    r = _import(target, gz, new_name="from_gz", background="true")
    assert r.status_code == 202
    job = _job(target, r.json()["data"]["job_id"])
    assert job["status"] == "succeeded" and job["knowledge_base_name"] == "from_gz", job
    altered = archive.replace(b"listens on port 7861", b"listens on port 6666", 1)
    r = _import(target, altered, new_name="bad_bg", background="true")
    job = _job(target, r.json()["data"]["job_id"])
    assert job["status"] == "failed" and "checksum mismatch" in job["error"]
    assert "bad_bg" not in target.get("/knowledge_base/list_knowledge_bases").json()["data"]
