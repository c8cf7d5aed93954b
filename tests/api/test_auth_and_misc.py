"""API keys on every route (docs included), the body-size limit, offline docs, health and the small routes."""

from __future__ import annotations

import re
from collections.abc import Iterator

import httpx
import pytest
from fastapi import FastAPI
from starlette.routing import Mount

from tests.api.conftest import LiveServer, ServerFactory

KEY = "s3cret-key"


def all_routes(app: FastAPI) -> list[tuple[str, str]]:
    """(method, path) of every route, those of included routers and mounts too."""
    out: list[tuple[str, str]] = []
    for route in app.routes:
        if isinstance(route, Mount):
            out.append(("GET", route.path + "/swagger-ui.css"))
            continue
        inner = getattr(route, "original_router", None)
        for r in inner.routes if inner is not None else [route]:
            for method in sorted(getattr(r, "methods", None) or {"GET"}):
                if method != "HEAD":
                    out.append((method, re.sub(r"\{[^}]+\}", "0" * 32, r.path)))
    return out


@pytest.fixture(scope="module")
def keyed(server_factory: ServerFactory) -> LiveServer:
    return server_factory(api={"api_keys": [KEY]})


@pytest.fixture(scope="module")
def server(server_factory: ServerFactory) -> LiveServer:
    return server_factory(api={"max_upload_mb": 1}, kb={"max_file_mb": 0.5})


@pytest.fixture(scope="module")
def client(server: LiveServer) -> Iterator[httpx.Client]:
    with server.client() as c:
        yield c


def test_every_route_refuses_without_a_key(keyed: LiveServer) -> None:
    routes = all_routes(keyed.app)
    paths = {p for _, p in routes}
    assert {"/docs", "/openapi.json", "/health", "/chat/knowledge_base_chat", "/jobs/" + "0" * 32} <= paths
    assert len(routes) >= 40
    with keyed.client() as c:
        for method, path in routes:
            for headers in ({}, {"Authorization": "Bearer wrong"}, {"X-API-Key": "wrong"}, {"Authorization": KEY}):
                r = c.request(method, path, headers=headers, json={})
                assert r.status_code == 401, (method, path, headers, r.status_code)
                assert r.json().get("code") == 401 or r.json()["error"]["code"] == 401
        assert c.get("/health", headers={"Authorization": f"Bearer {KEY}"}).status_code == 200
        assert c.get("/knowledge_base/list_knowledge_bases", headers={"X-API-Key": KEY}).json()["code"] == 200
        assert c.get("/docs", headers={"X-API-Key": KEY}).status_code == 200


def test_docs_work_offline(client: httpx.Client) -> None:
    r = client.get("/", follow_redirects=False)
    assert r.status_code == 307 and r.headers["location"] == "/docs"
    html = client.get("/docs").text
    assert not re.findall(r"https?://", html) and "/static-offline-docs/swagger-ui-bundle.js" in html
    for asset in re.findall(r'(?:src|href)="(/static-offline-docs/[^"]+)"', html):
        assert client.get(asset).status_code == 200, asset
    redoc = client.get("/redoc").text
    assert "/static-offline-docs/redoc.standalone.js" in redoc and not re.findall(r"https?://", redoc)
    spec = client.get("/openapi.json").json()
    assert "/chat/knowledge_base_chat" in spec["paths"] and "/kb/v1/chat/completions" in spec["paths"]


def test_health_and_ready(client: httpx.Client) -> None:
    assert client.get("/health").json() == {"status": "ok"}
    r = client.get("/ready")
    assert r.status_code == 200 and r.json()["data"]["database"] == "ok"


def test_body_and_file_size_limits(client: httpx.Client, server: LiveServer) -> None:
    client.post("/knowledge_base/create_knowledge_base", json={"knowledge_base_name": "limits"})
    big = b"a" * (2 << 20)
    r = client.post(
        "/knowledge_base/upload_docs",
        data={"knowledge_base_name": "limits"},
        files=[("files", ("big.txt", big, "text/plain"))],
    )
    assert r.status_code == 413 and r.json()["code"] == 413
    medium = b"word " * 150_000  # 0.7 MiB: under the request limit, over the per-file limit
    r = client.post(
        "/knowledge_base/upload_docs",
        data={"knowledge_base_name": "limits"},
        files=[("files", ("medium.txt", medium, "text/plain"))],
    )
    assert "medium.txt" in r.json()["data"]["failed_files"]
    content = server.settings.kb_root / "limits" / "content"
    assert not (content / "medium.txt").exists() and not list(content.parent.glob(".kbqa-tmp-*"))


def test_server_and_prompt_routes(client: httpx.Client) -> None:
    configs = client.post("/server/configs").json()
    assert configs["VECTOR_SEARCH_TOP_K"] == 3 and configs["SCORE_THRESHOLD"] == 1.0
    assert (configs["TEMPERATURE"], configs["KB_CHAT_TEMPERATURE"]) == (0.7, 0.1)
    assert set(configs["PROMPT_TEMPLATES"]["knowledge_base_chat"]) >= {"default", "text", "empty"}
    tpl = client.post("/server/get_prompt_template", json={"type": "knowledge_base_chat", "name": "default"}).json()
    assert isinstance(tpl, str) and "{{ context }}" in tpl and "{{ question }}" in tpl
    assert client.post("/server/get_prompt_template", json={"type": "llm_chat", "name": "nope"}).json() is None
    assert client.post("/server/list_search_engines").json()["data"] == []
    for path in (
        "/chat/search_engine_chat",
        "/chat/agent_chat",
        "/llm_model/stop",
        "/llm_model/change",
        "/other/completion",
        "/knowledge_base/kb_summary_api/summary_file_to_vector_store",
    ):
        r = client.post(path, json={"query": "x"})
        assert r.status_code == 501 and r.json()["code"] == 501


