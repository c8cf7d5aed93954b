"""Hostile names and paths on every route that takes a knowledge-base or file name: each gets a 4xx, nothing outside
the test's kb_root is created, changed, deleted or served, and no other knowledge base's records change."""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.api.conftest import LiveServer, ServerFactory

SECRET = "TOP-SECRET-OUTSIDE-CONTENT 1234567"
VICTIM = "victim_kb"
OTHER_FILES = {"doc.md": "# victim\n\nThe victim knowledge base holds this text about apples.\n"}

BAD_KB_NAMES = [
    "../x",
    "../../outside",
    "/tmp/x",
    "..\\x",
    "..%2Fx",
    "..%252Fx",
    "%2e%2e",
    "..",
    ".",
    "%",
    "a\x00b",
    "x" * 300,
    "a/b",
    "victim_kb/../x",
    " ../x",
]
BAD_FILE_NAMES = [
    "../x.txt",
    "../../outside/secret.txt",
    "/etc/passwd",
    "..\\x.txt",
    "..%2Fx.txt",
    "..%2F..%2Fsecret.txt",
    "..",
    "a\x00.txt",
    "x" * 600 + ".txt",
    "wiki/../../x.txt",
    "link.txt",
    "linkdir/secret.txt",
    "C:\\x.txt",
]
# Legal names that resolve through a symlink inside the victim's content folder to a place outside it.
SYMLINKED = {"link.txt", "linkdir/secret.txt"}


def snapshot(root: Path, skip: Path) -> dict[str, tuple[int, float]]:
    out = {}
    for dirpath, dirnames, filenames in os.walk(root):
        here = Path(dirpath)
        if here == skip or skip in here.parents:
            continue
        for name in filenames + dirnames:
            p = here / name
            st = p.lstat()
            out[str(p.relative_to(root))] = (st.st_size, st.st_mtime)
    return out


@pytest.fixture(scope="module")
def env(tmp_path_factory: pytest.TempPathFactory, server_factory: ServerFactory) -> Iterator[dict]:
    root = tmp_path_factory.mktemp("hostile")
    outside = root / "outside"
    outside.mkdir()
    (outside / "secret.txt").write_text(SECRET)
    (root / "x.txt").write_text("keep me")
    server = server_factory(root)
    with server.client() as c:
        for kb in (VICTIM, "a_b", "axb", "_"):
            assert c.post("/knowledge_base/create_knowledge_base", json={"knowledge_base_name": kb}).status_code == 200
        files = [("files", (n, t.encode(), "text/markdown")) for n, t in OTHER_FILES.items()]
        r = c.post("/knowledge_base/upload_docs", data={"knowledge_base_name": VICTIM}, files=files)
        assert r.status_code == 200
        for kb in ("a_b", "axb"):
            files = [("files", (f"{kb}.txt", f"file of {kb} about pears".encode(), "text/plain"))]
            r = c.post("/knowledge_base/upload_docs", data={"knowledge_base_name": kb}, files=files)
            assert r.status_code == 200
    content = server.settings.kb_root / VICTIM / "content"
    (content / "link.txt").symlink_to(outside / "secret.txt")
    (content / "linkdir").symlink_to(outside, target_is_directory=True)
    yield {"root": root, "server": server, "outside": outside}


def kb_state(server: LiveServer) -> dict:
    return {
        kb.name: (kb.file_count, kb.chunk_count, kb.info, server.service.file_names(kb.name))
        for kb in server.service.list_kbs()
    }


