"""Pieces the pages share: where a chunk comes from, a file's download button, and a background job's progress."""

from __future__ import annotations

import functools
import re
from datetime import datetime
from typing import Any

import streamlit as st

from kbqa.webui.api_client import ApiClientError, KBQAClient
from kbqa.webui.context import UIContext
from kbqa.webui.i18n import t
from kbqa.webui.models import Job

LOCATION_KEYS = ("page", "slide", "sheet", "row", "heading")
_MARKDOWN_PUNCTUATION = re.compile(r"([!-/:-@\[-`{-~])")  # every ASCII punctuation character


def plain(text: str) -> str:
    """Markdown that shows ``text`` as it is: a chunk's ``# heading`` or ``:red[x]`` must not be rendered.
    CommonMark lets any ASCII punctuation be backslash-escaped; line ends become hard breaks."""
    return _MARKDOWN_PUNCTUATION.sub(r"\\\1", text).replace("\n", "  \n")


def location(metadata: dict[str, Any]) -> str:
    """``page 3 · "Install"`` from a chunk's metadata (empty when it has none of these)."""
    parts = []
    for key in LOCATION_KEYS:
        value = metadata.get(key)
        if value not in (None, ""):
            parts.append(f'"{value}"' if key == "heading" else t(f"loc_{key}", value=value))
    return " · ".join(parts)


def relevance_badge(relevance: float | None) -> str:
    if relevance is None:
        return ""
    color = "green" if relevance >= 0.75 else "orange" if relevance >= 0.5 else "red"
    return f":{color}-badge[{t('relevance_badge', value=relevance)}]"


def download_button(client: KBQAClient, kb: str, path: str, key: str) -> None:
    """Fetched through the API client only when clicked: the browser may not reach the API server itself, and a
    plain link would not carry the API key."""
    st.download_button(
        t("download"),
        data=functools.partial(client.download, kb, path),
        file_name=path.rsplit("/", 1)[-1],
        key=key,
        icon=":material/download:",
        on_click="ignore",
        type="tertiary",
    )


def short_time(value: datetime | None) -> str:
    return value.astimezone().strftime("%Y-%m-%d %H:%M") if value else ""


def follow_job(client: KBQAClient, job_id: str, interval_s: float, label: str) -> Job | None:
    """Show a job's progress (bar and per-file table) until it finishes; the finished job, or None on error."""
    bar = st.progress(0.0, text=t("job_waiting", label=label))
    table = st.empty()
    job: Job | None = None
    try:
        for job in client.follow_job(job_id, interval_s):
            done = job.finished / job.total if job.total else (1.0 if job.done else 0.0)
            text = t("job_progress", label=label, finished=job.finished, total=job.total or "?", status=job.status)
            bar.progress(min(1.0, done), text=text)
            if job.files:
                rows = [
                    {
                        t("col_file"): name,
                        t("col_status"): p.status,
                        t("col_chunks"): p.chunks,
                        t("col_error"): p.error or "",
                    }
                    for name, p in job.files.items()
                ]
                table.dataframe(rows, hide_index=True, width="stretch")
    except ApiClientError as exc:
        st.error(exc.message)
        return None
    return job


def job_summary(job: Job, refused: dict[str, str] | None = None) -> None:
    """What a finished ingestion job did, and every file that failed with its reason."""
    result = job.result or {}
    failed = {**(refused or {}), **job.failed_files}
    if job.status == "failed":
        st.error(t("job_failed", error=job.error))
    elif job.status == "cancelled":
        st.warning(t("job_cancelled"))
    elif job.status == "interrupted":
        st.warning(t("job_interrupted"))
    else:
        added, updated = len(result.get("added") or []), len(result.get("updated") or [])
        skipped = len(result.get("skipped") or [])
        st.success(
            t(
                "job_done",
                added=added,
                updated=updated,
                skipped=skipped,
                failed=len(failed),
                chunks=result.get("chunks", 0),
            )
        )
    for name, reason in failed.items():
        st.error(f"**{name}**: {reason}")


_LAST_JOB_KEY = "kb_last_job"


def remember_job(where: str, kb: str, job: Job, refused: dict[str, str] | None = None) -> None:
    """Keep a finished job's report for the next run: the page reruns to refresh its tables and shows it then."""
    st.session_state[_LAST_JOB_KEY] = (where, kb, job, refused or {})


def show_remembered_job(where: str, kb: str) -> None:
    remembered = st.session_state.get(_LAST_JOB_KEY)
    if remembered and remembered[0] == where and remembered[1] == kb:
        del st.session_state[_LAST_JOB_KEY]
        job_summary(remembered[2], remembered[3])


_RUNNING_JOB_KEY = "kb_running_job"


def track_job(
    ctx: UIContext, where: str, kb: str, job_id: str, label: str, refused: dict[str, str] | None = None
) -> None:
    """Follow a background job to its end under a Cancel button, then rerun the page with its report.

    Any click reruns a Streamlit page and ends the loop that shows the progress; the job is kept in the session so
    :func:`resume_job` picks it up again on that next run, where the Cancel button's click is seen."""
    st.session_state[_RUNNING_JOB_KEY] = (where, kb, job_id, label, refused or {})
    _follow_running(ctx)


def resume_job(ctx: UIContext, where: str, kb: str) -> None:
    running = st.session_state.get(_RUNNING_JOB_KEY)
    if running and running[0] == where and running[1] == kb:
        _follow_running(ctx)


def _follow_running(ctx: UIContext) -> None:
    where, kb, job_id, label, refused = st.session_state[_RUNNING_JOB_KEY]
    if st.button(t("cancel"), key=f"job_cancel_{job_id}", icon=":material/cancel:"):
        try:
            ctx.client.cancel_job(job_id)
        except ApiClientError as exc:
            st.error(exc.message)
    job = follow_job(ctx.client, job_id, ctx.settings.webui.poll_interval_s, label)
    st.session_state.pop(_RUNNING_JOB_KEY, None)
    if job is not None:
        remember_job(where, kb, job, refused)
        st.rerun()
