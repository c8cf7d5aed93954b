"""The grounded knowledge-base prompt built from the real templates (configs/prompts.yaml and the built-in fallback):
the instruction in the question's language as a system message, numbered sources with file names and pages, old
custom templates kept as they were, broken templates named; and the HTTP status a broken template gets."""

from __future__ import annotations

import os
import time
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml

from kbqa.api.app import create_app
from kbqa.api.settings import APISettings
from kbqa.chat.kb_chat import KBChat
from kbqa.chat.language import detect_language
from kbqa.chat.prompts import BUILTIN, InvalidPrompt, PromptTemplates
from kbqa.errors import ConfigError
from kbqa.knowledge.service import SearchHit
from kbqa.llm.client import AsyncLLMClient, LLMClient
from kbqa.llm.settings import ClientSettings
from tests.api.conftest import ServerFactory
from tests.conftest import make_settings

REPO_PROMPTS = Path(__file__).resolve().parents[2] / "configs" / "prompts.yaml"
EN_Q = "Which port does the API server use?"
ZH_Q = "API 服务默认使用哪个端口？"
OLD_CHATCHAT_DEFAULT = (
    "<指令>根据已知信息，简洁和专业的来回答问题。如果无法从中得到答案，请说 “根据已知信息无法回答该问题”。</指令>\n"
    "<已知信息>{{ context }}</已知信息>\n<问题>{{ question }}</问题>\n"
)


def _hits() -> list[SearchHit]:
    return [
        SearchHit(7, "docs", "manual.pdf", 2, "The API server listens on port 7861.", {"page": 3}, 0.3),
        SearchHit(9, "docs", "guide/ports.md", 0, "OpenAI 兼容服务监听 8000 端口。", {"heading": "Ports"}, 0.5),
    ]


def _kb_chat(prompts_file: Path, api: APISettings | None = None) -> KBChat:
    # Clients are built but never reached: ground() and options() do not call the LLM.
    client = ClientSettings(base_url="http://127.0.0.1:9/v1")
    searcher: Any = None  # not used by ground()
    return KBChat(
        api or APISettings(), PromptTemplates(prompts_file), searcher, AsyncLLMClient(client), LLMClient(client)
    )


@pytest.fixture(params=["file", "builtin"])
def prompts_file(request: pytest.FixtureRequest, tmp_path: Path) -> Path:
    """The shipped prompts.yaml, and a missing file (the built-in fallback): both must build the same prompt."""
    return REPO_PROMPTS if request.param == "file" else tmp_path / "missing.yaml"


def test_language_detection() -> None:
    assert detect_language(EN_Q) == "en"
    assert detect_language(ZH_Q) == "zh"
    assert detect_language("什么是 FAISS？") == "zh"  # three ideographs outweigh five Latin letters
    assert detect_language("How does kbqa split 中文 text into chunks?") == "en"
    assert detect_language("") == "en" and detect_language("7861?") == "en"


def test_english_question_gets_english_system_message_and_numbered_sources(prompts_file: Path) -> None:
    api = APISettings()
    grounded = _kb_chat(prompts_file, api).ground(_hits(), EN_Q, [], "default", None)
    system, user = grounded.messages
    assert system["role"] == "system" and user["role"] == "user"
    assert system["content"].startswith("You answer questions using only the numbered sources")
    assert api.refusal_en in system["content"] and "[n]" in system["content"]
    assert not any("\u4e00" <= ch <= "\u9fff" for ch in system["content"])
    assert user["content"] == (
        "Sources:\n[1] (manual.pdf, p. 3)\nThe API server listens on port 7861.\n\n"
        "[2] (guide/ports.md, Ports)\nOpenAI 兼容服务监听 8000 端口。\n\n"
        f"Question: {EN_Q}\n"
    )
    # [n] in the answer is sources[n-1]
    assert [(s["index"], s["file"], s["page"]) for s in grounded.sources] == [
        (1, "manual.pdf", 3),
        (2, "guide/ports.md", None),
    ]
    assert grounded.docs[0].startswith("出处 [1] [manual.pdf]")


