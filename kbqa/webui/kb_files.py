"""The "Files" tab of the knowledge-base page: the file table, re-index or delete selected files, a file's chunks,
and rebuilding the whole vector store with progress."""

from __future__ import annotations

import streamlit as st

from kbqa.webui.api_client import ApiClientError, KBQAClient
from kbqa.webui.context import UIContext
from kbqa.webui.i18n import t
from kbqa.webui.models import KBFile, KeyRights, KnowledgeBase
from kbqa.webui.widgets import (
    download_button,
    location,
    resume_job,
    short_time,
    show_remembered_job,
    track_job,
)


def _size(n: int) -> str:
    if n < 1024:
        return f"{n} B"
    size = float(n)
    for unit in ("KB", "MB", "GB"):
        size /= 1024
        if size < 1024 or unit == "GB":
            break
    return f"{size:.1f} {unit}"


def _status(f: KBFile) -> str:
    if not f.in_db:
        return t("not_indexed")
    status = t(f"file_status_{f.status}") if f.status in ("ready", "error", "pending") else f.status
    return status if f.in_folder else t("file_missing", status=status)


def _table(files: list[KBFile]) -> None:
    rows = [
        {
            t("col_file"): f.path,
            t("col_chunks"): f.chunk_count,
            t("col_status"): _status(f),
            t("col_size"): _size(f.size),
            t("col_updated"): short_time(f.updated_at),
            t("col_error"): f.error,
            t("col_failed_at"): short_time(f.failed_at),
        }
        for f in files
    ]
    failed = sum(1 for f in files if f.status == "error")
    if failed:
        st.warning(t("files_failed", count=failed), icon=":material/error:")
    st.dataframe(rows, hide_index=True, width="stretch")


def _actions(ctx: UIContext, kb: str, paths: list[str]) -> None:
    client = ctx.client
    selected = st.multiselect(t("selected_files"), paths, key=f"kb_files_selected_{kb}", placeholder=t("choose_files"))
    row = st.container(horizontal=True, vertical_alignment="center")
    reindex = row.button(t("reindex"), icon=":material/refresh:", disabled=not selected, key=f"kb_reindex_{kb}")
    delete = row.button(t("delete"), icon=":material/delete:", disabled=not selected, key=f"kb_delete_files_{kb}")
    delete_content = row.checkbox(t("delete_from_disk"), key=f"kb_files_delete_content_{kb}")
    if reindex:
        try:
            accepted = client.reindex(kb, selected)
        except ApiClientError as exc:
            st.error(exc.message)
            return
        track_job(ctx, "files", kb, accepted.job_id, t("reindexing"), accepted.failed_files)
    if delete:
        try:
            failed = client.delete_files(kb, selected, delete_content=delete_content)
        except ApiClientError as exc:
            st.error(exc.message)
            return
        for name, reason in failed.items():
            st.error(f"**{name}**: {reason}")
        if not failed:
            st.session_state.pop(f"kb_files_selected_{kb}", None)
            st.toast(t("files_deleted", count=len(selected)), icon=":material/delete:")
            st.rerun()


def _chunks(client: KBQAClient, kb: str, paths: list[str]) -> None:
    path = st.selectbox(t("view_chunks"), paths, index=None, placeholder=t("choose_file"), key=f"kb_chunks_file_{kb}")
    if not path:
        return
    try:
        chunks = client.file_chunks(kb, path)
    except ApiClientError as exc:
        st.error(exc.message)
        return
    caption, button = st.columns([5, 1], vertical_alignment="center")
    caption.caption(t("chunks_in", count=len(chunks), path=path))
    with button:
        download_button(client, kb, path, f"kb_chunks_dl_{kb}")
    where, text = t("col_where"), t("col_text")
    rows = [{"#": c.ordinal, where: location(c.metadata), text: c.text} for c in chunks]
    columns = {
        "#": st.column_config.NumberColumn(width=50),
        where: st.column_config.TextColumn(width=140),
        text: st.column_config.TextColumn(width=900),
    }
    st.dataframe(rows, hide_index=True, width="stretch", column_config=columns)


def _rebuild(ctx: UIContext, kb: str) -> None:
    st.caption(t("rebuild_caption"))
    if not st.button(t("rebuild"), icon=":material/construction:", key=f"kb_rebuild_{kb}"):
        return
    try:
        accepted = ctx.client.rebuild(kb)
    except ApiClientError as exc:
        st.error(exc.message)
        return
    track_job(ctx, "files", kb, accepted.job_id, t("rebuilding"))


def render(ctx: UIContext, kb: KnowledgeBase, rights: KeyRights) -> None:
    show_remembered_job("files", kb.name)
    resume_job(ctx, "files", kb.name)
    try:
        files = ctx.client.files(kb.name)
    except ApiClientError as exc:
        st.error(exc.message)
        return
    if files:
        _table(files)
        paths = [f.path for f in files]
        if rights.can_write:
            _actions(ctx, kb.name, paths)
            st.divider()
        _chunks(ctx.client, kb.name, paths)
    else:
        st.info(t("no_files"))
    if rights.can_admin:
        st.divider()
        _rebuild(ctx, kb.name)
