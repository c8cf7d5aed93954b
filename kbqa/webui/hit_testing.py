"""The "Hit testing" tab of the knowledge-base page: run a query through retrieval alone and see the ranked chunks
with their relevance, to tune top_k and the threshold before asking the LLM."""

from __future__ import annotations

import streamlit as st

from kbqa.webui.api_client import ApiClientError
from kbqa.webui.context import UIContext
from kbqa.webui.i18n import t
from kbqa.webui.models import Chunk, KnowledgeBase, ServerConfig
from kbqa.webui.widgets import location, plain, relevance_badge


def _show(hits: list[Chunk]) -> None:
    if not hits:
        st.info(t("nothing_relevant"))
        return
    for rank, hit in enumerate(hits, start=1):
        with st.container(border=True):
            where = location(hit.metadata)
            title = plain(f"{hit.file} · {where}" if where else hit.file)
            st.markdown(f"**#{rank}** · {title} {relevance_badge(hit.relevance)}")
            if hit.relevance is not None:
                st.progress(min(1.0, max(0.0, hit.relevance)))
            st.markdown(plain(hit.text))
            if hit.score is not None:
                st.caption(t("chatchat_score", score=hit.score))


def render(ctx: UIContext, kb: KnowledgeBase, cfg: ServerConfig) -> None:
    results_key = f"kb_hits_{kb.name}"
    with st.form(f"kb_hit_testing_{kb.name}"):
        query = st.text_input(t("query"), placeholder=t("query_placeholder"))
        k_col, relevance_col = st.columns(2)
        top_k = k_col.number_input(t("hit_top_k"), 1, 50, cfg.top_k)
        min_relevance = relevance_col.slider(
            t("min_relevance"), 0.0, 1.0, round(max(0.0, 1.0 - cfg.score_threshold / 2.0), 2), 0.01
        )
        submitted = st.form_submit_button(t("search"), icon=":material/search:")
    if submitted and query.strip():
        try:
            # The API filters on Chatchat's distance 2 - 2*relevance (lower is better).
            hits = ctx.client.search(
                kb.name, query.strip(), top_k=int(top_k), score_threshold=round(2.0 - 2.0 * min_relevance, 4)
            )
        except ApiClientError as exc:
            st.error(exc.message)
            return
        st.session_state[results_key] = hits
    if results_key in st.session_state:
        _show(st.session_state[results_key])
