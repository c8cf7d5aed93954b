"""The keyword (BM25) index: one SQLite FTS5 table per knowledge base, written in the same transactions as its chunks.

Rows hold pre-tokenised text (``kbqa.ingest.keywords``): FTS5 only splits on spaces and stems English. Row id = chunk
id. A table per knowledge base (``chunk_fts_<kb id>``) rather than one shared table with a kb column: filtering a
shared table by kb reads every matching row's stored content, which tripled keyword-search time at 100,000 chunks
(12.1 vs 4.1 ms p50), and BM25's document frequencies are then the knowledge base's own. Other databases have no
FTS5; there :func:`available` is False and retrieval falls back to dense search.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence

from sqlalchemy import Connection, Engine, bindparam, text
from sqlalchemy.orm import Session

PREFIX = "chunk_fts_"
# The single shared table of earlier versions; migrated into per-KB tables by :func:`create`.
LEGACY_TABLE = "chunk_fts"


def table(kb_id: int) -> str:
    return f"{PREFIX}{int(kb_id)}"


def _ddl(kb_id: int) -> str:
    return f"CREATE VIRTUAL TABLE IF NOT EXISTS {table(kb_id)} USING fts5(tokens, tokenize='porter unicode61')"


def available(bind: Engine | Connection | Session) -> bool:
    engine = bind.get_bind() if isinstance(bind, Session) else bind
    return engine.dialect.name == "sqlite"


def _exists(bind: Connection | Session, name: str) -> bool:
    found = bind.execute(text("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = :n"), {"n": name})
    return found.first() is not None


def create(conn: Connection) -> None:
    """Move rows of the legacy shared table into per-KB tables (tokens are copied, not recomputed)."""
    if not _exists(conn, LEGACY_TABLE):
        return
    for (kb_id,) in conn.execute(text(f"SELECT DISTINCT kb_id FROM {LEGACY_TABLE}")).all():
        conn.execute(text(_ddl(kb_id)))
        conn.execute(
            text(
                f"INSERT INTO {table(kb_id)}(rowid, tokens) SELECT rowid, tokens FROM {LEGACY_TABLE} WHERE kb_id = :kb"
            ),
            {"kb": kb_id},
        )
    conn.execute(text(f"DROP TABLE {LEGACY_TABLE}"))


def drop_all(conn: Connection) -> None:
    names = conn.execute(text("SELECT name FROM sqlite_master WHERE type = 'table' AND name GLOB 'chunk_fts_*'"))
    for name in [n for (n,) in names if n[len(PREFIX) :].isdigit()]:
        conn.execute(text(f"DROP TABLE IF EXISTS {name}"))
    conn.execute(text(f"DROP TABLE IF EXISTS {LEGACY_TABLE}"))


def add(session: Session, kb_id: int, rows: Iterable[tuple[int, str]]) -> None:
    params = [{"id": chunk_id, "tokens": tokens} for chunk_id, tokens in rows]
    if params and available(session):
        session.execute(text(_ddl(kb_id)))
        session.execute(text(f"INSERT INTO {table(kb_id)}(rowid, tokens) VALUES (:id, :tokens)"), params)


def remove(session: Session, kb_id: int, chunk_ids: Sequence[int]) -> None:
    if not chunk_ids or not available(session) or not _exists(session, table(kb_id)):
        return
    stmt = text(f"DELETE FROM {table(kb_id)} WHERE rowid IN :ids").bindparams(bindparam("ids", expanding=True))
    for start in range(0, len(chunk_ids), 500):
        session.execute(stmt, {"ids": list(chunk_ids[start : start + 500])})


def remove_kb(session: Session, kb_id: int) -> None:
    if available(session):
        session.execute(text(f"DROP TABLE IF EXISTS {table(kb_id)}"))


def move_kb(session: Session, from_kb: int, to_kb: int) -> None:
    """Make ``from_kb``'s table the table of ``to_kb`` (whose own table is dropped): a rename, no row is copied."""
    if not available(session):
        return
    session.execute(text(f"DROP TABLE IF EXISTS {table(to_kb)}"))
    if _exists(session, table(from_kb)):
        session.execute(text(f"ALTER TABLE {table(from_kb)} RENAME TO {table(to_kb)}"))


def rows(session: Session, kb_id: int, page: int = 5000) -> Iterator[tuple[int, str]]:
    """(chunk id, stored tokens) of every row of a KB's table, read a page at a time."""
    if not available(session) or not _exists(session, table(kb_id)):
        return
    name, last = table(kb_id), -1
    while True:
        batch = session.execute(
            text(f"SELECT rowid, tokens FROM {name} WHERE rowid > :last ORDER BY rowid LIMIT :page"),
            {"last": last, "page": page},
        ).all()
        for row in batch:
            yield int(row[0]), str(row[1])
        if len(batch) < page:
            return
        last = int(batch[-1][0])


def count(session: Session, kb_id: int) -> int:
    if not available(session) or not _exists(session, table(kb_id)):
        return 0
    return int(session.execute(text(f"SELECT count(*) FROM {table(kb_id)}")).scalar() or 0)


def search(session: Session, kb_ids: Sequence[int], match: str, limit: int) -> list[tuple[int, float]]:
    """(chunk id, BM25 score; higher is better) of the best ``limit`` matches within these KBs."""
    if not kb_ids or not available(session):
        return []
    found: list[tuple[int, float]] = []
    for kb_id in kb_ids:
        if not _exists(session, table(kb_id)):
            continue
        name = table(kb_id)
        rows = session.execute(
            text(f"SELECT rowid, -bm25({name}) FROM {name} WHERE {name} MATCH :q ORDER BY bm25({name}) LIMIT :limit"),
            {"q": match, "limit": limit},
        )
        found += [(int(r[0]), float(r[1])) for r in rows]
    if len(kb_ids) > 1:
        found.sort(key=lambda kv: -kv[1])
    return found[:limit]