def test_chinese_question_gets_chinese_system_message(prompts_file: Path) -> None:
    api = APISettings()
    system, user = _kb_chat(prompts_file, api).ground(_hits(), ZH_Q, [], "default", None).messages
    assert system["content"].startswith("你是知识库问答助手") and api.refusal_zh in system["content"]
    assert "[n]" in system["content"] and "English" not in system["content"]
    assert user["content"].startswith("资料：\n[1] (manual.pdf, p. 3)\n") and user["content"].endswith(
        f"问题：{ZH_Q}\n"
    )


def test_text_template_drops_only_the_no_invention_rule(prompts_file: Path) -> None:
    chat = _kb_chat(prompts_file)
    strict = chat.ground(_hits(), EN_Q, [], "default", None).messages
    lenient = chat.ground(_hits(), EN_Q, [], "text", None).messages
    assert "Do not make anything up" in strict[0]["content"] and "Do not make anything up" not in lenient[0]["content"]
    assert strict[1] == lenient[1]


def test_history_between_one_system_message_and_the_question() -> None:
    history = [
        {"role": "system", "content": "Reply in a formal tone."},
        {"role": "user", "content": "Hello"},
        {"role": "assistant", "content": "Hi."},
    ]
    messages = _kb_chat(REPO_PROMPTS).ground(_hits(), EN_Q, history, "default", None).messages
    assert [m["role"] for m in messages] == ["system", "user", "assistant", "user"]
    assert messages[0]["content"].startswith("You answer") and messages[0]["content"].endswith(
        "Reply in a formal tone."
    )
    assert messages[1:3] == history[1:]


def test_old_custom_template_is_sent_as_before(tmp_path: Path) -> None:
    # An operator's prompts.yaml from before: Chatchat's default, and a custom template with only context/question.
    path = _prompts_file(tmp_path, default=OLD_CHATCHAT_DEFAULT, mine="Context: {{ context }} / Q: {{ question }}")
    chat = _kb_chat(path)
    history = [{"role": "user", "content": "Hello"}, {"role": "assistant", "content": "Hi."}]
    messages = chat.ground(_hits(), EN_Q, history, "mine", None).messages
    context = (
        "[1] (manual.pdf, p. 3)\nThe API server listens on port 7861.\n\n"
        "[2] (guide/ports.md, Ports)\nOpenAI 兼容服务监听 8000 端口。"
    )
    assert messages == [*history, {"role": "user", "content": f"Context: {context} / Q: {EN_Q}"}]
    messages = chat.ground(_hits(), EN_Q, [], "default", None).messages
    assert len(messages) == 1 and messages[0]["content"].startswith("<指令>根据已知信息")
    assert f"<已知信息>{context}</已知信息>" in messages[0]["content"]


def test_builtin_fallback_renders_like_the_shipped_file() -> None:
    shipped, builtin = PromptTemplates(REPO_PROMPTS), PromptTemplates(Path("/nonexistent/prompts.yaml"))
    for kind in ("knowledge_base_chat", "knowledge_base_system"):
        assert set(BUILTIN[kind]) <= set(shipped.all()[kind])
        for name in BUILTIN[kind]:
            for language in ("en", "zh"):
                values = {"context": "[1] (a.md)\nx", "question": "q", "sources": [], "language": language}
                values["refusal"] = "R."
                assert shipped.render(kind, name, **values) == builtin.render(kind, name, **values), (kind, name)


def _prompts_file(tmp_path: Path, **templates: str) -> Path:
    path = tmp_path / "prompts.yaml"
    path.write_text(yaml.safe_dump({"knowledge_base_chat": templates}, allow_unicode=True), encoding="utf-8")
    return path


def test_broken_templates_are_named(tmp_path: Path) -> None:
    prompts = PromptTemplates(_prompts_file(tmp_path, syntax="{{ context ", unknown="{{ context }} {{ answer }}"))
    prompts.check()  # neither is used by the server by itself: logged, not fatal
    with pytest.raises(InvalidPrompt, match=r"knowledge_base_chat\.syntax is not valid Jinja2") as exc:
        prompts.render("knowledge_base_chat", "syntax", context="c", question="q")
    assert exc.value.status_code == 400
    with pytest.raises(InvalidPrompt, match=r"knowledge_base_chat\.unknown uses unknown variable answer"):
        _kb_chat(prompts.path).ground(_hits(), EN_Q, [], "unknown", None)
    # The shipped templates still work beside them.
    assert _kb_chat(prompts.path).ground(_hits(), EN_Q, [], "default", None).messages[0]["role"] == "system"


