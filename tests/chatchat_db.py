"""A Langchain-Chatchat 0.2.10 ``info.db`` written the way that version lays it out (tables and columns of its
server/db/models/*.py), with our own rows, for the migration tests."""

from __future__ import annotations

import json
import pickle
import sqlite3
from pathlib import Path

# The DDL SQLAlchemy emits for Chatchat 0.2.10's models on SQLite.
CHATCHAT_0_2_10_DDL = """
CREATE TABLE knowledge_base (
    id INTEGER NOT NULL PRIMARY KEY, kb_name VARCHAR(50), kb_info VARCHAR(200), vs_type VARCHAR(50),
    embed_model VARCHAR(50), file_count INTEGER, create_time DATETIME);
CREATE TABLE knowledge_file (
    id INTEGER NOT NULL PRIMARY KEY, file_name VARCHAR(255), file_ext VARCHAR(10), kb_name VARCHAR(50),
    document_loader_name VARCHAR(50), text_splitter_name VARCHAR(50), file_version INTEGER, file_mtime FLOAT,
    file_size INTEGER, custom_docs BOOLEAN, docs_count INTEGER, create_time DATETIME);
CREATE TABLE file_doc (
    id INTEGER NOT NULL PRIMARY KEY, kb_name VARCHAR(50), file_name VARCHAR(255), doc_id VARCHAR(50), meta_data JSON);
CREATE TABLE summary_chunk (
    id INTEGER NOT NULL PRIMARY KEY, kb_name VARCHAR(50), summary_context VARCHAR(255), summary_id VARCHAR(255),
    doc_ids VARCHAR(1024), meta_data JSON);
CREATE TABLE conversation (
    id VARCHAR(32) NOT NULL PRIMARY KEY, name VARCHAR(50), chat_type VARCHAR(50), create_time DATETIME);
CREATE TABLE message (
    id VARCHAR(32) NOT NULL PRIMARY KEY, conversation_id VARCHAR(32), chat_type VARCHAR(50), query VARCHAR(4096),
    response VARCHAR(4096), meta_data JSON, feedback_score INTEGER, feedback_reason VARCHAR(255),
    create_time DATETIME);
CREATE INDEX ix_message_conversation_id ON message (conversation_id);
"""

KB = "notes"
CHATCHAT_MODEL = "bge-large-zh-v1.5"
CONVERSATION = "c0ffee0000000000000000000000beef"
MESSAGES = (
    ("m1000000000000000000000000000001", "Which port does the API use?", "Port 7861.", 5, "exact"),
    ("m1000000000000000000000000000002", "And the web UI?", "Port 8501.", -1, ""),
)
FILES = {
    "ports.md": "# Ports\n\nThe API server listens on port 7861. The web UI listens on port 8501.\n",
    "guide/backup.txt": "Backups of the knowledge base run nightly at 02:00 and are kept for thirty days.\n",
}


class _Unpickled:
    """Writes a marker file when unpickled: Chatchat's index.pkl must never be loaded."""

    def __init__(self, marker: Path) -> None:
        self.marker = str(marker)

    def __reduce__(self) -> tuple[object, tuple[str, str]]:
        return (open, (self.marker, "w"))


def build(kb_root: Path, marker: Path) -> Path:
    """``kb_root/info.db`` as Chatchat 0.2.10 leaves it, beside ``notes/content`` and ``notes/vector_store/<model>``."""
    kb_root.mkdir(parents=True, exist_ok=True)
    content = kb_root / KB / "content"
    for rel, text in FILES.items():
        (content / rel).parent.mkdir(parents=True, exist_ok=True)
        (content / rel).write_text(text, encoding="utf-8")
    old_index = kb_root / KB / "vector_store" / CHATCHAT_MODEL
    old_index.mkdir(parents=True)
    (old_index / "index.faiss").write_bytes(b"\x00" * 64)
    (old_index / "index.pkl").write_bytes(pickle.dumps(_Unpickled(marker)))

    db = kb_root / "info.db"
    conn = sqlite3.connect(db)
    with conn:
        conn.executescript(CHATCHAT_0_2_10_DDL)
        conn.execute(
            "INSERT INTO knowledge_base VALUES (1, ?, ?, 'faiss', ?, 2, '2024-03-01 08:00:00.000000')",
            (KB, "Operations notes", CHATCHAT_MODEL),
        )
        for i, (rel, text) in enumerate(FILES.items(), 1):
            conn.execute(
                "INSERT INTO knowledge_file VALUES (?, ?, ?, ?, 'UnstructuredFileLoader',"
                " 'ChineseRecursiveTextSplitter', 1, 1709280000.0, ?, 0, 1, '2024-03-01 08:00:01.000000')",
                (i, rel, Path(rel).suffix, KB, len(text.encode())),
            )
            conn.execute(
                "INSERT INTO file_doc VALUES (?, ?, ?, ?, ?)",
                (i, KB, rel, f"doc-{i}", json.dumps({"source": rel})),
            )
        conn.execute(
            "INSERT INTO conversation VALUES (?, 'ops', 'knowledge_base_chat', '2024-03-02 09:00:00')", (CONVERSATION,)
        )
        for n, (mid, query, response, score, reason) in enumerate(MESSAGES):
            conn.execute(
                "INSERT INTO message VALUES (?, ?, 'knowledge_base_chat', ?, ?, ?, ?, ?, ?)",
                (
                    mid,
                    CONVERSATION,
                    query,
                    response,
                    json.dumps({"knowledge_base_name": KB}),
                    score,
                    reason,
                    f"2024-03-02 09:0{n + 1}:00",
                ),
            )
    conn.close()
    return db


def dump(db: Path, *tables: str) -> dict[str, list[tuple[object, ...]]]:
    conn = sqlite3.connect(f"file:{db}?mode=ro", uri=True)
    try:
        return {t: sorted(conn.execute(f"SELECT * FROM {t}").fetchall(), key=repr) for t in tables}
    finally:
        conn.close()
