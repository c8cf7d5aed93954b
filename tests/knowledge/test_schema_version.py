"""The schema check every entry point runs before writing: new, older kbqa, Chatchat 0.2, foreign and newer databases
(real SQLite files, the real service)."""

from __future__ import annotations

import hashlib
import sqlite3
from pathlib import Path

import pytest

from kbqa.db.engine import Database
from kbqa.db.schema_version import SCHEMA_VERSION, DatabaseSchemaError
from kbqa.embeddings.pool import EmbedderPool
from kbqa.knowledge.service import KnowledgeBaseService
from kbqa.settings import Settings
from tests import chatchat_db


def _db(settings: Settings) -> Path:
    return settings.kb_root / "info.db"


def _version(db: Path) -> list[tuple[int]]:
    conn = sqlite3.connect(db)
    try:
        return conn.execute("SELECT version FROM kbqa_schema_version").fetchall()
    finally:
        conn.close()


def test_a_new_database_is_stamped_once(service: KnowledgeBaseService, settings: Settings) -> None:
    assert _version(_db(settings)) == [(SCHEMA_VERSION,)]
    assert service.create_tables() is None
    assert _version(_db(settings)) == [(SCHEMA_VERSION,)]


def test_a_kbqa_database_from_before_the_version_table_is_kept_and_stamped(
    settings: Settings, embedders: EmbedderPool
) -> None:
    first = KnowledgeBaseService(settings, embedders=embedders)
    first.create_tables()
    first.create_kb("kept")
    first.close()
    conn = sqlite3.connect(_db(settings))
    with conn:
        conn.execute("DROP TABLE kbqa_schema_version")
    conn.close()
    again = KnowledgeBaseService(settings, embedders=embedders)
    assert again.create_tables() is None
    assert [kb.name for kb in again.list_kbs()] == ["kept"]
    assert _version(_db(settings)) == [(SCHEMA_VERSION,)]
    again.close()


def _sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


@pytest.mark.parametrize(
    ("ddl", "says"),
    [
        (["CREATE TABLE knowledge_base (id INTEGER PRIMARY KEY, title TEXT)"], "neither kbqa's nor"),
        (["CREATE TABLE orders (id INTEGER PRIMARY KEY)"], "neither kbqa's nor"),
        (
            [
                "CREATE TABLE kbqa_schema_version (version INTEGER NOT NULL)",
                f"INSERT INTO kbqa_schema_version VALUES ({SCHEMA_VERSION + 1})",
            ],
            "newer kbqa",
        ),
    ],
)
def test_a_foreign_or_newer_database_is_refused_and_left_unchanged(
    settings: Settings, embedders: EmbedderPool, ddl: list[str], says: str
) -> None:
    db = _db(settings)
    db.parent.mkdir(parents=True)
    conn = sqlite3.connect(db)
    with conn:
        for statement in ddl:
            conn.execute(statement)
    conn.close()
    before = _sha(db)
    service = KnowledgeBaseService(settings, embedders=embedders)
    with pytest.raises(DatabaseSchemaError, match=says):
        service.create_tables()
    with pytest.raises(DatabaseSchemaError, match=says):
        service.db.drop_tables()
    service.close()
    assert _sha(db) == before
    assert not db.with_name("info.db-wal").exists()


def test_database_create_tables_never_writes_into_a_chatchat_database(settings: Settings) -> None:
    db = chatchat_db.build(settings.kb_root, settings.kb_root / "unpickled")
    before = _sha(db)
    database = Database(settings.database_url)
    with pytest.raises(DatabaseSchemaError, match=r"init_database\.py --from-chatchat"):
        database.create_tables()
    database.dispose()
    assert _sha(db) == before


def test_the_service_migrates_a_chatchat_database_once(settings: Settings, embedders: EmbedderPool) -> None:
    db = chatchat_db.build(settings.kb_root, settings.kb_root / "unpickled")
    service = KnowledgeBaseService(settings, embedders=embedders)
    report = service.create_tables()
    assert report is not None
    assert report.kbs == ["notes"] and report.files == 2 and report.messages == 2 and report.feedback == 1
    assert report.models == {chatchat_db.CHATCHAT_MODEL: settings.embedding.model}
    assert report.backup.is_file() and report.backup.parent == db.parent
    files = {f.path: f for f in service.list_files("notes")}
    assert set(files) == set(chatchat_db.FILES)
    assert {f.status for f in files.values()} == {"pending"}
    assert sorted(service.files_to_index("notes")) == sorted(chatchat_db.FILES)
    assert service.create_tables() is None
    indexed = service.ingest("notes", service.files_to_index("notes"))
    assert sorted(indexed.added) == sorted(chatchat_db.FILES) and not indexed.failed
    assert service.files_to_index("notes") == []
    assert service.search("notes", "nightly backups", top_k=1)[0].path == "guide/backup.txt"
    tables = chatchat_db.dump(db, "message")
    assert len(tables["message"]) == 2
    service.close()
    assert not (settings.kb_root / "unpickled").exists()


def test_chat_history_of_chatchat_0_2_7_is_moved_too(settings: Settings, embedders: EmbedderPool) -> None:
    db = chatchat_db.build(settings.kb_root, settings.kb_root / "unpickled")
    conn = sqlite3.connect(db)
    with conn:
        conn.execute("DROP TABLE message")
        conn.execute("DROP TABLE conversation")
        conn.execute(
            "CREATE TABLE chat_history (id VARCHAR(32) PRIMARY KEY, chat_type VARCHAR(50), query VARCHAR(4096), "
            "response VARCHAR(4096), meta_data JSON, feedback_score INTEGER, feedback_reason VARCHAR(255), "
            "create_time DATETIME)"
        )
        conn.execute(
            "INSERT INTO chat_history VALUES ('h1', 'llm_chat', 'hi', 'hello', '{}', 100, 'nice', "
            "'2023-11-01 10:00:00')"
        )
    conn.close()
    service = KnowledgeBaseService(settings, embedders=embedders)
    report = service.create_tables()
    service.close()
    assert report is not None and report.messages == 1 and report.feedback == 1
    rows = chatchat_db.dump(db, "message")["message"]
    assert [(r[0], r[1], r[3], r[4], r[6], r[7]) for r in rows] == [("h1", "", "hi", "hello", 100, "nice")]
    tables = {row[1] for row in chatchat_db.dump(db, "sqlite_master")["sqlite_master"] if row[0] == "table"}
    assert "chat_history" not in tables and "file_doc" not in tables and "message" in tables
