"""The chat page: LLM chat, knowledge-base chat and file chat with streamed answers, cited sources, feedback,
and clearing or exporting the conversation."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field

import streamlit as st

from kbqa.webui.api_client import ApiClientError, KBQAClient
from kbqa.webui.context import UIContext
from kbqa.webui.conversation import MODES, Conversation, Mode, Turn, describe_source, mode_name
from kbqa.webui.i18n import language, t
from kbqa.webui.models import ChatEvent, ServerConfig, Source
from kbqa.webui.widgets import download_button, plain, relevance_badge

CONVERSATION_KEY = "chat_conversation"
FILE_CHAT_KEY = "chat_file_kb"  # (temporary KB id, file names) of the files uploaded for file chat


@dataclass
class ChatOptions:
    mode: Mode
    model: str | None
    temperature: float
    history_len: int
    max_tokens: int | None
    kb: str | None = None
    knowledge_id: str | None = None
    top_k: int | None = None
    score_threshold: float | None = None
    target: str = ""


@dataclass
class _Answer:
    """Collects a stream's text for st.write_stream and keeps what comes with it (sources, message id)."""

    text: str = ""
    message_id: str | None = None
    sources: list[Source] = field(default_factory=list)

    def pieces(self, events: Iterator[ChatEvent]) -> Iterator[str]:
        for event in events:
            if event.message_id:
                self.message_id = event.message_id
            if event.sources is not None:
                self.sources = event.sources
            if event.text:
                self.text += event.text
                yield event.text


@st.cache_data(ttl=30, show_spinner=False)
def _models(_client: KBQAClient, base_url: str) -> list[str]:
    # Asking the controller on every rerun would slow each click when the LLM side is down; 30 s is fresh enough.
    try:
        return _client.running_models()
    except ApiClientError:
        return _client.config_models()


def _conversation() -> Conversation:
    if CONVERSATION_KEY not in st.session_state:
        st.session_state[CONVERSATION_KEY] = Conversation()
    return st.session_state[CONVERSATION_KEY]


def _relevance_to_threshold(relevance: float) -> float:
    # The API filters on Chatchat's distance 2 - 2*cosine (lower is better); relevance is the cosine, clipped.
    return round(2.0 - 2.0 * relevance, 4)


def _model_picker(ctx: UIContext, cfg: ServerConfig) -> str | None:
    try:
        models = _models(ctx.client, ctx.client.base_url)
    except ApiClientError as exc:
        st.caption(t("models_unavailable", error=exc.message))
        return None
    if not models:
        st.caption(t("no_llm_running"))
        return None
    default = cfg.llm_models[0] if cfg.llm_models else None
    index = models.index(default) if default in models else 0
    return st.selectbox(t("llm"), models, index=index, key="chat_model")


def _file_chat_upload(client: KBQAClient) -> tuple[str, list[str]] | None:
    uploaded = st.file_uploader(t("chat_files"), accept_multiple_files=True, key="chat_files")
    current: tuple[str, list[str]] | None = st.session_state.get(FILE_CHAT_KEY)
    if st.button(t("chat_upload"), disabled=not uploaded, icon=":material/upload:"):
        try:
            with st.spinner(t("chat_indexing")):
                result = client.upload_temp(
                    [(f.name, f.getvalue()) for f in uploaded or []], prev_id=current[0] if current else None
                )
        except ApiClientError as exc:
            st.error(exc.message)
        else:
            for failure in result.failed_files:
                st.error(t("not_usable", failure=failure))
            current = (result.id, [f.name for f in uploaded or []])
            st.session_state[FILE_CHAT_KEY] = current
    if current:
        st.caption(t("chatting_with", files=", ".join(current[1])))
    return current


def _sidebar(ctx: UIContext, cfg: ServerConfig, conversation: Conversation) -> ChatOptions:
    ui = ctx.settings.webui
    with st.sidebar:
        st.subheader(t("chat_settings"))
        lang = language()
        mode: Mode = st.radio(t("mode"), MODES, format_func=lambda m: mode_name(m, lang), key="chat_mode")
        model = _model_picker(ctx, cfg)
        options = ChatOptions(mode, model, cfg.temperature, ui.history_len, ui.max_tokens)
        if mode == "kb":
            try:
                names = [kb.name for kb in ctx.client.knowledge_bases()]
            except ApiClientError as exc:
                st.error(exc.message)
                names = []
            index = names.index(cfg.default_kb) if cfg.default_kb in names else 0
            options.kb = st.selectbox(t("knowledge_base"), names, index=index, key="chat_kb") if names else None
            options.target = options.kb or ""
            if not names:
                st.caption(t("no_kb_yet"))
        elif mode == "file":
            uploaded = _file_chat_upload(ctx.client)
            if uploaded:
                options.knowledge_id, options.target = uploaded[0], ", ".join(uploaded[1])
        if mode != "llm":
            options.top_k = st.slider(t("top_k"), 1, 20, cfg.top_k, key="chat_top_k")
            min_relevance = st.slider(
                t("min_relevance"),
                0.0,
                1.0,
                round(max(0.0, 1.0 - cfg.score_threshold / 2.0), 2),
                0.01,
                key="chat_min_relevance",
                help=t("min_relevance_help"),
            )
            options.score_threshold = _relevance_to_threshold(min_relevance)
        # Knowledge-base answers want the server's low KB default; the slider keeps one value per kind of chat.
        grounded = mode != "llm"
        options.temperature = st.slider(
            t("temperature"),
            0.0,
            2.0,
            cfg.kb_temperature if grounded else cfg.temperature,
            0.05,
            key="chat_temperature_kb" if grounded else "chat_temperature",
        )
        options.history_len = int(st.number_input(t("history_len"), 0, 20, ui.history_len, key="chat_history_len"))
        left, right = st.columns(2)
        if left.button(t("clear"), icon=":material/delete_sweep:", disabled=not conversation.turns, width="stretch"):
            st.session_state[CONVERSATION_KEY] = Conversation()
            st.rerun()
        right.download_button(
            t("export"),
            data=conversation.to_markdown(lang=lang),
            file_name="kbqa-conversation.md",
            mime="text/markdown",
            icon=":material/download:",
            disabled=not conversation.turns,
            on_click="ignore",
            width="stretch",
        )
    return options