def kb_requests(name: str) -> list[tuple[str, str, dict]]:
    """(method, path, httpx kwargs) for every route that takes a knowledge-base name."""
    jname = {"knowledge_base_name": name}
    return [
        ("POST", "/knowledge_base/create_knowledge_base", {"json": jname}),
        ("POST", "/knowledge_base/delete_knowledge_base", {"json": name}),
        ("POST", "/knowledge_base/delete_knowledge_base", {"json": jname}),
        ("GET", "/knowledge_base/list_files", {"params": jname}),
        ("POST", "/knowledge_base/search_docs", {"json": {**jname, "query": "apples"}}),
        (
            "POST",
            "/knowledge_base/upload_docs",
            {"data": jname, "files": [("files", ("ok.txt", b"hello", "text/plain"))]},
        ),
        ("POST", "/knowledge_base/delete_docs", {"json": {**jname, "file_names": ["doc.md"], "delete_content": True}}),
        ("POST", "/knowledge_base/update_info", {"json": {**jname, "kb_info": "pwned"}}),
        ("POST", "/knowledge_base/update_docs", {"json": {**jname, "file_names": ["doc.md"]}}),
        ("POST", "/knowledge_base/update_docs_by_id", {"json": {**jname, "docs": {"1": None}}}),
        ("GET", "/knowledge_base/download_doc", {"params": {**jname, "file_name": "doc.md"}}),
        ("POST", "/knowledge_base/recreate_vector_store", {"json": jname}),
        ("POST", "/knowledge_base/evaluate", {"json": {**jname, "golden": [{"query": "q", "relevant_files": ["a"]}]}}),
        ("POST", "/chat/knowledge_base_chat", {"json": {**jname, "query": "apples"}}),
        ("POST", "/kb/v1/chat/completions", {"json": {"model": name, "messages": [{"role": "user", "content": "q"}]}}),
    ]


def file_requests(name: str) -> list[tuple[str, str, dict]]:
    """Every route that takes a file name, aimed at the victim KB (which holds the symlinks)."""
    kb = {"knowledge_base_name": VICTIM}
    reqs = [
        ("POST", "/knowledge_base/delete_docs", {"json": {**kb, "file_names": [name], "delete_content": True}}),
        ("POST", "/knowledge_base/update_docs", {"json": {**kb, "file_names": [name]}}),
        ("GET", "/knowledge_base/download_doc", {"params": {**kb, "file_name": name}}),
        ("GET", "/knowledge_base/download_doc", {"params": {**kb, "file_name": name, "preview": "true"}}),
        ("POST", "/knowledge_base/search_docs", {"json": {**kb, "file_name": name}}),
        (
            "POST",
            "/knowledge_base/upload_docs",
            {
                "data": {**kb, "docs": json.dumps({name: [{"page_content": "x", "metadata": {}}]})},
                "files": [("files", ("fine.txt", b"fine", "text/plain"))],
            },
        ),
        (
            "POST",
            "/knowledge_base/update_docs",
            {"json": {**kb, "file_names": [], "docs": json.dumps({name: [{"page_content": "x"}]})}},
        ),
    ]
    # A NUL cannot travel in a multipart header; python-multipart itself cuts IE-style "C:\\dir\\f" upload names
    # to their last part before the app sees them, so that one arrives as a harmless "x.txt".
    if "\x00" not in name and not name.startswith("C:"):
        reqs += [
            (
                "POST",
                "/knowledge_base/upload_docs",
                {"data": {**kb, "override": "true"}, "files": [("files", (name, SECRET.encode(), "text/plain"))]},
            ),
        ]
    # A temp KB is a fresh folder: there is no symlink to follow there.
    if "\x00" not in name and not name.startswith("C:") and name not in SYMLINKED:
        temp = {"files": [("files", (name, b"evil", "text/plain"))]}
        reqs.append(("POST", "/knowledge_base/upload_temp_docs", temp))
    return reqs


def _check(env: dict, requests: list[tuple[str, str, dict]]) -> None:
    server: LiveServer = env["server"]
    before_fs = snapshot(env["root"], server.settings.kb_root)
    before_db = kb_state(server)
    with server.client() as c:
        for method, path, kwargs in requests:
            r = c.request(method, path, **kwargs)
            assert 400 <= r.status_code < 500, (method, path, kwargs, r.status_code, r.text[:300])
            assert SECRET not in r.text, (method, path, kwargs)
    assert snapshot(env["root"], server.settings.kb_root) == before_fs
    assert kb_state(server) == before_db
    assert (env["outside"] / "secret.txt").read_text() == SECRET and (env["root"] / "x.txt").is_file()


@pytest.mark.parametrize("name", BAD_KB_NAMES, ids=lambda n: repr(n)[:40])
def test_hostile_kb_names(env: dict, name: str) -> None:
    _check(env, kb_requests(name))


@pytest.mark.parametrize("name", BAD_FILE_NAMES, ids=lambda n: repr(n)[:40])
def test_hostile_file_names(env: dict, name: str) -> None:
    _check(env, file_requests(name))


