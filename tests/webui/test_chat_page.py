"""The chat page in Streamlit's AppTest against a real API server and the real LLM stack (controller, SmolLM2
worker, OpenAI-compatible server): knowledge-base chat with sources and feedback, LLM chat in one recorded
conversation, clearing it, and file chat."""

from __future__ import annotations

import pytest

from kbqa.db.models import Message
from tests.api.conftest import LiveServer, ServerFactory, llm_overrides
from tests.webui.conftest import OpenUI, by_label, texts

pytestmark = pytest.mark.slow

KB = "chat_ui_kb"
DOC = (
    "# Ports\n\nThe kbqa API server listens on port 7861 by default.\n\n"
    "The Streamlit web UI listens on port 8501 and talks to the API server over HTTP only.\n"
)


@pytest.fixture(scope="module")
def server(server_factory: ServerFactory, llm_stack: str) -> LiveServer:
    srv = server_factory(**llm_overrides(llm_stack))
    with srv.client() as c:
        c.post("/knowledge_base/create_knowledge_base", json={"knowledge_base_name": KB})
        files = [("files", ("guide/ports.md", DOC.encode(), "text/markdown"))]
        assert c.post("/knowledge_base/upload_docs", data={"knowledge_base_name": KB}, files=files).status_code == 200
    return srv


def _message(server: LiveServer, message_id: str) -> Message:
    with server.service.db.read() as s:
        row = s.get(Message, message_id)
        assert row is not None
        s.expunge(row)
        return row


def test_kb_chat_streams_an_answer_with_sources_and_takes_feedback(open_ui: OpenUI, server: LiveServer) -> None:
    at = open_ui(server.url)
    assert at.radio(key="chat_mode").value == "kb"  # knowledge-base chat first
    assert at.selectbox(key="chat_model").value == "SmolLM2-135M-Instruct"  # from the running models
    # The server's low default for grounded answers, not the plain chat's temperature.
    assert at.slider(key="chat_temperature_kb").value == server.settings.api.kb_chat_temperature == 0.1
    at.selectbox(key="chat_kb").set_value(KB)
    at.chat_input[0].set_value("Which port does the web UI listen on?").run()
    assert not at.exception and not at.error

    assert [m.name for m in at.chat_message] == ["user", "assistant"]
    turn = at.session_state["chat_conversation"].turns[0]
    assert turn.answer.strip() and turn.answer in texts(at.chat_message[1].markdown)
    (sources,) = at.chat_message[1].expander
    assert sources.label == f"Sources ({len(turn.sources)})" and turn.sources
    assert any(m.startswith("**[1]** guide/ports.md") and "relevance" in m for m in texts(sources.markdown))
    assert any("8501" in c for c in texts(sources.caption))  # the cited chunk's text

    # Thumbs down with a reason reaches the server's record of this answer.
    at.feedback(key=f"fb_{turn.id}").set_value(0)
    at.text_input(key=f"fb_reason_{turn.id}").input("cites the wrong port")
    at.run()
    by_label(at.button, "Send feedback").click().run()
    assert "Feedback sent, thank you." in [c.value for c in at.caption]
    row = _message(server, turn.message_id)
    assert (row.chat_type, row.feedback_score) == ("knowledge_base_chat", 0)
    assert row.feedback_reason == "cites the wrong port"
    assert row.response == turn.answer


def test_llm_chat_one_conversation_then_clear(open_ui: OpenUI, server: LiveServer) -> None:
    at = open_ui(server.url)
    at.radio(key="chat_mode").set_value("llm").run()
    assert at.slider(key="chat_temperature").value == server.settings.llm.client.temperature
    assert not at.get("slider") or "Minimum relevance" not in [s.label for s in at.slider]  # no retrieval here
    for question in ("Say hello.", "And goodbye?"):
        at.chat_input[0].set_value(question).run()
        assert not at.exception and not at.error
    conversation = at.session_state["chat_conversation"]
    assert [t.question for t in conversation.turns] == ["Say hello.", "And goodbye?"]
    rows = [_message(server, t.message_id) for t in conversation.turns]
    assert {r.conversation_id for r in rows} == {conversation.id} and all(r.response for r in rows)
    assert not at.main.expander  # LLM answers cite nothing
    assert not by_label(at.sidebar.get("download_button"), "Export").disabled

    by_label(at.sidebar.button, "Clear").click().run()
    assert not at.chat_message
    assert at.session_state["chat_conversation"].id != conversation.id  # a new conversation on the server too


def test_file_chat(open_ui: OpenUI, server: LiveServer) -> None:
    at = open_ui(server.url)
    at.radio(key="chat_mode").set_value("file").run()
    at.file_uploader(key="chat_files").set_value(
        ("notes.txt", b"The secret port of the test service is 4242.", "text/plain")
    ).run()
    by_label(at.sidebar.button, "Upload for file chat").click().run()
    assert "Chatting with: notes.txt" in [c.value for c in at.sidebar.caption]
    at.chat_input[0].set_value("What is the secret port?").run()
    assert not at.exception and not at.error
    turn = at.session_state["chat_conversation"].turns[0]
    assert turn.answer and turn.sources[0].file == "notes.txt" and turn.target == "notes.txt"
    assert not at.get("download_button") or all(b.label != "Download" for b in at.get("download_button"))
