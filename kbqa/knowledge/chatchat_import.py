"""Turn a Langchain-Chatchat 0.2 ``info.db`` into kbqa's schema, in place, after a backup copy.

Chatchat keeps its database where kbqa keeps its own (``knowledge_base/info.db``) under the same table names with other
columns. What moves: knowledge bases (name, description, vector store type, embedding model), their files (as
*pending*: their chunks lived only in Chatchat's pickled FAISS docstore, which is never unpickled: the content files are
indexed again), conversations, messages and their feedback (also the ``chat_history`` table of 0.2.7/0.2.8). What does
not: ``file_doc`` and ``summary_chunk`` (pointers into that docstore). Everything is read, the file is copied with
SQLite's backup API (which includes a WAL's pages), then the tables are replaced in one transaction: a crash leaves the
Chatchat database as it was, and the next start migrates again.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import quote

from sqlalchemy import Connection, create_engine, inspect, text

from kbqa.db import schema_version
from kbqa.db.models import Base, Conversation, KnowledgeBase, KnowledgeFile, Message
from kbqa.errors import KBQAError
from kbqa.knowledge.naming import normalize_relative_path, validate_kb_name

# Tables only Chatchat 0.2 had, dropped once their rows are moved; and what an earlier kbqa that failed on this
# database may have added to it (derived data only: nothing could be indexed into a database it could not read).
_CHATCHAT_ONLY = ("file_doc", "summary_chunk", "chat_history")
_REPLACED = ("knowledge_base", "knowledge_file", "conversation", "message")
_KBQA_LEFTOVERS = ("chunk", "job")

PENDING = "pending"

# Chatchat model name -> (kbqa model name, its vector dimension); raises KBQAError when kbqa cannot load it.
ModelChoice = Callable[[str], tuple[str, int]]


@dataclass(slots=True)
class ImportReport:
    backup: Path
    kbs: list[str] = field(default_factory=list)
    files: int = 0
    conversations: int = 0
    messages: int = 0
    feedback: int = 0
    models: dict[str, str] = field(default_factory=dict)  # Chatchat model -> the kbqa model used instead
    vs_types: dict[str, str] = field(default_factory=dict)
    skipped: list[str] = field(default_factory=list)
    old_indexes: int = 0  # Chatchat's vector_store/<model> folders found beside the moved knowledge bases

    def line(self) -> str:
        parts = [
            f"{len(self.kbs)} knowledge base(s) ({', '.join(self.kbs) or '-'})",
            f"{self.files} file(s) to index",
            f"{self.conversations} conversation(s)",
            f"{self.messages} message(s), {self.feedback} with feedback",
        ]
        text_ = f"Migrated the Langchain-Chatchat 0.2 database (backup: {self.backup}): " + ", ".join(parts)
        for old, new in sorted(self.models.items()):
            text_ += f"; embedding model {old} is not available in kbqa, {new} is used instead"
        for old, new in sorted(self.vs_types.items()):
            text_ += f"; vector store {old} is not available in kbqa, {new} is used instead"
        if self.skipped:
            text_ += f"; not moved: {', '.join(self.skipped)}"
        if self.old_indexes:
            text_ += (
                f"; {self.old_indexes} old Chatchat index folder(s) kept in vector_store/ "
                "(--prune-old-vector-stores removes them)"
            )
        return text_ + "."


def backup_path(db_path: Path, now: datetime | None = None) -> Path:
    stamp = (now or datetime.now(UTC)).strftime("%Y%m%d-%H%M%S")
    candidate = db_path.with_name(f"{db_path.stem}.chatchat-backup-{stamp}{db_path.suffix}")
    n = 1
    while candidate.exists():
        n += 1
        candidate = db_path.with_name(f"{db_path.stem}.chatchat-backup-{stamp}-{n}{db_path.suffix}")
    return candidate


def migrate(url: str, choose_model: ModelChoice, vs_types: Sequence[str], default_vs_type: str) -> ImportReport | None:
    """Migrate the Chatchat database at ``url``; None when it is no longer one (another process migrated it)."""
    path = schema_version.sqlite_path(url)
    if path is None:
        raise schema_version.DatabaseSchemaError(
            "This is a Langchain-Chatchat 0.2 database, and kbqa migrates only SQLite ones: copy its data into a "
            "SQLite info.db first, or point paths.database_url at another database. Nothing was changed."
        )
    engine = create_engine(
        "sqlite://",
        creator=lambda: sqlite3.connect(str(path), isolation_level=None, check_same_thread=False, timeout=30),
        json_serializer=lambda v: json.dumps(v, ensure_ascii=False),
    )
    try:
        with engine.connect() as raw:
            # Explicit BEGIN/COMMIT: pysqlite would otherwise commit each DDL statement on its own.
            conn = raw.execution_options(isolation_level="AUTOCOMMIT")
            conn.exec_driver_sql("BEGIN IMMEDIATE")
            try:
                report = _migrate_locked(conn, path, choose_model, vs_types, default_vs_type)
            except BaseException:
                conn.exec_driver_sql("ROLLBACK")
                raise
            conn.exec_driver_sql("COMMIT" if report is not None else "ROLLBACK")
            return report
    finally:
        engine.dispose()


def _migrate_locked(
    conn: Connection, path: Path, choose_model: ModelChoice, vs_types: Sequence[str], default_vs_type: str
) -> ImportReport | None:
    if schema_version.classify(conn).kind is not schema_version.Kind.CHATCHAT:
        return None
    tables = set(inspect(conn).get_table_names())
    rows = {t: _rows(conn, t) for t in (*_REPLACED, "chat_history") if t in tables}
    report = ImportReport(backup=backup_path(path))
    _backup(path, report.backup)

    kbs = _knowledge_bases(rows.get("knowledge_base", []), choose_model, vs_types, default_vs_type, report)
    files = _files(rows.get("knowledge_file", []), kbs, report)
    conversations = [_conversation(r) for r in rows.get("conversation", []) if r.get("id")]
    messages = [_message(r) for r in [*rows.get("chat_history", []), *rows.get("message", [])] if r.get("id")]
    messages = list({m["id"]: m for m in messages}.values())

    for name in (*_CHATCHAT_ONLY, *_REPLACED, *_KBQA_LEFTOVERS):
        if name in tables:
            conn.exec_driver_sql(f'DROP TABLE "{name}"')
    for name in tables:
        if name.startswith("chunk_fts"):
            conn.exec_driver_sql(f'DROP TABLE IF EXISTS "{name}"')
    Base.metadata.create_all(conn)

    kb_ids: dict[str, int] = {}
    for kb in kbs.values():
        kb_ids[kb["name"]] = int(conn.execute(KnowledgeBase.__table__.insert().values(**kb)).inserted_primary_key[0])
    for file in files:
        file["kb_id"] = kb_ids[file.pop("kb_name")]
    if files:
        conn.execute(KnowledgeFile.__table__.insert(), files)
    if conversations:
        conn.execute(Conversation.__table__.insert(), list({c["id"]: c for c in conversations}.values()))
    if messages:
        conn.execute(Message.__table__.insert(), messages)
    schema_version.stamp(conn)

    report.kbs = sorted(kbs)
    report.files = len(files)
    report.conversations = len({c["id"] for c in conversations})
    report.messages = len(messages)
    report.feedback = sum(1 for m in messages if m["feedback_score"] != -1)
    return report


def _rows(conn: Connection, table: str) -> list[dict[str, Any]]:
    return [dict(r) for r in conn.execute(text(f'SELECT * FROM "{table}"')).mappings()]


def _backup(path: Path, target: Path) -> None:
    source = sqlite3.connect(f"file:{quote(str(path.resolve()))}?mode=ro", uri=True)
    try:
        copy = sqlite3.connect(str(target))
        try:
            source.backup(copy)
        finally:
            copy.close()
    finally:
        source.close()


def _time(value: Any) -> datetime:
    """Chatchat stored naive UTC (``datetime.utcnow`` / SQLite ``CURRENT_TIMESTAMP``)."""
    if isinstance(value, datetime):
        parsed = value
    else:
        try:
            parsed = datetime.fromisoformat(str(value))
        except ValueError:
            return datetime.now(UTC)
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


def _knowledge_bases(
    rows: list[dict[str, Any]],
    choose_model: ModelChoice,
    vs_types: Sequence[str],
    default_vs_type: str,
    report: ImportReport,
) -> dict[str, dict[str, Any]]:
    kbs: dict[str, dict[str, Any]] = {}
    chosen: dict[str, tuple[str, int]] = {}
    for row in sorted(rows, key=lambda r: r.get("id") or 0):
        try:
            name = validate_kb_name(row.get("kb_name"))
        except KBQAError:
            report.skipped.append(f"knowledge base {row.get('kb_name')!r} (a name kbqa does not allow)")
            continue
        if name in kbs:
            continue
        old_model = str(row.get("embed_model") or "")
        if old_model not in chosen:
            chosen[old_model] = _choose(choose_model, old_model)
        model, dim = chosen[old_model]
        if model != old_model and old_model:
            report.models[old_model] = model
        vs_type = str(row.get("vs_type") or "").lower()
        if vs_type not in vs_types:
            if vs_type:
                report.vs_types[vs_type] = default_vs_type
            vs_type = default_vs_type
        created = _time(row.get("create_time"))
        kbs[name] = {
            "name": name,
            "info": str(row.get("kb_info") or ""),
            "vs_type": vs_type,
            "embed_model": model,
            "embed_dim": dim,
            "generation": 0,
            "created_at": created,
            "updated_at": created,
        }
    return kbs


def _choose(choose_model: ModelChoice, old_model: str) -> tuple[str, int]:
    try:
        return choose_model(old_model)
    except KBQAError:
        return choose_model("")


def _files(rows: list[dict[str, Any]], kbs: Mapping[str, Any], report: ImportReport) -> list[dict[str, Any]]:
    files: dict[tuple[str, str], dict[str, Any]] = {}
    for row in sorted(rows, key=lambda r: r.get("id") or 0):
        kb_name = row.get("kb_name")
        if kb_name not in kbs:
            continue
        try:
            rel = normalize_relative_path(str(row.get("file_name") or ""))
        except KBQAError:
            report.skipped.append(f"file {row.get('file_name')!r} of {kb_name} (an unsafe path)")
            continue
        created = _time(row.get("create_time"))
        files[(kb_name, rel)] = {
            "kb_name": kb_name,
            "path": rel,
            "ext": str(row.get("file_ext") or Path(rel).suffix).lower()[:16],
            "size": int(row.get("file_size") or 0),
            "mtime": float(row.get("file_mtime") or 0.0),
            "sha256": "",
            "loader": str(row.get("document_loader_name") or ""),
            "splitter": str(row.get("text_splitter_name") or ""),
            "chunk_size": 0,
            "chunk_overlap": 0,
            "zh_title_enhance": False,
            "custom_docs": bool(row.get("custom_docs") or False),
            "chunk_count": 0,
            "version": int(row.get("file_version") or 1),
            "status": PENDING,
            "error": "",
            "created_at": created,
            "updated_at": created,
        }
    return list(files.values())


def _conversation(row: dict[str, Any]) -> dict[str, Any]:
    return {
        "id": str(row["id"]),
        "name": str(row.get("name") or ""),
        "chat_type": str(row.get("chat_type") or "llm_chat"),
        "created_at": _time(row.get("create_time")),
    }


def _message(row: dict[str, Any]) -> dict[str, Any]:
    score = row.get("feedback_score")
    return {
        "id": str(row["id"]),
        "conversation_id": str(row.get("conversation_id") or ""),
        "chat_type": str(row.get("chat_type") or "llm_chat"),
        "query": str(row.get("query") or ""),
        "response": str(row.get("response") or ""),
        "meta": _meta(row.get("meta_data")),
        "feedback_score": -1 if score is None else int(score),
        "feedback_reason": str(row.get("feedback_reason") or ""),
        "created_at": _time(row.get("create_time")),
    }


def _meta(value: Any) -> dict[str, Any]:
    if isinstance(value, dict):
        return value
    if value in (None, ""):
        return {}
    try:
        parsed = json.loads(value)
    except (TypeError, ValueError):
        return {"chatchat_meta_data": str(value)}
    return parsed if isinstance(parsed, dict) else {"chatchat_meta_data": parsed}
