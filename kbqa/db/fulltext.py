"""The keyword (BM25) index: an SQLite FTS5 table beside the chunks, written in the same transactions.

Rows hold pre-tokenised text (``kbqa.ingest.keywords``): FTS5 only splits on spaces and stems English. Row id = chunk
id. Other databases have no FTS5; there :func:`available` is False and retrieval falls back to dense search.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

from sqlalchemy import Connection, Engine, bindparam, text
from sqlalchemy.orm import Session

TABLE = "chunk_fts"
_DDL = f"CREATE VIRTUAL TABLE IF NOT EXISTS {TABLE} USING fts5(tokens, kb_id UNINDEXED, tokenize='porter unicode61')"


def available(bind: Engine | Connection | Session) -> bool:
    engine = bind.get_bind() if isinstance(bind, Session) else bind
    return engine.dialect.name == "sqlite"


def create(conn: Connection) -> None:
    conn.execute(text(_DDL))


def add(session: Session, kb_id: int, rows: Iterable[tuple[int, str]]) -> None:
    params = [{"id": chunk_id, "tokens": tokens, "kb": kb_id} for chunk_id, tokens in rows]
    if params and available(session):
        session.execute(text(f"INSERT INTO {TABLE}(rowid, tokens, kb_id) VALUES (:id, :tokens, :kb)"), params)


def remove(session: Session, chunk_ids: Sequence[int]) -> None:
    if not chunk_ids or not available(session):
        return
    stmt = text(f"DELETE FROM {TABLE} WHERE rowid IN :ids").bindparams(bindparam("ids", expanding=True))
    for start in range(0, len(chunk_ids), 500):
        session.execute(stmt, {"ids": list(chunk_ids[start : start + 500])})


def remove_kb(session: Session, kb_id: int) -> None:
    if available(session):
        session.execute(text(f"DELETE FROM {TABLE} WHERE kb_id = :kb"), {"kb": kb_id})


def count(session: Session, kb_id: int) -> int:
    if not available(session):
        return 0
    return int(session.execute(text(f"SELECT count(*) FROM {TABLE} WHERE kb_id = :kb"), {"kb": kb_id}).scalar() or 0)


def search(session: Session, kb_ids: Sequence[int], match: str, limit: int) -> list[tuple[int, float]]:
    """(chunk id, BM25 score; higher is better) of the best ``limit`` matches within these KBs."""
    if not kb_ids or not available(session):
        return []
    stmt = text(
        f"SELECT rowid, -bm25({TABLE}) AS score FROM {TABLE} WHERE {TABLE} MATCH :q AND kb_id IN :kbs "
        "ORDER BY bm25(" + TABLE + ") LIMIT :limit"
    ).bindparams(bindparam("kbs", expanding=True))
    rows = session.execute(stmt, {"q": match, "kbs": list(kb_ids), "limit": limit})
    return [(int(r[0]), float(r[1])) for r in rows]
