"""The "Upload" tab of the knowledge-base page: several files at once, indexed by a background job whose per-file
progress and errors are shown while it runs."""

from __future__ import annotations

import streamlit as st

from kbqa.webui.api_client import ApiClientError
from kbqa.webui.context import UIContext
from kbqa.webui.i18n import t
from kbqa.webui.models import KnowledgeBase, ServerConfig
from kbqa.webui.widgets import resume_job, show_remembered_job, track_job

_ROUND_KEY = "kb_upload_round"  # bumped after an upload so the uploader starts empty again


def render(ctx: UIContext, kb: KnowledgeBase, cfg: ServerConfig) -> None:
    show_remembered_job("upload", kb.name)
    resume_job(ctx, "upload", kb.name)
    upload_round = st.session_state.get(_ROUND_KEY, 0)
    uploaded = st.file_uploader(
        t("upload_files"),
        accept_multiple_files=True,
        key=f"kb_uploader_{kb.name}_{upload_round}",
    )
    folder = st.text_input(t("sub_folder"), key=f"kb_upload_folder_{kb.name}", placeholder=t("sub_folder_placeholder"))
    override = st.checkbox(t("override"), key=f"kb_upload_override_{kb.name}")
    with st.expander(t("splitting"), icon=":material/content_cut:"):
        size_col, overlap_col = st.columns(2)
        chunk_size = size_col.number_input(t("chunk_size"), 50, 10_000, cfg.chunk_size, key="kb_chunk_size")
        overlap = overlap_col.number_input(t("overlap"), 0, 5_000, cfg.chunk_overlap, key="kb_overlap")
        zh_title = st.checkbox(t("zh_title"), value=cfg.zh_title_enhance, key="kb_zh_title")
    if not st.button(t("upload_and_index"), type="primary", icon=":material/upload:", disabled=not uploaded):
        return
    prefix = folder.strip().strip("/")
    files = [(f"{prefix}/{f.name}" if prefix else f.name, f.getvalue()) for f in uploaded or []]
    try:
        accepted = ctx.client.upload(
            kb.name,
            files,
            override=override,
            chunk_size=int(chunk_size),
            chunk_overlap=int(overlap),
            zh_title_enhance=zh_title,
        )
    except ApiClientError as exc:
        st.error(exc.message)
        return
    st.session_state[_ROUND_KEY] = upload_round + 1  # the files are on the server: a fresh uploader next run
    track_job(ctx, "upload", kb.name, accepted.job_id, t("indexing"), accepted.failed_files)
