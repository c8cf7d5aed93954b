"""Background ingestion: upload with background=true returns a job at once; /jobs shows per-file progress and errors;
cancel stops queued and running jobs; other requests keep answering while a large upload is indexed."""

from __future__ import annotations

import time
from collections.abc import Iterator

import httpx
import pytest

from tests.api.conftest import LiveServer, ServerFactory

KB = "jobs_kb"


def many_files(n: int, prefix: str) -> list[tuple[str, tuple[str, bytes, str]]]:
    text = "文档 {i}：这是第 {i} 号测试文件，内容关于编号 {i} 的主题。"
    return [("files", (f"{prefix}/doc_{i:04d}.txt", text.format(i=i).encode(), "text/plain")) for i in range(n)]


@pytest.fixture(scope="module")
def server(server_factory: ServerFactory) -> LiveServer:
    srv = server_factory(api={"ingest_workers": 1})
    with srv.client() as c:
        c.post("/knowledge_base/create_knowledge_base", json={"knowledge_base_name": KB})
        c.post("/knowledge_base/create_knowledge_base", json={"knowledge_base_name": "other_kb"})
    return srv


@pytest.fixture(scope="module")
def client(server: LiveServer) -> Iterator[httpx.Client]:
    with server.client() as c:
        yield c


def wait_job(client: httpx.Client, job_id: str, timeout: float = 120) -> dict:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        job = client.get(f"/jobs/{job_id}").json()["data"]
        if job["status"] in ("succeeded", "failed", "cancelled"):
            return job
        time.sleep(0.1)
    raise TimeoutError(job_id)


def test_background_upload_reports_per_file_progress_and_errors(client: httpx.Client) -> None:
    files = [*many_files(20, "bg"), ("files", ("bad.unknownext", b"data", "application/octet-stream"))]
    r = client.post("/knowledge_base/upload_docs", data={"knowledge_base_name": KB, "background": "true"}, files=files)
    assert r.status_code == 202
    job_id = r.json()["data"]["job_id"]
    assert r.json()["data"]["status_url"] == f"/jobs/{job_id}"
    job = wait_job(client, job_id)
    assert job["status"] == "succeeded" and job["kind"] == "upload_docs" and job["knowledge_base_name"] == KB
    assert job["files"]["bg/doc_0007.txt"]["status"] == "done" and job["files"]["bg/doc_0007.txt"]["chunks"] >= 1
    assert "bad.unknownext" in job["result"]["failed_files"]
    assert len(job["result"]["added"]) == 20
    listed = client.get("/jobs").json()["data"]
    assert listed[0]["id"] == job_id and "files" not in listed[0]
    assert (
        "bg/doc_0019.txt" in client.get("/knowledge_base/list_files", params={"knowledge_base_name": KB}).json()["data"]
    )


def test_cancel_queued_and_running_jobs(client: httpx.Client) -> None:
    big = client.post(
        "/knowledge_base/upload_docs",
        data={"knowledge_base_name": KB, "background": "true"},
        files=many_files(400, "big"),
    ).json()["data"]["job_id"]
    queued = client.post(
        "/knowledge_base/upload_docs",
        data={"knowledge_base_name": "other_kb", "background": "true"},
        files=many_files(5, "q"),
    ).json()["data"]["job_id"]
    # One worker: the second job waits behind the first, and cancelling it means it never runs.
    r = client.post(f"/jobs/{queued}/cancel")
    assert r.status_code == 200 and r.json()["data"]["cancel_requested"] is True
    client.post(f"/jobs/{big}/cancel")
    big_job, queued_job = wait_job(client, big), wait_job(client, queued)
    assert queued_job["status"] == "cancelled" and queued_job["files"] == {}
    assert client.get("/knowledge_base/list_files", params={"knowledge_base_name": "other_kb"}).json()["data"] == []
    assert big_job["status"] == "cancelled" and big_job["finished"] < 400
    assert client.get("/jobs/" + "0" * 32).status_code == 404
    assert client.get("/jobs/not-an-id").status_code == 422


def test_requests_answer_while_a_large_upload_ingests(client: httpx.Client) -> None:
    job_id = client.post(
        "/knowledge_base/upload_docs",
        data={"knowledge_base_name": KB, "background": "true"},
        files=many_files(300, "load"),
    ).json()["data"]["job_id"]
    slowest = 0.0
    answered = 0
    while client.get(f"/jobs/{job_id}").json()["data"]["status"] in ("queued", "running"):
        for method, path, kwargs in (
            ("GET", "/knowledge_base/list_knowledge_bases", {}),
            ("POST", "/knowledge_base/search_docs", {"json": {"knowledge_base_name": KB, "query": "编号 7 的主题"}}),
        ):
            started = time.perf_counter()
            r = client.request(method, path, **kwargs)
            slowest = max(slowest, time.perf_counter() - started)
            assert r.status_code == 200
            answered += 1
    assert wait_job(client, job_id)["status"] == "succeeded"
    assert answered >= 2 and slowest < 5.0, (answered, slowest)


def test_background_rebuild(client: httpx.Client) -> None:
    r = client.post(
        "/knowledge_base/recreate_vector_store", json={"knowledge_base_name": "other_kb", "background": True}
    )
    assert r.status_code == 202
    assert wait_job(client, r.json()["data"]["job_id"])["status"] == "succeeded"


def test_compatible_upload_still_waits_for_the_job(client: httpx.Client) -> None:
    r = client.post("/knowledge_base/upload_docs", data={"knowledge_base_name": KB}, files=many_files(3, "sync"))
    data = r.json()
    assert r.status_code == 200 and data["msg"] == "文件上传与向量化完成" and data["data"]["failed_files"] == {}
    hits = client.post(
        "/knowledge_base/search_docs",
        json={"knowledge_base_name": KB, "query": "编号 1 的主题", "file_name": "sync/doc_0001.txt"},
    )
    assert [h["metadata"]["source"] for h in hits.json()] == ["sync/doc_0001.txt"]


def test_jobs_are_listed_after_a_restart(
    server_factory: ServerFactory, tmp_path_factory: pytest.TempPathFactory
) -> None:
    root = tmp_path_factory.mktemp("restart")
    first = server_factory(root)
    with first.client() as c:
        c.post("/knowledge_base/create_knowledge_base", json={"knowledge_base_name": "restart_kb"})
        r = c.post(
            "/knowledge_base/upload_docs",
            data={"knowledge_base_name": "restart_kb", "background": "true"},
            files=many_files(3, "r"),
        )
        job_id = r.json()["data"]["job_id"]
        before = wait_job(c, job_id)
    first.stop()
    second = server_factory(root)
    with second.client() as c:
        after = c.get(f"/jobs/{job_id}").json()["data"]
        assert [j["id"] for j in c.get("/jobs").json()["data"]] == [job_id]
    assert after["status"] == before["status"] == "succeeded"
    assert after["files"] == before["files"] and len(after["files"]) == 3
    assert after["result"]["added"] == before["result"]["added"]