def test_embed_texts(client: httpx.Client, server: LiveServer) -> None:
    r = client.post("/other/embed_texts", json={"texts": ["你好", "hello"]})
    vectors = r.json()["data"]
    assert r.status_code == 200 and len(vectors) == 2 and len(vectors[0]) == 384
    q = client.post("/other/embed_texts", json={"texts": ["hello"], "to_query": True}).json()["data"]
    assert len(q) == 1 and q[0] != vectors[1]  # e5 puts a different prefix on queries
    r = client.post("/other/embed_texts", json={"texts": ["x"], "embed_model": "/etc"})
    assert r.status_code == 400 and r.json()["msg"] == "指定的模型 /etc 不支持 Embeddings 功能。"


def test_llm_model_routes_never_call_a_client_address(client: httpx.Client, server: LiveServer) -> None:
    hits: list[str] = []
    # The configured endpoint is not running in this module: the route must fail over to it (and fail),
    # never reach the address the client supplied.
    import socket

    trap = socket.socket()
    trap.bind(("127.0.0.1", 0))
    trap.listen(1)
    trap.settimeout(0.5)
    port = trap.getsockname()[1]
    r = client.post("/llm_model/list_running_models", json={"controller_address": f"http://127.0.0.1:{port}"})
    try:
        conn, _ = trap.accept()
        hits.append("connected")
        conn.close()
    except TimeoutError:
        pass
    finally:
        trap.close()
    assert hits == [] and r.status_code in (200, 503)
    data = client.post("/llm_model/list_config_models", json={}).json()["data"]
    assert set(data) == {"local", "online"} and "api_key" not in str(data)
    model = server.settings.llm.client.model
    assert client.post("/llm_model/get_model_config", json={"model_name": model}).json()["data"]


def test_validation_errors_keep_the_body_shape(client: httpx.Client) -> None:
    r = client.post("/knowledge_base/search_docs", json={"query": "x"})
    assert r.status_code == 422 and r.json()["code"] == 422 and r.json()["data"]
    r = client.get("/no/such/route")
    assert r.status_code == 404 and r.json()["code"] == 404


def test_evaluate_route(client: httpx.Client) -> None:
    client.post("/knowledge_base/create_knowledge_base", json={"knowledge_base_name": "evalkb"})
    files = [
        ("files", ("tea.md", "# 茶\n\n绿茶和红茶是中国最常见的茶类，龙井是著名的绿茶。".encode(), "text/markdown")),
        ("files", ("space.md", b"# Space\n\nJupiter is the largest planet of the solar system.", "text/markdown")),
    ]
    assert (
        client.post("/knowledge_base/upload_docs", data={"knowledge_base_name": "evalkb"}, files=files).json()["data"][
            "failed_files"
        ]
        == {}
    )
    golden = [
        {"query": "龙井是什么茶", "relevant_files": ["tea.md"]},
        {"query": "largest planet", "relevant_files": ["space.md"]},
    ]
    r = client.post(
        "/knowledge_base/evaluate",
        json={"knowledge_base_name": "evalkb", "golden": golden, "modes": ["dense", "hybrid"]},
    )
    data = r.json()["data"]
    assert r.status_code == 200 and set(data) == {"dense", "hybrid"}
    assert data["hybrid"]["recall@5"] == 1.0
    bad = client.post("/knowledge_base/evaluate", json={"knowledge_base_name": "evalkb", "golden": [{"query": "x"}]})
    assert bad.status_code == 400


def test_cors_wildcard_is_refused() -> None:
    from pydantic import ValidationError

    from kbqa.api.settings import APISettings

    with pytest.raises(ValidationError):
        APISettings(cors_origins=["*"])
    with pytest.raises(ValidationError):
        APISettings(cors_origins=["null"])  # every file:// page and sandboxed frame
    assert APISettings(cors_origins=["http://localhost:8501"]).cors_origins == ["http://localhost:8501"]


def test_cors_allows_only_listed_origins(server_factory: ServerFactory) -> None:
    srv = server_factory(api={"cors_origins": ["http://ui.example"], "api_keys": [KEY]})
    with srv.client() as c:
        pre = {"Origin": "http://ui.example", "Access-Control-Request-Method": "POST"}
        r = c.options("/chat/knowledge_base_chat", headers=pre)
        assert r.status_code == 200 and r.headers.get("access-control-allow-origin") == "http://ui.example"
        assert r.headers["access-control-allow-credentials"] == "true"
        r = c.options("/chat/knowledge_base_chat", headers={**pre, "Origin": "http://evil.example"})
        assert r.status_code == 400 and "access-control-allow-origin" not in r.headers


def test_python_m_kbqa_api_serves(tmp_path) -> None:  # type: ignore[no-untyped-def]
    import subprocess
    import sys
    import time

    from tests.llm.llm_topology import free_port

    config = tmp_path / "settings.yaml"
    config.write_text(f"paths:\n  kb_root: {tmp_path / 'kb'}\n", encoding="utf-8")
    port = free_port()
    proc = subprocess.Popen(
        [sys.executable, "-m", "kbqa.api", "--config", str(config), "--host", "127.0.0.1", "--port", str(port)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                r = httpx.get(f"http://127.0.0.1:{port}/knowledge_base/list_knowledge_bases", timeout=5)
                break
            except httpx.HTTPError:
                assert proc.poll() is None and time.monotonic() < deadline
                time.sleep(0.2)
        assert r.json() == {"code": 200, "msg": "success", "data": []}
    finally:
        proc.terminate()
        proc.wait(30)
    assert proc.returncode in (0, -15)
