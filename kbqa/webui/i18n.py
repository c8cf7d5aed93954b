"""The web UI's text in English and Simplified Chinese. Every user-visible string is here under an id; pages call
:func:`t`, which reads the browser session's language (set from ``webui.language``, changed in the sidebar).

Messages from the API server are shown as they come: they are the server's words, not the UI's."""

from __future__ import annotations

import string
from typing import Literal, get_args

import streamlit as st

Language = Literal["en", "zh"]
LANGUAGES: tuple[Language, ...] = get_args(Language)
LANGUAGE_NAMES: dict[Language, str] = {"en": "English", "zh": "简体中文"}
LANGUAGE_KEY = "kbqa_language"  # the sidebar selector's key, and the session's language

# id -> (English, Chinese). English is exactly what the UI showed before it was translated: tests and users'
# habits find widgets by these labels. Placeholders ({name}) must be the same in both.
STRINGS: dict[str, tuple[str, str]] = {
    # app.py: entry point, navigation and the API server box
    "language_label": ("Language / 语言", "Language / 语言"),
    "settings_error": ("The settings cannot be loaded: {error}", "无法加载配置：{error}"),
    "page_chat": ("Chat", "对话"),
    "page_kb": ("Knowledge bases", "知识库"),
    "api_server": ("API server", "API 服务器"),
    "api_address": ("Address", "地址"),
    "api_address_help": (
        "The kbqa API server this UI talks to (python -m kbqa.api).",
        "本界面所连接的 kbqa API 服务器（python -m kbqa.api）。",
    ),
    "api_key": ("API key", "API 密钥"),
    "api_key_help": ("Needed when the server sets api.api_keys.", "服务器设置了 api.api_keys 时需要填写。"),
    "not_connected": (":red[Not connected]", ":red[未连接]"),
    "connected": (":green[Connected] to {url}", ":green[已连接] {url}"),
    "open_entry_point": (
        "Open the web UI through its entry point: `streamlit run webui.py`.",
        "请通过入口启动 Web 界面：`streamlit run webui.py`。",
    ),
    # widgets.py: shared pieces
    "loc_page": ("page {value}", "第 {value} 页"),
    "loc_slide": ("slide {value}", "第 {value} 张幻灯片"),
    "loc_sheet": ("sheet {value}", "工作表 {value}"),
    "loc_row": ("row {value}", "第 {value} 行"),
    "relevance_badge": ("relevance {value:.2f}", "相关度 {value:.2f}"),
    "download": ("Download", "下载"),
    "job_waiting": ("{label}: waiting to start…", "{label}：等待开始…"),
    "job_progress": (
        "{label}: {finished} / {total} files ({status})",
        "{label}：{finished} / {total} 个文件（{status}）",
    ),
    "col_file": ("File", "文件"),
    "col_status": ("Status", "状态"),
    "col_chunks": ("Chunks", "分块数"),
    "col_error": ("Error", "错误"),
    "col_size": ("Size", "大小"),
    "col_updated": ("Updated", "更新时间"),
    "col_where": ("Where", "位置"),
    "col_text": ("Text", "内容"),
    "job_failed": ("The job failed: {error}", "任务失败：{error}"),
    "job_cancelled": ("The job was cancelled.", "任务已取消。"),
    "recent_jobs": ("Background jobs ({count})", "后台任务（{count}）"),
    "col_started": ("Started", "开始时间"),
    "col_job": ("Job", "任务"),
    "col_done": ("Files done", "已完成文件"),
    "job_status_queued": ("queued", "排队中"),
    "job_status_running": ("running", "运行中"),
    "job_status_succeeded": ("succeeded", "已完成"),
    "job_status_failed": ("failed", "失败"),
    "job_status_cancelled": ("cancelled", "已取消"),
    "job_status_interrupted": ("interrupted by a restart", "因重启而中断"),
    "job_interrupted": (
        "The API server stopped before this job finished. The files it had indexed are in the knowledge base; "
        "the others are listed as not indexed: select them and re-index.",
        "任务完成前 API 服务已停止。已索引的文件在知识库中；其余文件显示为未索引：选中后重新索引即可。",
    ),
    "job_done": (
        "Done: {added} added, {updated} updated, {skipped} unchanged, {failed} failed; {chunks} chunks.",
        "完成：新增 {added} 个，更新 {updated} 个，未变 {skipped} 个，失败 {failed} 个；共 {chunks} 个分块。",
    ),
    "cancel": ("Cancel", "取消"),
    # conversation.py and chat_page.py: the chat page
    "mode_kb": ("Knowledge base chat", "知识库问答"),
    "mode_llm": ("LLM chat", "LLM 对话"),
    "mode_file": ("File chat", "文件对话"),
    "models_unavailable": (":orange[LLM models unavailable: {error}]", ":orange[无法获取 LLM 模型：{error}]"),
    "no_llm_running": (
        ":orange[No LLM is running; answers will fail until one is started.]",
        ":orange[没有运行中的 LLM；启动一个之前无法回答。]",
    ),
    "llm": ("LLM", "LLM 模型"),
    "chat_files": ("Files to chat with", "对话所用的文件"),
    "chat_upload": ("Upload for file chat", "上传用于文件对话"),
    "chat_indexing": ("Reading and indexing the files…", "正在读取并索引文件…"),
    "not_usable": ("Not usable: {failure}", "无法使用：{failure}"),
    "chatting_with": ("Chatting with: {files}", "当前对话文件：{files}"),
    "chat_settings": ("Chat settings", "对话设置"),
    "mode": ("Mode", "对话模式"),
    "knowledge_base": ("Knowledge base", "知识库"),
    "no_kb_yet": (
        ":orange[No knowledge base yet: create one on the Knowledge bases page.]",
        ":orange[还没有知识库：请在“知识库”页面新建。]",
    ),
    "top_k": ("Chunks to retrieve (top_k)", "匹配知识条数（top_k）"),
    "min_relevance": ("Minimum relevance", "最低相关度"),
    "min_relevance_help": (
        "Chunks less relevant than this (cosine similarity, 0-1) are not used. It is sent as "
        "Chatchat's score_threshold = 2 - 2 × relevance.",
        "相关度（余弦相似度，0-1）低于此值的分块不会使用。发送给服务器的是 Chatchat 的 "
        "score_threshold = 2 - 2 × 相关度。",
    ),
    "temperature": ("Temperature", "Temperature（温度）"),
    "history_len": ("History (question/answer pairs)", "历史对话轮数（问答对）"),
    "clear": ("Clear", "清空"),
    "export": ("Export", "导出"),
    "sources_count": ("Sources ({count})", "来源（{count}）"),
    "feedback_sent": ("Feedback sent, thank you.", "反馈已发送，谢谢。"),
    "reason": ("Reason", "原因"),
    "reason_placeholder": ("Why? (optional)", "为什么？（可选）"),
    "send_feedback": ("Send feedback", "发送反馈"),
    "no_source": ("No source was relevant enough to cite.", "没有足够相关的来源可引用。"),
    "choose_kb_first": (
        "Choose a knowledge base in the sidebar first (or create one on the Knowledge bases page).",
        "请先在侧边栏选择知识库（或在“知识库”页面新建一个）。",
    ),
    "upload_files_first": ("Upload the files to chat with in the sidebar first.", "请先在侧边栏上传要对话的文件。"),
    "intro_kb": (
        "Ask a question about the chosen knowledge base; the answer cites its sources.",
        "针对所选知识库提问，回答会注明来源。",
    ),
    "intro_llm": ("Chat with the LLM directly (no retrieval).", "直接与 LLM 对话（不检索知识库）。"),
    "intro_file": ("Upload files in the sidebar, then ask about them.", "先在侧边栏上传文件，再针对文件提问。"),
    "ask_kb": ("Ask {kb}…", "向 {kb} 提问…"),
    "a_knowledge_base": ("a knowledge base", "知识库"),
    "message_llm": ("Message the LLM…", "给 LLM 发消息…"),
    "ask_files": ("Ask about the uploaded files…", "针对上传的文件提问…"),
    # conversation.py: the Markdown export
    "export_title": ("kbqa conversation ({stamp})", "kbqa 对话记录（{stamp}）"),
    "export_question": ("**Question:**", "**问题：**"),
    "export_error": ("**Error:**", "**错误：**"),
    "export_answer": ("**Answer:**", "**回答：**"),
    "export_no_answer": ("_(no answer)_", "_（无回答）_"),
    "export_sources": ("**Sources:**", "**来源：**"),
    "source_relevance": (" — relevance {value:.2f}", " — 相关度 {value:.2f}"),
    # kb_page.py: picking, creating, describing and deleting knowledge bases
    "new_kb": ("➕ New knowledge base…", "➕ 新建知识库…"),
    "create_kb": ("Create a knowledge base", "新建知识库"),
    "name": ("Name", "名称"),
    "name_placeholder": ("e.g. product_docs", "例如 product_docs"),
    "name_help": ("Letters, digits, '_', '-' and '.'.", "字母、数字、“_”、“-”和“.”。"),
    "description": ("Description", "简介"),
    "description_placeholder": (
        "What is in it (shown to users, used by agents)",
        "知识库内容简介（展示给用户，供 Agent 使用）",
    ),
    "vector_store": ("Vector store", "向量库类型"),
    "embed_model": ("Embedding model", "Embedding 模型"),
    "create": ("Create", "新建"),
    "name_required": ("Give the knowledge base a name.", "请填写知识库名称。"),
    "kb_created": ("Created knowledge base {name}", "已新建知识库 {name}"),
    "files": ("Files", "文件"),
    "chunks": ("Chunks", "分块"),
    "kb_index_info": (
        "**Vector store:** {vs_type}  \n**Embedding model:** {embed_model}",
        "**向量库类型：** {vs_type}  \n**Embedding 模型：** {embed_model}",
    ),
    "manage": ("Manage", "管理"),
    "save_description": ("Save description", "保存简介"),
    "delete_kb_sure": ("Delete {name} with all its files and chunks", "删除 {name} 及其全部文件和分块"),
    "delete_kb": ("Delete knowledge base", "删除知识库"),
    "kb_deleted": ("Deleted knowledge base {name}", "已删除知识库 {name}"),
    "tab_files": ("Files", "文件"),
    "tab_upload": ("Upload", "上传"),
    "tab_hit_testing": ("Hit testing", "命中测试"),
    # kb_files.py: the Files tab
    "not_indexed": ("not indexed: select it and Re-index", "未索引：选中后点击“重新索引”"),
    "file_missing": ("{status} (file missing)", "{status}（文件缺失）"),
    "file_status_ready": ("ready", "已索引"),
    "file_status_error": ("failed", "失败"),
    "file_status_pending": ("not indexed yet: select it and Re-index", "尚未索引：选中后点击“重新索引”"),
    "col_failed_at": ("Failed at", "失败时间"),
    "files_failed": (
        "{count} file(s) could not be indexed: the Error column says why. Unchanged files are not retried.",
        "{count} 个文件无法索引，原因见“错误”列；文件未改动时不会重试。",
    ),
    "selected_files": ("Selected files", "选中的文件"),
    "choose_files": ("Choose files", "选择文件"),
    "reindex": ("Re-index", "重新索引"),
    "delete": ("Delete", "删除"),
    "delete_from_disk": ("Also delete them from disk", "同时从磁盘删除"),
    "reindexing": ("Re-indexing", "重新索引"),
    "files_deleted": ("Deleted {count} file(s)", "已删除 {count} 个文件"),
    "view_chunks": ("View the chunks of", "查看分块："),
    "choose_file": ("Choose a file", "选择文件"),
    "chunks_in": ("{count} chunks in {path}", "{path} 共 {count} 个分块"),
    "rebuild_caption": (
        "Rebuild re-reads every file of the content folder and replaces the whole index.",
        "重建会重新读取内容目录中的所有文件，并替换整个索引。",
    ),
    "rebuild": ("Rebuild vector store", "重建向量库"),
    "rebuilding": ("Rebuilding", "重建向量库"),
    "no_files": ("No files yet: add some in the Upload tab.", "还没有文件：请在“上传”标签页添加。"),
    "no_kb_for_key": (
        "No knowledge base is open to this API key, and creating one needs an admin key.",
        "此 API key 无可用的知识库；创建知识库需要 admin 权限的 key。",
    ),
    # kb_upload.py: the Upload tab
    "upload_files": (
        "Files (PDF, Word, PowerPoint, Excel, Markdown, HTML, text, CSV, JSON, e-books, e-mails…)",
        "文件（PDF、Word、PowerPoint、Excel、Markdown、HTML、文本、CSV、JSON、电子书、邮件…）",
    ),
    "sub_folder": ("Into sub-folder (optional)", "存入子目录（可选）"),
    "sub_folder_placeholder": ("e.g. manuals/2024", "例如 manuals/2024"),
    "override": ("Replace files that already exist", "覆盖已有文件"),
    "splitting": ("Splitting", "文本分块"),
    "chunk_size": ("Chunk size (characters)", "单段文本最大长度（字符）"),
    "overlap": ("Overlap (characters)", "相邻文本重合长度（字符）"),
    "zh_title": ("Chinese title enhancement", "开启中文标题加强"),
    "upload_and_index": ("Upload and index", "上传并索引"),
    "indexing": ("Indexing", "索引"),
    # hit_testing.py: the Hit testing tab
    "nothing_relevant": (
        "Nothing is relevant enough: lower the minimum relevance or rephrase the query.",
        "没有足够相关的内容：请降低最低相关度或换个说法。",
    ),
    "chatchat_score": (
        "Chatchat score (distance, lower is better): {score:.3f}",
        "Chatchat 分数（距离，越低越好）：{score:.3f}",
    ),
    "query": ("Query", "查询"),
    "query_placeholder": ("A question a user might ask", "用户可能提出的问题"),
    "hit_top_k": ("Chunks (top_k)", "分块数（top_k）"),
    "search": ("Search", "搜索"),
}


def text(lang: str, key: str, **fmt: object) -> str:
    """``key``'s text in ``lang`` (English for an unknown language), formatted with ``fmt``. No Streamlit: the
    conversation export uses it too."""
    en, zh = STRINGS[key]
    template = zh if lang == "zh" else en
    return template.format(**fmt) if fmt else template


def language() -> Language:
    """The browser session's language; English before the entry point has set it (a page run on its own)."""
    lang = st.session_state.get(LANGUAGE_KEY, "en")
    return lang if lang in LANGUAGES else "en"


def t(key: str, **fmt: object) -> str:
    """``key``'s text in the session's language."""
    return text(language(), key, **fmt)


def placeholders(template: str) -> set[str]:
    """The names a template formats (``{count}`` -> ``count``), for checking that both languages agree."""
    return {name for _, name, _, _ in string.Formatter().parse(template) if name is not None}


def language_selector(default: Language) -> None:
    """The sidebar's language box; the session starts in ``webui.language``."""
    st.session_state.setdefault(LANGUAGE_KEY, default)
    st.sidebar.selectbox(t("language_label"), LANGUAGES, format_func=LANGUAGE_NAMES.__getitem__, key=LANGUAGE_KEY)