def test_symlink_out_of_content_is_never_indexed(env: dict) -> None:
    server: LiveServer = env["server"]
    with server.client() as c:
        with c.stream("POST", "/knowledge_base/recreate_vector_store", json={"knowledge_base_name": VICTIM}) as r:
            events = [json.loads(chunk[6:]) for chunk in r.iter_text() if chunk.strip()]
        assert not any(SECRET in json.dumps(e, ensure_ascii=False) for e in events)
        hits = c.post("/knowledge_base/search_docs", json={"knowledge_base_name": VICTIM, "query": SECRET}).json()
        assert all(SECRET not in h["page_content"] for h in hits)
        assert (
            "link.txt" not in c.get("/knowledge_base/list_files", params={"knowledge_base_name": VICTIM}).json()["data"]
        )
    assert (env["outside"] / "secret.txt").read_text() == SECRET


def test_sql_wildcard_names_match_only_themselves(env: dict) -> None:
    server: LiveServer = env["server"]
    with server.client() as c:

        def files(kb: str) -> list[str]:
            return c.get("/knowledge_base/list_files", params={"knowledge_base_name": kb}).json()["data"]

        assert files("a_b") == ["a_b.txt"] and files("axb") == ["axb.txt"] and files("_") == []
        for pattern in ("%", "a%"):
            r = c.get("/knowledge_base/list_files", params={"knowledge_base_name": pattern})
            assert r.status_code == 400
        # Deleting "_" and then a file named "_" elsewhere touches nothing else.
        before = kb_state(server)
        r = c.post("/knowledge_base/delete_docs", json={"knowledge_base_name": "a_b", "file_names": ["_"]})
        assert r.json()["data"]["failed_files"] == {"_": "file _ is not in knowledge base a_b"}
        assert c.post("/knowledge_base/delete_knowledge_base", json="_").json()["code"] == 200
        after = kb_state(server)
        assert "_" not in after and {k: v for k, v in before.items() if k != "_"} == after
        assert c.post("/knowledge_base/delete_knowledge_base", json="%").status_code == 400
        assert kb_state(server) == after


# --- request values past their bounds, or naming what the server does not offer (issue 17) ---------------------------
HUGE = 9223372036854775808  # 2**63: overflowed a C long in the splitter


def out_of_bounds_requests() -> list[tuple[str, str, dict]]:
    """Values that used to reach the service: each must be refused before anything is written or loaded."""
    kb = {"knowledge_base_name": VICTIM}
    upload = [("files", ("new.txt", b"a new file about plums", "text/plain"))]
    return [
        ("POST", "/knowledge_base/recreate_vector_store", {"json": {**kb, "chunk_size": HUGE}}),
        ("POST", "/knowledge_base/recreate_vector_store", {"json": {**kb, "chunk_overlap": HUGE}}),
        ("POST", "/knowledge_base/recreate_vector_store", {"json": {**kb, "chunk_size": 100, "chunk_overlap": 100}}),
        ("POST", "/knowledge_base/recreate_vector_store", {"json": {**kb, "chunk_size": 10}}),  # default overlap 50
        ("POST", "/knowledge_base/recreate_vector_store", {"json": {**kb, "vs_type": "milvus"}}),
        ("POST", "/knowledge_base/recreate_vector_store", {"json": {**kb, "embed_model": "bge-large-zh-v1.5"}}),
        ("POST", "/knowledge_base/upload_docs", {"data": {**kb, "chunk_size": str(HUGE)}, "files": upload}),
        ("POST", "/knowledge_base/upload_docs", {"data": {**kb, "chunk_size": "10"}, "files": upload}),
        ("POST", "/knowledge_base/upload_temp_docs", {"data": {"chunk_size": str(HUGE)}, "files": upload}),
        ("POST", "/knowledge_base/update_docs", {"json": {**kb, "file_names": ["doc.md"], "chunk_size": HUGE}}),
        ("POST", "/knowledge_base/update_docs", {"json": {**kb, "file_names": ["doc.md"], "chunk_overlap": 300}}),
        ("POST", "/knowledge_base/search_docs", {"json": {**kb, "query": "apples", "top_k": HUGE}}),
        ("POST", "/knowledge_base/delete_docs", {"json": {**kb, "file_names": ["doc.md"] * 10_001}}),
        ("POST", "/knowledge_base/update_info", {"json": {**kb, "kb_info": "x" * 5000}}),
        ("POST", "/chat/knowledge_base_chat", {"json": {**kb, "query": "apples", "max_tokens": HUGE}}),
        ("POST", "/chat/knowledge_base_chat", {"json": {**kb, "query": "q", "history": [["user", "x"]] * 201}}),
        ("POST", "/chat/chat", {"json": {"query": "hi", "history_len": HUGE}}),
        ("POST", "/chat/chat", {"json": {"query": "x" * 100_001}}),
        ("POST", "/other/embed_texts", {"json": {"texts": ["x" * 100_001]}}),
        ("POST", "/kb/v1/chat/completions", {"json": {"model": VICTIM, "messages": [{"role": "user"}] * 201}}),
        ("POST", "/kb/v1/chat/completions", {"json": {"model": VICTIM, "messages": [], "max_tokens": HUGE}}),
    ]


