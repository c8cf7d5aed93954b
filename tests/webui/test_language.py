"""The web UI in Chinese: ``webui.language`` (here through KBQA_WEBUI__LANGUAGE) and the sidebar's language box
switch every label, and the Chinese form really works against the API server. Plus the catalogue's own checks:
both languages for every id, with the same placeholders."""

from __future__ import annotations

from datetime import datetime

import httpx
import pytest

from kbqa.webui.conversation import Conversation, Turn
from kbqa.webui.i18n import LANGUAGE_KEY, STRINGS, placeholders, text
from kbqa.webui.models import Source
from tests.api.conftest import LiveServer, ServerFactory
from tests.webui.conftest import KB_PAGE, OpenUI, by_label

ZH = {"KBQA_WEBUI__LANGUAGE": "zh"}


@pytest.fixture(scope="module")
def server(server_factory: ServerFactory) -> LiveServer:
    return server_factory()


def test_every_string_has_both_languages_with_the_same_placeholders() -> None:
    for key, (en, zh) in STRINGS.items():
        assert en.strip() and zh.strip(), key
        assert placeholders(en) == placeholders(zh), key
    # Chinese text really is Chinese where it is not a name both languages share.
    assert text("zh", "page_kb") == "知识库" and text("en", "page_kb") == "Knowledge bases"
    assert text("fr", "page_kb") == "Knowledge bases"  # an unknown language falls back to English


def test_conversation_export_in_chinese() -> None:
    source = Source(index=1, file="guide/ports.md", page=2, heading="Ports", relevance=0.88, text="...")
    conversation = Conversation([Turn("q1", "kb", target="docs", answer="a1", sources=[source])])
    markdown = conversation.to_markdown(datetime(2024, 5, 1, 9, 30), lang="zh")
    assert markdown.startswith("# kbqa 对话记录（2024-05-01 09:30）\n")
    assert "## 1. 知识库问答 — docs\n\n**问题：** q1\n\n**回答：**\n\na1\n" in markdown
    assert '1. guide/ports.md (第 2 页, "Ports") — 相关度 0.88' in markdown


def test_kb_page_in_chinese_creates_a_kb(open_ui: OpenUI, server: LiveServer) -> None:
    at = open_ui(server.url, KB_PAGE, **ZH)
    assert [t.value for t in at.title] == ["知识库"]
    assert at.selectbox(key=LANGUAGE_KEY).value == "zh"
    assert by_label(at.selectbox, "知识库").options == ["➕ 新建知识库…"]
    assert [s.value for s in at.subheader] == ["新建知识库"]
    assert by_label(at.selectbox, "向量库类型").options == ["faiss"]

    by_label(at.text_input, "名称").input("zh_notes")
    by_label(at.text_area, "简介").input("会议记录")
    by_label(at.button, "新建").click().run()
    assert not at.exception and not at.error
    assert at.selectbox(key="kb_selected").value == "zh_notes"
    with httpx.Client(base_url=server.url) as http:
        kbs = {kb["name"]: kb for kb in http.get("/knowledge_base/list_kb_details").json()["data"]}
    assert kbs["zh_notes"]["info"] == "会议记录"
    # The opened knowledge base: metrics, tabs and the upload tab's button in Chinese.
    assert [m.label for m in at.metric] == ["文件", "分块"]
    assert [tab.label for tab in at.tabs] == ["文件", "上传", "命中测试"]
    assert {"重建向量库", "上传并索引", "搜索"} <= {b.label for b in at.button}
    assert "还没有文件：请在“上传”标签页添加。" in [i.value for i in at.info]
    # A server error is shown as the server wrote it.
    at.selectbox(key="kb_selected").set_value("\u0000new").run()
    by_label(at.text_input, "名称").input("zh_notes")
    by_label(at.button, "新建").click().run()
    assert any("已存在同名知识库 zh_notes" in e.value for e in at.error)


def test_sidebar_switches_the_chat_page_to_chinese_and_back(open_ui: OpenUI, server: LiveServer) -> None:
    at = open_ui(server.url)
    assert [t.value for t in at.title] == ["Chat"]
    at.selectbox(key=LANGUAGE_KEY).set_value("zh").run()
    assert not at.exception
    assert [t.value for t in at.title] == ["对话"]
    assert at.sidebar.subheader[0].value == "对话设置"
    assert at.radio(key="chat_mode").options == ["知识库问答", "LLM 对话", "文件对话"]
    assert at.radio(key="chat_mode").value == "kb"  # the widget keeps its value across the switch
    assert {"清空", "导出"} <= {b.label for b in at.sidebar.button} | {b.label for b in at.get("download_button")}
    assert by_label(at.sidebar.expander, "API 服务器")
    at.selectbox(key=LANGUAGE_KEY).set_value("en").run()
    assert [t.value for t in at.title] == ["Chat"]
