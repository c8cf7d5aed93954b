"""Engine and session factory for the metadata database (SQLite by default, any SQLAlchemy URL)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, create_engine, event
from sqlalchemy.engine import make_url
from sqlalchemy.orm import Session, sessionmaker

from kbqa.db import fulltext, schema_version
from kbqa.db.models import Base


def _json_dumps(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False)


def _sqlite_pragmas(dbapi_conn: Any, _record: Any) -> None:
    cur = dbapi_conn.cursor()
    # WAL: readers never wait for the writer; NORMAL sync is durable across process crashes (kill -9).
    cur.execute("PRAGMA journal_mode=WAL")
    cur.execute("PRAGMA synchronous=NORMAL")
    cur.execute("PRAGMA foreign_keys=ON")
    cur.execute("PRAGMA busy_timeout=30000")
    cur.close()


def make_engine(url: str) -> Engine:
    parsed = make_url(url)
    kwargs: dict[str, Any] = {"json_serializer": _json_dumps, "future": True}
    if parsed.get_backend_name() == "sqlite":
        if parsed.database and parsed.database != ":memory:":
            Path(parsed.database).parent.mkdir(parents=True, exist_ok=True)
        kwargs["connect_args"] = {"check_same_thread": False, "timeout": 30}
        engine = create_engine(url, **kwargs)
        event.listen(engine, "connect", _sqlite_pragmas)
        return engine
    kwargs["pool_pre_ping"] = True
    return create_engine(url, **kwargs)


class Database:
    """Owns the engine; hands out short transactional sessions."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.engine = make_engine(url)
        self._sessions = sessionmaker(self.engine, expire_on_commit=False, autoflush=False)

    def inspect(self) -> schema_version.Found:
        """What this database is, read without writing; raises DatabaseSchemaError for one kbqa must not touch."""
        return schema_version.inspect_database(self.url, self.engine)

    def create_tables(self) -> None:
        """Create missing tables after checking the schema version: nothing is written to a foreign, newer or
        (not yet migrated) Langchain-Chatchat database."""
        if self.inspect().kind is schema_version.Kind.CHATCHAT:
            raise schema_version.DatabaseSchemaError(
                "This is a Langchain-Chatchat 0.2 database: run `python init_database.py --from-chatchat` to migrate "
                "it (a backup copy is kept). Nothing was changed."
            )
        Base.metadata.create_all(self.engine)
        with self.engine.begin() as conn:
            if fulltext.available(self.engine):
                fulltext.create(conn)
            schema_version.stamp(conn)

    def drop_tables(self) -> None:
        if self.inspect().kind is schema_version.Kind.CHATCHAT:
            raise schema_version.DatabaseSchemaError(
                "This is a Langchain-Chatchat 0.2 database: kbqa does not drop its tables. Nothing was changed."
            )
        Base.metadata.drop_all(self.engine)
        with self.engine.begin() as conn:
            if fulltext.available(self.engine):
                fulltext.drop_all(conn)
            schema_version.drop(conn)

    @contextmanager
    def session(self) -> Iterator[Session]:
        """One transaction: committed on success, rolled back on any exception."""
        with self._sessions() as session, session.begin():
            yield session

    @contextmanager
    def read(self) -> Iterator[Session]:
        with self._sessions() as session:
            yield session

    def dispose(self) -> None:
        self.engine.dispose()