def test_broken_default_template_is_a_config_error(tmp_path: Path) -> None:
    path = _prompts_file(tmp_path, default="{% if language %}{{ context }}")
    with pytest.raises(ConfigError, match=r"knowledge_base_chat\.default is not valid Jinja2"):
        PromptTemplates(path).check()
    with pytest.raises(ConfigError, match=r"knowledge_base_chat\.default"):
        create_app(make_settings(tmp_path, api={"prompts_file": str(path)}))
    # Broken while the server runs (the file is re-read when it changes): the operator's error, named, not a 400.
    path = _prompts_file(tmp_path, default="{{ context }} {{ question }}")
    prompts = PromptTemplates(path)
    assert prompts.render("knowledge_base_chat", "default", context="c", question="q") == "c q"
    path.write_text("knowledge_base_chat:\n  default: '{{ context }} {{ answer }}'\n", encoding="utf-8")
    os.utime(path, (time.time() + 5, time.time() + 5))  # a new mtime even on a coarse-grained filesystem
    with pytest.raises(ConfigError, match=r"knowledge_base_chat\.default uses unknown variable answer") as exc:
        prompts.render("knowledge_base_chat", "default", context="c", question="q")
    assert exc.value.status_code == 500 and "prompts.yaml" in exc.value.message


def test_unparsable_type_is_a_config_error(tmp_path: Path) -> None:
    path = tmp_path / "prompts.yaml"
    path.write_text("knowledge_base_chat: just a string\n", encoding="utf-8")
    with pytest.raises(ConfigError, match="knowledge_base_chat must map template names"):
        PromptTemplates(path).get("knowledge_base_chat", "default")


def test_kb_chat_defaults_and_explicit_values() -> None:
    chat = _kb_chat(REPO_PROMPTS, APISettings(kb_chat_temperature=0.1, kb_chat_max_tokens=256))
    assert chat.options(None, None, None).kwargs() == {"model": None, "temperature": 0.1, "max_tokens": 256}
    for chatchat_unset in (0, -1):
        assert chat.options(None, None, chatchat_unset).max_tokens == 256
    assert chat.options("m", 0.7, 20).kwargs() == {"model": "m", "temperature": 0.7, "max_tokens": 20}
    assert chat.options(None, 0.0, None).temperature == 0.0  # an explicit 0 is a value, not "unset"


def test_broken_template_chosen_by_a_request_is_400(tmp_path: Path, server_factory: ServerFactory) -> None:
    path = _prompts_file(tmp_path, broken="{{ context }} {{ nope }}")
    server = server_factory(api={"prompts_file": str(path)})
    kb = "prompts_kb"
    with server.client() as c:
        assert c.post("/knowledge_base/create_knowledge_base", json={"knowledge_base_name": kb}).status_code == 200
        files = [("files", ("ports.md", b"The API server listens on port 7861.", "text/markdown"))]
        assert c.post("/knowledge_base/upload_docs", data={"knowledge_base_name": kb}, files=files).status_code == 200
        body = {"query": EN_Q, "knowledge_base_name": kb, "prompt_name": "broken"}
        r = c.post("/chat/knowledge_base_chat", json=body)
        assert r.status_code == 400 and "knowledge_base_chat.broken uses unknown variable nope" in r.json()["msg"]
        r = c.post("/chat/knowledge_base_chat", json={**body, "prompt_name": "no_such_template"})
        assert r.status_code == 404
        openai_body = {"model": kb, "messages": [{"role": "user", "content": EN_Q}], "prompt_name": "broken"}
        r = httpx.post(f"{server.url}/kb/v1/chat/completions", json=openai_body)
        assert r.status_code == 400 and "knowledge_base_chat.broken" in r.json()["error"]["message"]