def _show_sources(client: KBQAClient, turn: Turn) -> None:
    with st.expander(t("sources_count", count=len(turn.sources)), icon=":material/format_quote:"):
        for source in turn.sources:
            header, button = st.columns([5, 1], vertical_alignment="center")
            where = plain(describe_source(source, with_relevance=False, lang=language()))
            header.markdown(f"**[{source.index}]** {where} {relevance_badge(source.relevance)}")
            # File chat sources name a temporary KB that is not served for download.
            if source.url and source.knowledge_base_name:
                with button:
                    download_button(client, source.knowledge_base_name, source.file, f"dl_{turn.id}_{source.index}")
            st.caption(plain(source.text))


def _show_feedback(client: KBQAClient, turn: Turn) -> None:
    if turn.feedback_sent:
        st.caption(t("feedback_sent"))
        return
    thumbs, reason_col, send = st.columns([1, 6, 2], vertical_alignment="center")
    with thumbs:
        score = st.feedback("thumbs", key=f"fb_{turn.id}")
    reason = reason_col.text_input(
        t("reason"), key=f"fb_reason_{turn.id}", placeholder=t("reason_placeholder"), label_visibility="collapsed"
    )
    if send.button(t("send_feedback"), key=f"fb_send_{turn.id}", disabled=score is None):
        try:
            assert turn.message_id is not None
            # Chatchat's feedback score is 0-100: thumbs up is 100, thumbs down 0.
            client.feedback(turn.message_id, 100 if score == 1 else 0, reason)
        except ApiClientError as exc:
            st.error(exc.message)
        else:
            turn.feedback_sent = True
            st.rerun()


def _show_turn(client: KBQAClient, turn: Turn) -> None:
    with st.chat_message("user"):
        st.markdown(turn.question)
    with st.chat_message("assistant"):
        if turn.answer:
            st.markdown(turn.answer)
        if turn.error:
            st.error(turn.error)
        if turn.sources:
            _show_sources(client, turn)
        elif turn.mode != "llm" and not turn.error:
            st.caption(t("no_source"))
        if turn.message_id:
            _show_feedback(client, turn)


def _events(client: KBQAClient, options: ChatOptions, conversation: Conversation, query: str) -> Iterator[ChatEvent]:
    common = {
        "history": conversation.history(options.history_len),
        "model": options.model,
        "temperature": options.temperature,
        "max_tokens": options.max_tokens,
        "conversation_id": conversation.id,
    }
    if options.mode == "kb":
        assert options.kb is not None
        return client.kb_chat(query, options.kb, top_k=options.top_k, score_threshold=options.score_threshold, **common)
    if options.mode == "file":
        assert options.knowledge_id is not None
        return client.file_chat(
            query, options.knowledge_id, top_k=options.top_k, score_threshold=options.score_threshold, **common
        )
    return client.llm_chat(query, **common)


def _ask(client: KBQAClient, options: ChatOptions, conversation: Conversation, query: str) -> None:
    if options.mode == "kb" and not options.kb:
        st.warning(t("choose_kb_first"))
        return
    if options.mode == "file" and not options.knowledge_id:
        st.warning(t("upload_files_first"))
        return
    turn = Turn(query, options.mode, options.target)
    with st.chat_message("user"):
        st.markdown(query)
    with st.chat_message("assistant"):
        answer = _Answer()
        try:
            st.write_stream(answer.pieces(_events(client, options, conversation, query)))
        except ApiClientError as exc:
            turn.error = exc.message
    turn.answer, turn.sources, turn.message_id = answer.text, answer.sources, answer.message_id
    conversation.turns.append(turn)
    st.rerun()  # draw the new turn like the others: sources, feedback, export


def render(ctx: UIContext) -> None:
    st.title(t("page_chat"))
    ctx.require_server()
    conversation = _conversation()
    options = _sidebar(ctx, ctx.server_config(), conversation)
    if not conversation.turns:
        st.caption(t(f"intro_{options.mode}"))
    for turn in conversation.turns:
        _show_turn(ctx.client, turn)
    placeholder = {
        "kb": t("ask_kb", kb=options.kb or t("a_knowledge_base")),
        "llm": t("message_llm"),
        "file": t("ask_files"),
    }[options.mode]
    query = st.chat_input(placeholder)
    if query and query.strip():
        _ask(ctx.client, options, conversation, query.strip())
