"""What the UI says when things go wrong: the API server down, an API key missing or wrong, the LLM down, a
refused request. Always a sentence on the page, never a stack trace."""

from __future__ import annotations

import threading
import time

import pytest

from kbqa.webui.api_client import ApiClientError, KBQAClient
from kbqa.webui.models import Job
from tests.api.conftest import LiveServer, ServerFactory, llm_overrides
from tests.llm.llm_topology import free_port
from tests.webui.conftest import KB_PAGE, OpenUI


@pytest.fixture(scope="module")
def locked(server_factory: ServerFactory) -> LiveServer:
    return server_factory(api={"api_keys": ["ui-secret"]})


@pytest.fixture(scope="module")
def no_llm(server_factory: ServerFactory) -> LiveServer:
    """An API server whose LLM endpoint is down, with one knowledge base to ask."""
    srv = server_factory(**llm_overrides(f"http://127.0.0.1:{free_port()}/v1"))
    with srv.client() as c:
        c.post("/knowledge_base/create_knowledge_base", json={"knowledge_base_name": "kb1"})
        files = [("files", ("ports.md", b"The API server listens on port 7861.", "text/markdown"))]
        c.post("/knowledge_base/upload_docs", data={"knowledge_base_name": "kb1"}, files=files)
    return srv


@pytest.mark.parametrize("page", [None, KB_PAGE])
def test_api_server_down(open_ui: OpenUI, page: str | None) -> None:
    url = f"http://127.0.0.1:{free_port()}"
    at = open_ui(url, page)
    assert [e.value for e in at.error] == [
        f"Cannot reach the API server at {url}. Is it running? Start it with `python -m kbqa.api` "
        "(or `python startup.py -a`), or correct the API address in the sidebar."
    ]
    assert not at.exception
    assert ":red[Not connected]" in [c.value for c in at.sidebar.caption]
    assert not at.chat_input  # the page stops after the message instead of drawing half a page


def test_api_key_missing_wrong_then_right(open_ui: OpenUI, locked: LiveServer) -> None:
    at = open_ui(locked.url)
    assert [e.value for e in at.error] == [
        "The API server requires an API key: enter it in the sidebar (or set KBQA_WEBUI__API_KEY)."
    ]
    at.text_input(key="kbqa_api_key").input("not-the-key").run()
    assert [e.value for e in at.error] == [
        "The API server refused the API key: correct it in the sidebar (or KBQA_WEBUI__API_KEY)."
    ]
    at.text_input(key="kbqa_api_key").input("ui-secret").run()
    assert not at.error and not at.exception
    assert f":green[Connected] to {locked.url}" in [c.value for c in at.sidebar.caption]
    assert at.chat_input  # the chat page is usable


def test_api_key_from_the_environment(open_ui: OpenUI, locked: LiveServer) -> None:
    at = open_ui(locked.url, KB_PAGE, KBQA_WEBUI__API_KEY="ui-secret")
    assert not at.error and [t.value for t in at.title] == ["Knowledge bases"]


def test_llm_down_is_a_message_in_the_chat(open_ui: OpenUI, no_llm: LiveServer) -> None:
    at = open_ui(no_llm.url)
    at.selectbox(key="chat_kb").set_value("kb1")
    at.chat_input[0].set_value("Which port does the API server use?").run()
    assert not at.exception
    (error,) = at.error
    assert error.value.startswith("LLM 调用出错 (LLM call failed)") and error.value.endswith("(HTTP 503)")
    # The failed turn stays in the conversation, question and error both visible.
    assert [m.name for m in at.chat_message] == ["user", "assistant"]


def test_client_errors_name_the_cause(no_llm: LiveServer) -> None:
    client = KBQAClient(no_llm.url)
    with pytest.raises(ApiClientError, match=r"^未找到知识库 nope \(HTTP 404\)$") as err:
        client.files("nope")
    assert err.value.status == 404
    with pytest.raises(ApiClientError, match=r"^Don't attack me: .* \(HTTP 400\)$"):
        client.search("../etc", "x")
    with pytest.raises(ApiClientError, match=r"HTTP 404"):
        client.job("0" * 32)
    client.close()


def test_following_a_job_rides_out_an_api_restart(
    server_factory: ServerFactory, tmp_path_factory: pytest.TempPathFactory
) -> None:
    root = tmp_path_factory.mktemp("restart")
    first = server_factory(root)
    port = first.port
    with first.client() as c:
        c.post("/knowledge_base/create_knowledge_base", json={"knowledge_base_name": "kb1"})
        files = [("files", (f"f{i}.md", f"File {i} of the restart test.".encode(), "text/markdown")) for i in range(3)]
        form = {"knowledge_base_name": "kb1", "background": "true"}
        job_id = c.post("/knowledge_base/upload_docs", data=form, files=files).json()["data"]["job_id"]
    client = KBQAClient(first.url)
    first_seen = list(client.follow_job(job_id, interval_s=0.1))[-1]
    first.stop()  # the API server goes away while the UI still polls the job

    followed: list[object] = []
    thread = threading.Thread(target=lambda: followed.extend(client.follow_job(job_id, interval_s=0.1)))
    thread.start()
    time.sleep(1.0)  # the client meets a closed port for a while
    assert thread.is_alive()
    server_factory(root, port=port)  # the server is back, on the same address and data
    thread.join(60)
    assert not thread.is_alive()
    last = followed[-1]
    assert isinstance(last, Job) and last.id == first_seen.id and last.done
    assert last.status == first_seen.status == "succeeded" and len(last.files) == 3  # it outlived the restart
    with pytest.raises(ApiClientError, match="Cannot reach") as err:  # nobody there: it gives up in time
        next(KBQAClient(f"http://127.0.0.1:{free_port()}").follow_job(job_id, interval_s=0.05, reconnect_s=0.3))
    assert err.value.unreachable
    client.close()
