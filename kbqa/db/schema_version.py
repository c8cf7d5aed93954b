"""What kind of database a URL points at, read before anything is created or altered.

kbqa records its schema version in a one-row table. A database without it is classified by its tables: empty (new),
kbqa's own from before the version table (stamped), Langchain-Chatchat 0.2's (migrated by
:mod:`kbqa.db.chatchat_import`), or anything else (refused, untouched). SQLite files are inspected through a read-only
connection: even the WAL pragma kbqa sets on its own connections rewrites a file's header.
"""

from __future__ import annotations

import enum
import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import quote

from sqlalchemy import Column, Connection, Engine, Integer, MetaData, Table, create_engine, inspect, select
from sqlalchemy.engine import make_url

from kbqa.errors import KBQAError

# 1: the tables of kbqa/db/models.py with the version table itself (the first versioned schema).
SCHEMA_VERSION = 1

_metadata = MetaData()
version_table = Table("kbqa_schema_version", _metadata, Column("version", Integer, nullable=False))

# Columns that only Chatchat 0.2 has under kbqa's table names (server/db/models/*.py of 0.2.x).
_CHATCHAT_KB_COLUMNS = {"kb_name", "kb_info", "vs_type", "embed_model"}
_CHATCHAT_FILE_COLUMNS = {"file_name", "kb_name", "file_version"}
_KBQA_KB_COLUMNS = {"name", "embed_model", "embed_dim"}
_KBQA_FILE_COLUMNS = {"kb_id", "path"}


class DatabaseSchemaError(KBQAError):
    """The database belongs to something else, or to a newer kbqa: nothing was written to it."""

    status_code = 503


class Kind(enum.Enum):
    EMPTY = "empty"
    KBQA = "kbqa"
    CHATCHAT = "chatchat"


@dataclass(frozen=True, slots=True)
class Found:
    kind: Kind
    version: int | None = None  # kbqa's recorded schema version; None before the version table existed
    tables: frozenset[str] = field(default_factory=frozenset)


def sqlite_path(url: str) -> Path | None:
    """The file of a file-backed SQLite URL; None for other databases and in-memory SQLite."""
    parsed = make_url(url)
    if parsed.get_backend_name() != "sqlite" or not parsed.database or parsed.database == ":memory:":
        return None
    return Path(parsed.database)


@contextmanager
def read_only(url: str, engine: Engine) -> Iterator[Connection | None]:
    """A connection that cannot write; None when a SQLite file does not exist yet (nothing to inspect)."""
    path = sqlite_path(url)
    if path is None:
        with engine.connect() as conn:
            yield conn
        return
    if not path.is_file() or path.stat().st_size == 0:
        yield None
        return
    uri = f"file:{quote(str(path.resolve()))}?mode=ro"
    ro = create_engine("sqlite://", creator=lambda: sqlite3.connect(uri, uri=True, check_same_thread=False))
    try:
        with ro.connect() as conn:
            yield conn
    finally:
        ro.dispose()


def classify(conn: Connection | None) -> Found:
    """Raises :class:`DatabaseSchemaError` for a database kbqa must not touch."""
    if conn is None:
        return Found(Kind.EMPTY)
    insp = inspect(conn)
    tables = frozenset(t for t in insp.get_table_names() if not t.startswith("sqlite_"))
    if not tables:
        return Found(Kind.EMPTY)

    def columns(table: str) -> set[str]:
        return {c["name"] for c in insp.get_columns(table)} if table in tables else set()

    if version_table.name in tables:
        version = conn.execute(select(version_table.c.version)).scalar()
        if version is None:
            raise DatabaseSchemaError(
                f"The database's {version_table.name} table is empty: it was not written by kbqa, so kbqa leaves it "
                "alone; point paths.database_url at another database."
            )
        if version > SCHEMA_VERSION:
            raise DatabaseSchemaError(
                f"The database was written by a newer kbqa (schema version {version}; this kbqa knows up to "
                f"{SCHEMA_VERSION}): upgrade kbqa, or point paths.database_url at another database. "
                "Nothing was changed."
            )
        return Found(Kind.KBQA, int(version), tables)
    kb_cols, file_cols = columns("knowledge_base"), columns("knowledge_file")
    if kb_cols >= _KBQA_KB_COLUMNS and file_cols >= _KBQA_FILE_COLUMNS:
        return Found(Kind.KBQA, None, tables)
    if kb_cols >= _CHATCHAT_KB_COLUMNS and file_cols >= _CHATCHAT_FILE_COLUMNS:
        return Found(Kind.CHATCHAT, None, tables)
    shown = ", ".join(sorted(tables)[:6]) + (", ..." if len(tables) > 6 else "")
    raise DatabaseSchemaError(
        f"The database holds tables kbqa does not know ({shown}) and is neither kbqa's nor Langchain-Chatchat 0.2's, "
        "so kbqa leaves it unchanged: point paths.database_url at another database."
    )


def inspect_database(url: str, engine: Engine) -> Found:
    with read_only(url, engine) as conn:
        return classify(conn)


def create_version_table(conn: Connection) -> None:
    _metadata.create_all(conn)


def stamp(conn: Connection) -> None:
    """Record the current schema version (after the tables of that version exist)."""
    create_version_table(conn)
    current = conn.execute(select(version_table.c.version)).scalar()
    if current is None:
        conn.execute(version_table.insert().values(version=SCHEMA_VERSION))
    elif current != SCHEMA_VERSION:
        conn.execute(version_table.update().values(version=SCHEMA_VERSION))


def drop(conn: Connection) -> None:
    _metadata.drop_all(conn)
