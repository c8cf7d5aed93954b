"""Scoped API keys: every route of the API server, asked with a read, a write and an admin key, refuses the weaker
ones with 403 (no key or a wrong key: 401, as before); a key limited to some knowledge bases sees and uses only
those; a plain string key keeps every right (Chatchat's single-key setups). The expected scopes are written here
independently of kbqa.api.auth.ROUTE_SCOPES, so a route whose rights change, or a new route nobody classified
(the server then asks for admin), fails this test."""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest

from tests.api.conftest import LiveServer, ServerFactory
from tests.api.test_auth_and_misc import all_routes

ADMIN, WRITE, READ, LIMITED, PLAIN = "k-admin", "k-write", "k-read", "k-read-kb1", "k-plain"
RANK = {"read": 1, "write": 2, "admin": 3}

WRITE_ROUTES = {
    ("POST", "/knowledge_base/upload_docs"),
    ("POST", "/knowledge_base/delete_docs"),
    ("POST", "/knowledge_base/update_docs"),
    ("POST", "/knowledge_base/update_docs_by_id"),
    ("POST", "/jobs/" + "0" * 32 + "/cancel"),
}
ADMIN_ROUTES = {
    ("POST", "/knowledge_base/create_knowledge_base"),
    ("POST", "/knowledge_base/delete_knowledge_base"),
    ("POST", "/knowledge_base/update_info"),
    ("POST", "/knowledge_base/recreate_vector_store"),
    ("POST", "/knowledge_base/kb_summary_api/" + "0" * 32),
    ("POST", "/knowledge_base/export"),
    ("POST", "/knowledge_base/import"),
    ("GET", "/knowledge_base/download_backup"),
    ("POST", "/llm_model/stop"),
    ("POST", "/llm_model/change"),
    ("POST", "/llm_model/change_model"),
}


def needed(method: str, path: str) -> str:
    if (method, path) in ADMIN_ROUTES:
        return "admin"
    return "write" if (method, path) in WRITE_ROUTES else "read"


@pytest.fixture(scope="module")
def scoped(server_factory: ServerFactory) -> LiveServer:
    keys = [
        {"key": ADMIN, "scope": "admin", "name": "ops"},
        {"key": WRITE, "scope": "write"},
        {"key": READ, "scope": "read"},
        {"key": LIMITED, "scope": "write", "knowledge_bases": ["kb1"]},
        PLAIN,
    ]
    srv = server_factory(api={"api_keys": keys})
    with srv.client(headers={"X-API-Key": ADMIN}) as c:
        for kb in ("kb1", "kb2"):
            assert c.post("/knowledge_base/create_knowledge_base", json={"knowledge_base_name": kb}).status_code == 200
            files = [("files", ("ports.md", f"The {kb} server listens on port 7861.".encode(), "text/markdown"))]
            r = c.post("/knowledge_base/upload_docs", data={"knowledge_base_name": kb}, files=files)
            assert r.json()["code"] == 200, r.text
    return srv


@pytest.fixture(scope="module")
def client(scoped: LiveServer) -> Iterator[httpx.Client]:
    with scoped.client() as c:
        yield c


def test_every_route_refuses_a_weaker_key_with_403(scoped: LiveServer, client: httpx.Client) -> None:
    routes = all_routes(scoped.app)
    assert set(routes) >= ADMIN_ROUTES | WRITE_ROUTES  # the lists above name real routes
    assert ("GET", "/auth/whoami") in routes and len(routes) >= 45
    refused = 0
    for method, path in routes:
        need = needed(method, path)
        for key, scope in ((READ, "read"), (WRITE, "write")):
            # A KB name the key may use, so only the scope decides.
            r = client.request(method, path, headers={"X-API-Key": key}, json={"knowledge_base_name": "kb1"})
            if RANK[scope] < RANK[need]:
                assert r.status_code == 403, (method, path, scope, r.status_code, r.text[:200])
                body = r.json()
                assert body.get("code") == 403 and f"{need} is needed" in body["msg"], body
                refused += 1
            else:
                assert r.status_code not in (401, 403), (method, path, scope, r.status_code, r.text[:200])
        for headers in ({}, {"X-API-Key": "wrong"}, {"Authorization": f"Bearer {READ}x"}):
            assert client.request(method, path, headers=headers, json={}).status_code == 401, (method, path)
    assert refused == 2 * len(ADMIN_ROUTES) + len(WRITE_ROUTES)


