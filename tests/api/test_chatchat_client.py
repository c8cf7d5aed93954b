"""Every call of Chatchat 0.2.10's web UI client (ApiRequest, re-made in chatchat_client.py) against a real API
server: the routes exist, take the bodies that client sends, and answer in the shapes it reads. The LLM calls run
against the real LLM stack (slow); the rest need only the embedders."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.api.chatchat_client import VECTOR_SEARCH_TOP_K, ChatchatClient
from tests.api.conftest import LiveServer, ServerFactory, llm_overrides
from tests.llm.llm_topology import CHAT_MODEL

KB = "webui_client_kb"
GUIDE = (
    "# Deployment guide\n\n"
    "The API server listens on port 7861 and the OpenAI-compatible server on port 8000.\n\n"
    "## Storage\n\nKnowledge bases keep their files under knowledge_base/NAME/content and the index beside them.\n"
)
NOTES = "Release notes: version 0.2.10 added file chat and search engine chat.\n" * 3


@pytest.fixture(scope="module")
def server(server_factory: ServerFactory) -> LiveServer:
    return server_factory()


@pytest.fixture(scope="module")
def api(server: LiveServer) -> Iterator[ChatchatClient]:
    client = ChatchatClient(server.url, llm_model=CHAT_MODEL, embed_model=server.settings.embedding.model)
    yield client
    client.close()


def test_server_state(api: ChatchatClient) -> None:
    configs = api.get_server_configs()
    assert isinstance(configs, dict) and configs["VECTOR_SEARCH_TOP_K"] > 0 and configs["EMBEDDING_MODEL"]
    assert isinstance(api.list_search_engines(), list)
    template = api.get_prompt_template("llm_chat")
    assert isinstance(template, str) and "{{ input }}" in template


def test_knowledge_base_lifecycle(api: ChatchatClient) -> None:
    assert api.create_knowledge_base(KB)["code"] == 200
    assert KB in api.list_knowledge_bases()

    files = {"guide.md": GUIDE.encode(), "notes/release.txt": NOTES.encode()}
    result = api.upload_kb_docs(files, KB, override=True)
    assert result["code"] == 200 and result["data"]["failed_files"] == {}
    assert sorted(api.list_kb_docs(KB)) == ["guide.md", "notes/release.txt"]
    again = api.upload_kb_docs(files, KB)  # same sizes, no override: Chatchat refuses each
    assert len(again["data"]["failed_files"]) == 2

    hits = api.search_kb_docs(KB, query="which port does the API server listen on?")
    assert 0 < len(hits) <= VECTOR_SEARCH_TOP_K and hits[0]["metadata"]["source"] == "guide.md"
    listed = api.search_kb_docs(KB, file_name="notes/release.txt")
    assert listed and {d["metadata"]["source"] for d in listed} == {"notes/release.txt"}

    r = api.update_docs_by_id(KB, {listed[0]["id"]: {"page_content": "Rewritten release notes.", "metadata": {}}})
    assert r.json()["code"] == 200
    assert "Rewritten release notes." in [
        d["page_content"] for d in api.search_kb_docs(KB, file_name="notes/release.txt")
    ]

    assert api.update_kb_docs(KB, ["guide.md", "notes/release.txt"], override_custom_docs=True)["code"] == 200
    assert api.update_kb_info(KB, "docs for the web UI client test")["data"] == {
        "kb_info": "docs for the web UI client test"
    }

    events = api.recreate_vector_store(KB)
    assert events and all(e["code"] == 200 for e in events)
    assert sorted(e["doc"] for e in events if "doc" in e) == ["guide.md", "notes/release.txt"]

    deleted = api.delete_kb_docs(KB, ["notes/release.txt"])
    assert deleted["code"] == 200 and deleted["data"]["failed_files"] == {}
    assert api.list_kb_docs(KB) == ["guide.md"]
    assert api.delete_knowledge_base(KB)["code"] == 200
    assert KB not in api.list_knowledge_bases()


def test_embed_texts(api: ChatchatClient) -> None:
    docs = api.embed_texts(["hello", "world"])
    query = api.embed_texts(["hello"], to_query=True)
    assert len(docs) == 2 and len(docs[0]) == len(query[0]) > 0


def test_unsupported_operations_answer_501_in_band(api: ChatchatClient) -> None:
    for answer in (api.stop_llm_model(CHAT_MODEL), api.change_llm_model(CHAT_MODEL, "other-model")):
        assert answer["code"] == 501 and answer["msg"]
    for events in (api.agent_chat("hi"), api.search_engine_chat("hi", "duckduckgo")):
        assert len(events) == 1 and events[0]["code"] == 501 and events[0]["msg"]


# -- with the LLM stack -------------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def llm_api(server_factory: ServerFactory, llm_stack: str) -> Iterator[ChatchatClient]:
    srv = server_factory(**llm_overrides(llm_stack))
    client = ChatchatClient(srv.url, llm_model=CHAT_MODEL, embed_model=srv.settings.embedding.model)
    yield client
    client.close()


@pytest.mark.slow
def test_llm_models(llm_api: ChatchatClient) -> None:
    running = llm_api.list_running_models()
    # LLMs only: the OpenAI server also serves the KBs' embedder, which must not become the web UI's chat model.
    assert isinstance(running, dict) and list(running) == [CHAT_MODEL]
    assert llm_api.get_default_llm_model([CHAT_MODEL]) == (CHAT_MODEL, True)
    assert llm_api.get_default_llm_model(["chatglm3-6b"]) == (CHAT_MODEL, True)  # configured elsewhere: first one
    configured = llm_api.list_config_models()
    assert set(configured) == {"local", "online"} and configured["online"]
    assert llm_api.get_model_config(CHAT_MODEL)
    # test_llm_api.py's own call (not an ApiRequest method): the running names as a list.
    r = llm_api.http.post("/llm_model/list_models")
    assert r.status_code == 200 and r.json()["data"] == [CHAT_MODEL]
    change = llm_api.http.post("/llm_model/change_model", json={"model_name": CHAT_MODEL, "new_model_name": "x"})
    assert change.status_code == 501 and change.json()["code"] == 501


@pytest.mark.slow
def test_chats_and_feedback(llm_api: ChatchatClient) -> None:
    events = llm_api.chat_chat("Say hello.")
    assert events and all("code" not in e for e in events) and "".join(e.get("text", "") for e in events).strip()
    message_id = events[0]["message_id"]
    assert llm_api.chat_feedback(message_id, 80, "fine").json()["code"] == 200

    assert llm_api.create_knowledge_base(KB)["code"] == 200
    assert llm_api.upload_kb_docs({"guide.md": GUIDE.encode()}, KB)["data"]["failed_files"] == {}
    events = llm_api.knowledge_base_chat("Which port does the API server use?", KB, stream=False)
    assert len(events) == 1 and events[0]["answer"].strip() and "guide.md" in events[0]["docs"][0]

    temp = llm_api.upload_temp_docs({"notes.txt": NOTES.encode()})
    assert (
        temp["code"] == 200 and temp["data"]["id"] and temp["data"]["failed_files"] == []
    )  # a list in Chatchat, unlike upload_docs
    events = llm_api.file_chat("What did version 0.2.10 add?", temp["data"]["id"])
    assert events[-1]["docs"] and "".join(e.get("answer", "") for e in events).strip()
