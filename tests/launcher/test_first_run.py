"""The launcher's first-run step on a Langchain-Chatchat 0.2 folder and on a fresh checkout (real service, real
SQLite)."""

from __future__ import annotations

import sqlite3

import pytest

from kbqa.db.schema_version import DatabaseSchemaError
from kbqa.launcher.first_run import init_argv, prepare_database
from kbqa.settings import Settings
from tests import chatchat_db


def test_a_chatchat_folder_is_migrated_and_its_knowledge_bases_indexed_by_the_init_task(settings: Settings) -> None:
    chatchat_db.build(settings.kb_root, settings.kb_root / "unpickled")
    first = prepare_database(settings, init_samples=True)
    assert first.migrated is not None and first.migrated.startswith("Migrated the Langchain-Chatchat 0.2 database")
    assert first.to_index == ["notes"]
    assert init_argv("/cfg/settings.yaml", first.to_index)[-6:] == [
        "--config",
        "/cfg/settings.yaml",
        "init-db",
        "--increment",
        "--kb-name",
        "notes",
    ]
    again = prepare_database(settings, init_samples=True)
    assert again.migrated is None and again.to_index == []


def test_samples_are_indexed_on_a_fresh_checkout_only(settings: Settings) -> None:
    content = settings.kb_root / "samples" / "content"
    content.mkdir(parents=True)
    (content / "readme.md").write_text("hello", encoding="utf-8")
    assert prepare_database(settings, init_samples=True).to_index == ["samples"]
    assert prepare_database(settings, init_samples=False).to_index == []


def test_a_foreign_database_stops_the_launcher_before_anything_starts(settings: Settings) -> None:
    db = settings.kb_root / "info.db"
    db.parent.mkdir(parents=True)
    conn = sqlite3.connect(db)
    with conn:
        conn.execute("CREATE TABLE accounts (id INTEGER PRIMARY KEY)")
    conn.close()
    with pytest.raises(DatabaseSchemaError, match="neither kbqa's nor"):
        prepare_database(settings, init_samples=True)