def test_plain_string_key_keeps_every_right(client: httpx.Client) -> None:
    headers = {"Authorization": f"Bearer {PLAIN}"}
    assert client.get("/auth/whoami", headers=headers).json()["data"] == {
        "scope": "admin",
        "knowledge_bases": None,
        "name": "",
    }
    r = client.post("/knowledge_base/create_knowledge_base", json={"knowledge_base_name": "plain"}, headers=headers)
    assert r.status_code == 200
    assert client.post("/knowledge_base/delete_knowledge_base", json="plain", headers=headers).status_code == 200


def test_whoami_tells_each_key_its_scope(client: httpx.Client) -> None:
    def who(key: str) -> dict[str, object]:
        return client.get("/auth/whoami", headers={"X-API-Key": key}).json()["data"]

    assert who(ADMIN) == {"scope": "admin", "knowledge_bases": None, "name": "ops"}
    assert who(READ)["scope"] == "read" and who(WRITE)["scope"] == "write"
    assert who(LIMITED) == {"scope": "write", "knowledge_bases": ["kb1"], "name": ""}


def test_a_key_limited_to_some_kbs_sees_and_uses_only_those(client: httpx.Client) -> None:
    h = {"X-API-Key": LIMITED}
    assert client.get("/knowledge_base/list_knowledge_bases", headers=h).json()["data"] == ["kb1"]
    assert [d["name"] for d in client.get("/knowledge_base/list_kb_details", headers=h).json()["data"]] == ["kb1"]
    assert [m["id"] for m in client.get("/kb/v1/models", headers=h).json()["data"]] == ["kb1"]
    everything = client.get("/knowledge_base/list_knowledge_bases", headers={"X-API-Key": READ}).json()["data"]
    assert {"kb1", "kb2"} <= set(everything)

    search = {"query": "port", "top_k": 1}
    hits = client.post("/knowledge_base/search_docs", json={**search, "knowledge_base_name": "kb1"}, headers=h)
    assert hits.status_code == 200 and "kb1" in hits.json()[0]["page_content"]
    other = client.post("/knowledge_base/search_docs", json={**search, "knowledge_base_name": "kb2"}, headers=h)
    assert other.status_code == 403 and "kb2" in other.json()["msg"]
    # URL-encoded, the name is decoded before the check, as before the path check
    encoded = client.get("/knowledge_base/list_files", params={"knowledge_base_name": "kb%32"}, headers=h)
    assert encoded.status_code == 403
    files = [("files", ("x.md", b"Text that must not land in kb2 at all.", "text/markdown"))]
    upload = client.post("/knowledge_base/upload_docs", data={"knowledge_base_name": "kb2"}, files=files, headers=h)
    assert upload.status_code == 403
    names = client.get("/knowledge_base/list_files", params={"knowledge_base_name": "kb2"}, headers={"X-API-Key": READ})
    assert names.json()["data"] == ["ports.md"]  # nothing was written
    chat = client.post(
        "/kb/v1/chat/completions", json={"model": "kb2", "messages": [{"role": "user", "content": "?"}]}, headers=h
    )
    assert chat.status_code == 403 and chat.json()["error"]["code"] == 403

    # jobs of other knowledge bases are neither listed nor readable
    jobs = client.get("/jobs", headers={"X-API-Key": ADMIN}).json()["data"]
    kb2_job = next(j for j in jobs if j["knowledge_base_name"] == "kb2")
    assert {j["knowledge_base_name"] for j in client.get("/jobs", headers=h).json()["data"]} == {"kb1"}
    assert client.get(f"/jobs/{kb2_job['id']}", headers=h).status_code == 403
    assert client.post(f"/jobs/{kb2_job['id']}/cancel", headers=h).status_code == 403