def test_out_of_bounds_values_are_refused_before_any_work(env: dict) -> None:
    _check(env, out_of_bounds_requests())


def test_recreate_with_an_overflowing_chunk_size_keeps_every_file(env: dict) -> None:
    server: LiveServer = env["server"]
    before = kb_state(server)[VICTIM]
    assert before[0] > 0
    with server.client() as c:
        body = {"knowledge_base_name": VICTIM, "chunk_size": HUGE}
        r = c.post("/knowledge_base/recreate_vector_store", json=body)
        assert r.status_code == 422 and r.json()["data"][0]["loc"] == ["body", "chunk_size"], r.text
        r = c.post("/knowledge_base/upload_docs", data={"knowledge_base_name": VICTIM, "chunk_size": str(HUGE)})
        assert r.status_code == 422
    assert kb_state(server)[VICTIM] == before


def test_unknown_store_or_model_on_create_is_400_listing_the_choices(env: dict) -> None:
    server: LiveServer = env["server"]
    with server.client() as c:
        r = c.post(
            "/knowledge_base/create_knowledge_base", json={"knowledge_base_name": "m", "vector_store_type": "milvus"}
        )
        assert r.status_code == 400 and "available: faiss" in r.json()["msg"], r.text
        # Chatchat's client sends its own default model name unless told otherwise.
        r = c.post(
            "/knowledge_base/create_knowledge_base",
            json={"knowledge_base_name": "m", "embed_model": "bge-large-zh-v1.5"},
        )
        assert r.status_code == 400, r.text
        assert "multilingual-e5-small" in r.json()["msg"] and "all-MiniLM-L6-v2" in r.json()["msg"]
        assert not server.service.exists("m")


def _model_paths() -> list[str]:
    from kbqa.embeddings.pool import bundled_minilm_path

    bundled = bundled_minilm_path()
    return [
        "/etc",
        "../../../../tmp",
        "/no/such/folder",
        bundled,
        bundled + "/",
        bundled + "/.",
        bundled + "/./.",
        bundled.replace("/", "//"),
        f"{bundled}/../{Path(bundled).name}",
        "~",
    ]


@pytest.mark.parametrize("path", _model_paths(), ids=lambda p: p[-30:])
def test_embedding_model_folders_from_requests_are_refused(env: dict, path: str) -> None:
    server: LiveServer = env["server"]
    pools = [server.service.embedders, server.app.state.ctx.query_embedders]
    resident = [p.resident() for p in pools]
    before = kb_state(server)
    with server.client() as c:
        for method, route, kwargs in [
            (
                "POST",
                "/knowledge_base/create_knowledge_base",
                {"json": {"knowledge_base_name": "m", "embed_model": path}},
            ),
            (
                "POST",
                "/knowledge_base/recreate_vector_store",
                {"json": {"knowledge_base_name": "m", "embed_model": path}},
            ),
            (
                "POST",
                "/knowledge_base/recreate_vector_store",
                {"json": {"knowledge_base_name": VICTIM, "embed_model": path}},
            ),
            ("POST", "/other/embed_texts", {"json": {"texts": ["x"], "embed_model": path}}),
        ]:
            r = c.request(method, route, **kwargs)
            assert r.status_code == 400, (route, r.text)
            # The same answer whether the folder exists or not: nothing tells a client what is on the disk.
            assert "multilingual-e5-small" in r.text and "exist" not in r.text and "local folder" not in r.text
    assert [p.resident() for p in pools] == resident
    assert kb_state(server) == before
