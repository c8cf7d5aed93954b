"""The knowledge-base page: pick, create, describe and delete knowledge bases; the chosen one's files, uploads and
hit testing are in tabs (kb_files.py, kb_upload.py, hit_testing.py)."""

from __future__ import annotations

from datetime import datetime

import streamlit as st
from streamlit.delta_generator import DeltaGenerator

from kbqa.webui import hit_testing, kb_files, kb_upload
from kbqa.webui.api_client import ApiClientError, KBQAClient
from kbqa.webui.context import UIContext
from kbqa.webui.i18n import STRINGS, t
from kbqa.webui.models import KeyRights, KnowledgeBase, ServerConfig

JOBS_SHOWN = 20
SELECTED_KEY = "kb_selected"
PENDING_KEY = "kb_select_next"  # a widget's value cannot be set after it is drawn: the next run applies it
NEW = "\u0000new"  # the "create" entry of the picker; no knowledge base name can hold a NUL


def _picker(kbs: list[KnowledgeBase], can_create: bool) -> KnowledgeBase | None:
    by_name = {kb.name: kb for kb in kbs}
    options = [*by_name, NEW] if can_create else list(by_name)
    if PENDING_KEY in st.session_state:
        st.session_state[SELECTED_KEY] = st.session_state.pop(PENDING_KEY)
    if st.session_state.get(SELECTED_KEY) not in options:  # deleted, or never chosen
        st.session_state.pop(SELECTED_KEY, None)

    new_label = t("new_kb")  # read now: a format_func may be called outside the script run (AppTest does)

    def label(name: str) -> str:
        # Names only: the frontend keeps an option's first label, so counts here would go stale.
        return new_label if name == NEW else name

    name = st.selectbox(t("knowledge_base"), options, format_func=label, key=SELECTED_KEY)
    return by_name.get(name)


def _create_form(client: KBQAClient, cfg: ServerConfig) -> None:
    st.subheader(t("create_kb"))
    with st.form("kb_create"):
        name = st.text_input(t("name"), placeholder=t("name_placeholder"), help=t("name_help"))
        info = st.text_area(t("description"), placeholder=t("description_placeholder"))
        left, right = st.columns(2)
        vs_types = cfg.vs_types or [cfg.default_vs_type]
        vs_type = left.selectbox(t("vector_store"), vs_types, index=_index(vs_types, cfg.default_vs_type))
        models = cfg.embed_models or [cfg.embed_model]
        embed_model = right.selectbox(t("embed_model"), models, index=_index(models, cfg.embed_model))
        submitted = st.form_submit_button(t("create"), type="primary", icon=":material/add:")
    if not submitted:
        return
    if not name.strip():
        st.error(t("name_required"))
        return
    try:
        client.create_knowledge_base(name.strip(), info=info.strip(), vs_type=vs_type, embed_model=embed_model)
    except ApiClientError as exc:
        st.error(exc.message)
        return
    st.session_state[PENDING_KEY] = name.strip()
    st.toast(t("kb_created", name=name.strip()), icon=":material/check:")
    st.rerun()


def _index(options: list[str], value: str) -> int:
    return options.index(value) if value in options else 0


def _overview(client: KBQAClient, kb: KnowledgeBase, rights: KeyRights) -> None:
    if kb.info:
        st.caption(kb.info)
    files, chunks, index = st.columns([1, 1, 2], vertical_alignment="center")
    files.metric(t("files"), kb.file_count)
    chunks.metric(t("chunks"), kb.chunk_count)
    # Text, not metrics: a model name is too long for a metric's large font.
    index.markdown(t("kb_index_info", vs_type=kb.vs_type, embed_model=kb.embed_model))
    if not rights.can_admin:  # describing and deleting a knowledge base need an admin key
        return
    with st.expander(t("manage"), icon=":material/settings:"):
        info = st.text_area(t("description"), value=kb.info, key=f"kb_info_{kb.name}")
        if st.button(t("save_description"), disabled=info == kb.info, key=f"kb_info_save_{kb.name}"):
            try:
                client.update_info(kb.name, info)
            except ApiClientError as exc:
                st.error(exc.message)
            else:
                st.rerun()
        st.divider()
        sure = st.checkbox(t("delete_kb_sure", name=kb.name), key=f"kb_delete_sure_{kb.name}", value=False)
        if st.button(t("delete_kb"), type="primary", disabled=not sure, key=f"kb_delete_{kb.name}"):
            try:
                client.delete_knowledge_base(kb.name)
            except ApiClientError as exc:
                st.error(exc.message)
            else:
                st.toast(t("kb_deleted", name=kb.name), icon=":material/delete:")
                st.rerun()


def _jobs(client: KBQAClient, kb: KnowledgeBase, slot: DeltaGenerator) -> None:
    """This KB's recent background jobs, in ``slot``. Their records outlive an API restart, so an upload a restart
    cut off is listed here as interrupted, with what to do, even in a new browser session."""
    try:
        jobs = [j for j in client.jobs() if j.knowledge_base_name == kb.name][:JOBS_SHOWN]
    except ApiClientError as exc:
        slot.error(exc.message)
        return
    if not jobs:
        return
    with slot.expander(t("recent_jobs", count=len(jobs)), icon=":material/history:"):
        rows = [
            {
                t("col_started"): datetime.fromtimestamp(j.created_at).strftime("%Y-%m-%d %H:%M:%S")
                if j.created_at
                else "",
                t("col_job"): j.kind,
                t("col_status"): t(f"job_status_{j.status}") if f"job_status_{j.status}" in STRINGS else j.status,
                t("col_done"): f"{j.finished}/{j.total}",
                t("col_error"): j.error or "",
            }
            for j in jobs
        ]
        # a static table: the interactive dataframes below keep their places on the page
        st.table(rows)


def render(ctx: UIContext) -> None:
    st.title(t("page_kb"))
    ctx.require_server()
    client = ctx.client
    cfg = ctx.server_config()
    try:
        kbs = client.knowledge_bases()
    except ApiClientError as exc:
        st.error(exc.message)
        return
    rights = ctx.rights()
    kb = _picker(kbs, rights.can_admin)
    if kb is None:
        if rights.can_admin:
            _create_form(client, cfg)
        else:
            st.info(t("no_kb_for_key"))
        return
    _overview(client, kb, rights)
    # Always a container here, jobs or not: Streamlit keeps the selected tab only while the tabs stay at the same
    # place in the page, and the first job appearing would otherwise move them (back to the Files tab mid-upload).
    _jobs(client, kb, st.container())
    if not rights.can_write:  # a read key: no upload tab at all
        files_tab, search_tab = st.tabs([t("tab_files"), t("tab_hit_testing")])
    else:
        files_tab, upload_tab, search_tab = st.tabs([t("tab_files"), t("tab_upload"), t("tab_hit_testing")])
        with upload_tab:
            kb_upload.render(ctx, kb, cfg)
    with files_tab:
        kb_files.render(ctx, kb, rights)
    with search_tab:
        hit_testing.render(ctx, kb, cfg)
