"""Mirrors Langchain-Chatchat 0.2.10's tests/api/test_kb_api.py against our server over real HTTP: ordered, stateful
steps on one knowledge base, with the same requests, the same expectations and the same naive SSE parsing."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.api.conftest import LiveServer, ServerFactory

KB = "kb_for_api_test"
TOP_K = 3
QUERIES = ["介绍一下langchain-chatchat项目", "本项目支持哪些文件格式?"]

HOME = (
    "# Langchain-Chatchat\n\n"
    "Langchain-Chatchat 是一个基于 ChatGLM 等大语言模型与 Langchain 等应用框架实现的开源、可离线部署的检索增强生成(RAG)"
    "大模型知识库项目。\n\n"
    "## 介绍\n\n"
    "本项目的目标是建立一套对中文场景与开源模型支持友好、可离线运行的知识库问答解决方案。"
    "项目支持市面上主流的开源 LLM、Embedding 模型与向量数据库，可实现全部使用开源模型离线私有部署。\n\n"
    "## 功能\n\n"
    "本项目支持 txt、docx、md、pdf、csv、html、json 等多种文件格式，可以上传文件建立知识库，再根据知识库进行问答。"
    "文件被加载、切分为文本段落，向量化后存入向量库，提问时匹配最相似的段落作为上下文交给大模型生成回答。\n"
)
DEPLOY = (
    "# 开发环境部署\n\n"
    "## 软件要求\n\n"
    "Langchain-Chatchat 项目在 Linux、macOS 与 Windows 上均可运行，推荐使用 Python 3.11。\n\n"
    "## 安装步骤\n\n"
    "1. 克隆 langchain-chatchat 项目仓库。\n2. 安装依赖：pip install -r requirements.txt。\n"
    "3. 初始化知识库：python init_database.py --recreate-vs。\n4. 启动项目：python startup.py -a。\n\n"
    "本项目支持的文件格式包括 markdown、txt、pdf 与 Office 文档。部署完成后即可在网页中上传文件并提问。\n"
)
TEST_TXT = (
    "langchain-chatchat 项目介绍：这是一个利用 langchain 思想实现的基于本地知识库的问答应用，"
    "目标是建立一套对中文场景友好的知识库问答方案。\n"
    "本项目支持哪些文件格式？支持 txt、md、pdf、docx、html、csv 等常见文件格式。\n"
    "项目的实现原理是：加载文件、读取文本、文本分割、文本向量化、问句向量化、在文本向量中匹配出与问句向量最相似的"
    " top k 个、匹配出的文本作为上下文和问题一起添加到 prompt 中、提交给 LLM 生成回答。\n"
) * 2
FILES = {"wiki/Home.MD": HOME, "wiki/开发环境部署.MD": DEPLOY, "test_files/test.txt": TEST_TXT}


@pytest.fixture(scope="module")
def server(server_factory: ServerFactory) -> LiveServer:
    return server_factory()


@pytest.fixture(scope="module")
def client(server: LiveServer) -> Iterator[httpx.Client]:
    with server.client() as c:
        yield c


def _files() -> list[tuple[str, tuple[str, bytes, str]]]:
    return [("files", (name, text.encode("utf-8"), "text/plain")) for name, text in FILES.items()]


def _search(client: httpx.Client, query: str) -> list[dict]:
    r = client.post("/knowledge_base/search_docs", json={"knowledge_base_name": KB, "query": query, "top_k": TOP_K})
    assert r.status_code == 200, r.text
    data = r.json()
    assert isinstance(data, list)
    return data


def test_delete_kb_before(client: httpx.Client) -> None:
    kbs = client.get("/knowledge_base/list_knowledge_bases").json()["data"]
    if KB in kbs:
        assert client.post("/knowledge_base/delete_knowledge_base", json=KB).json()["code"] == 200
    r = client.post("/knowledge_base/delete_knowledge_base", json=KB)  # bare JSON string body, as ApiRequest sends
    assert r.status_code == 404
    assert r.json() == {"code": 404, "msg": f"未找到知识库 {KB}", "data": None}


def test_create_kb(client: httpx.Client) -> None:
    r = client.post("/knowledge_base/create_knowledge_base", json={"knowledge_base_name": " "})
    assert r.json() == {"code": 404, "msg": "知识库名称不能为空，请重新填写知识库名称", "data": None}
    assert r.status_code == 400

    r = client.post("/knowledge_base/create_knowledge_base", json={"knowledge_base_name": KB})
    assert r.status_code == 200
    assert r.json()["code"] == 200 and r.json()["msg"] == f"已新增知识库 {KB}"

    r = client.post("/knowledge_base/create_knowledge_base", json={"knowledge_base_name": KB})
    assert r.status_code == 409
    assert r.json()["code"] == 404 and r.json()["msg"] == f"已存在同名知识库 {KB}"


def test_list_kbs(client: httpx.Client) -> None:
    data = client.get("/knowledge_base/list_knowledge_bases").json()
    assert data["code"] == 200 and isinstance(data["data"], list) and KB in data["data"]


def test_upload_docs(client: httpx.Client, server: LiveServer) -> None:
    url = "/knowledge_base/upload_docs"
    r = client.post(url, data={"knowledge_base_name": KB, "override": "true"}, files=_files())
    data = r.json()
    assert r.status_code == 200 and data["code"] == 200 and data["msg"] == "文件上传与向量化完成"
    assert data["data"]["failed_files"] == {}
    content = server.settings.kb_root / KB / "content"
    assert (content / "wiki" / "Home.MD").read_text(encoding="utf-8") == HOME  # sub-folder kept

    # Same files, same sizes, no override: every one is refused.
    r = client.post(url, data={"knowledge_base_name": KB, "override": "false"}, files=_files())
    data = r.json()
    assert data["code"] == 200 and len(data["data"]["failed_files"]) == len(FILES)
    assert all(msg == f"文件 {name} 已存在。" for name, msg in data["data"]["failed_files"].items())

    # Override plus custom docs for a file that does not exist on disk: as in Chatchat 0.2, they are not indexed
    # and failed_files stays empty (Chatchat's test counts it); skipped_docs says why.
    docs = {"FAQ.MD": [{"page_content": "custom docs", "metadata": {}}]}
    r = client.post(url, data={"knowledge_base_name": KB, "override": "true", "docs": json.dumps(docs)}, files=_files())
    data = r.json()
    assert data["code"] == 200 and data["data"]["failed_files"] == {}
    assert (
        list(data["data"]["skipped_docs"]) == ["FAQ.MD"] and "content folder" in data["data"]["skipped_docs"]["FAQ.MD"]
    )


def test_list_files(client: httpx.Client) -> None:
    data = client.get("/knowledge_base/list_files", params={"knowledge_base_name": KB}).json()
    assert data["code"] == 200
    for name in FILES:
        assert name in data["data"]
    assert "FAQ.MD" not in data["data"]


def test_search_docs(client: httpx.Client) -> None:
    for query in QUERIES:
        data = _search(client, query)
        assert len(data) == TOP_K
        for doc in data:
            assert doc["type"] == "Document" and doc["page_content"]
            assert doc["metadata"]["source"] in FILES and doc["metadata"]["id"] == doc["id"]
            assert 0 <= doc["score"] <= 1.0 and 0 <= doc["relevance"] <= 1
        assert [d["score"] for d in data] == sorted(d["score"] for d in data)


def test_search_docs_by_file_name_is_exact(client: httpx.Client) -> None:
    r = client.post("/knowledge_base/search_docs", json={"knowledge_base_name": KB, "file_name": "test_files/test.txt"})
    docs = r.json()
    assert docs and {d["metadata"]["source"] for d in docs} == {"test_files/test.txt"}
    for wildcard in ("%", "_", "test_files/%", "test_files/test_txt"):
        r = client.post("/knowledge_base/search_docs", json={"knowledge_base_name": KB, "file_name": wildcard})
        assert r.status_code == 200 and r.json() == [], wildcard


def test_update_info(client: httpx.Client) -> None:
    r = client.post("/knowledge_base/update_info", json={"knowledge_base_name": KB, "kb_info": "这是一个测试知识库"})
    data = r.json()
    assert data["code"] == 200 and data["msg"] == "知识库介绍修改完成"
    assert data["data"] == {"kb_info": "这是一个测试知识库"}


def test_update_docs(client: httpx.Client) -> None:
    r = client.post("/knowledge_base/update_docs", json={"knowledge_base_name": KB, "file_names": list(FILES)})
    data = r.json()
    assert r.status_code == 200 and data["code"] == 200 and data["msg"] == "更新文档完成"
    assert data["data"]["failed_files"] == {}


def test_download_doc(client: httpx.Client) -> None:
    params = {"knowledge_base_name": KB, "file_name": "wiki/Home.MD"}
    r = client.get("/knowledge_base/download_doc", params=params)
    assert r.status_code == 200 and r.content.decode("utf-8") == HOME
    assert r.headers["content-disposition"].startswith("attachment")
    r = client.get("/knowledge_base/download_doc", params={**params, "preview": "true"})
    assert r.status_code == 200 and r.headers["content-disposition"].startswith("inline")


def test_update_docs_by_id(client: httpx.Client) -> None:
    hits = client.post(
        "/knowledge_base/search_docs", json={"knowledge_base_name": KB, "file_name": "test_files/test.txt"}
    ).json()
    target = hits[0]["id"]
    new_text = "update_docs_by_id 写入的新内容：紫色长颈鹿在月球上开会。"
    body = {"knowledge_base_name": KB, "docs": {target: {"page_content": new_text, "metadata": {}}}}
    r = client.post("/knowledge_base/update_docs_by_id", json=body)
    assert r.json() == {"code": 200, "msg": "文档更新成功", "data": None}
    texts = [
        d["page_content"]
        for d in client.post(
            "/knowledge_base/search_docs", json={"knowledge_base_name": KB, "file_name": "test_files/test.txt"}
        ).json()
    ]
    assert new_text in texts and len(texts) == len(hits)
    r = client.post("/knowledge_base/update_docs_by_id", json={"knowledge_base_name": KB, "docs": {"999999": None}})
    assert r.status_code == 404 and r.json()["msg"] == "文档更新失败"


def _file_chunks(client: httpx.Client, path: str) -> dict[str, str]:
    body = {"knowledge_base_name": KB, "file_name": path}
    return {d["id"]: d["page_content"] for d in client.post("/knowledge_base/search_docs", json=body).json()}


def test_update_docs_by_id_keeps_ids(client: httpx.Client) -> None:
    """An edited chunk keeps its id (a client can edit it again with the id it got first); the others are untouched."""
    before = _file_chunks(client, "test_files/test.txt")
    assert len(before) >= 2
    first, second = sorted(before, key=int)[:2]
    for n in range(2):  # the second edit uses the id the client got before the first
        text = f"第 {n} 次编辑：蓝色的鲸鱼在沙漠里唱歌。"
        body = {"knowledge_base_name": KB, "docs": {first: {"page_content": text, "metadata": {"edit": n}}}}
        assert client.post("/knowledge_base/update_docs_by_id", json=body).status_code == 200
        after = _file_chunks(client, "test_files/test.txt")
        assert after[first] == text
        assert {k: v for k, v in after.items() if k != first} == {k: v for k, v in before.items() if k != first}
    hit = client.post(
        "/knowledge_base/search_docs", json={"knowledge_base_name": KB, "query": "蓝色的鲸鱼在沙漠里唱歌", "top_k": 1}
    ).json()[0]
    assert hit["id"] == first and hit["metadata"]["edit"] == 1  # the index and the keyword index follow the edit
    body = {"knowledge_base_name": KB, "docs": {second: {"page_content": "  ", "metadata": {}}}}
    assert client.post("/knowledge_base/update_docs_by_id", json=body).status_code == 200
    assert set(_file_chunks(client, "test_files/test.txt")) == set(before) - {second}
    r = client.post("/knowledge_base/update_docs_by_id", json={"knowledge_base_name": KB, "docs": {second: None}})
    assert r.status_code == 404  # gone: its id is not reused
    r = client.post("/knowledge_base/update_docs_by_id", json={"knowledge_base_name": KB, "docs": {"x1": None}})
    assert r.status_code == 404 and r.json()["msg"] == "文档更新失败"


def test_delete_docs(client: httpx.Client, server: LiveServer) -> None:
    # Chatchat's scenario: only the uploaded files are deleted, and nothing (no "custom docs") is found after.
    r = client.post("/knowledge_base/delete_docs", json={"knowledge_base_name": KB, "file_names": list(FILES)})
    data = r.json()
    assert data["code"] == 200 and data["msg"] == "文件删除完成" and data["data"]["failed_files"] == {}
    for query in QUERIES:
        assert _search(client, query) == []
    # delete_content defaults to False: the files stay for the rebuild below.
    assert (server.settings.kb_root / KB / "content" / "test_files" / "test.txt").is_file()


def test_recreate_vs(client: httpx.Client) -> None:
    with client.stream(
        "POST", "/knowledge_base/recreate_vector_store", json={"knowledge_base_name": KB}, timeout=None
    ) as r:
        assert r.status_code == 200 and r.headers["content-type"].startswith("text/event-stream")
        events = []
        for chunk in r.iter_text():
            if not chunk.strip():
                continue
            data = json.loads(chunk[6:])  # Chatchat's clients: one HTTP chunk == one whole event
            assert isinstance(data, dict) and data["code"] == 200, data
            events.append(data)
    progress = [e for e in events if "doc" in e]
    assert sorted(e["doc"] for e in progress) == sorted(FILES)
    assert progress[-1]["finished"] == progress[-1]["total"] == len(FILES)
    for query in QUERIES:
        assert len(_search(client, query)) == TOP_K


def test_delete_kb_after(client: httpx.Client, server: LiveServer) -> None:
    r = client.post("/knowledge_base/delete_knowledge_base", json={"knowledge_base_name": KB})  # object body too
    assert r.json() == {"code": 200, "msg": f"成功删除知识库 {KB}", "data": None}
    assert KB not in client.get("/knowledge_base/list_knowledge_bases").json()["data"]
    assert not Path(server.settings.kb_root / KB).exists()
