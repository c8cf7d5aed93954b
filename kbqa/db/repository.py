"""Repository functions: each takes a session and does one thing. Every name match is exact (``==``), never LIKE."""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any, NamedTuple

import numpy as np
from sqlalchemy import delete, func, insert, select, update
from sqlalchemy.orm import Session

from kbqa.db import fulltext
from kbqa.db.models import Chunk, KnowledgeBase, KnowledgeFile, utcnow


@dataclass(slots=True)
class NewChunk:
    ordinal: int
    text: str
    text_sha256: str
    meta: dict[str, Any]
    embedding: np.ndarray
    keywords: str  # space-separated tokens for the full-text index


# A recreate builds its rows under a KB named with this prefix: never a valid KB name (it starts with a dot), so no
# request can reach it, and never listed.
STAGING_PREFIX = ".recreate."


def get_kb(session: Session, name: str) -> KnowledgeBase | None:
    return session.scalar(select(KnowledgeBase).where(KnowledgeBase.name == name))


def list_kbs(session: Session) -> list[KnowledgeBase]:
    stmt = select(KnowledgeBase).where(~KnowledgeBase.name.startswith(STAGING_PREFIX, autoescape=True))
    return list(session.scalars(stmt.order_by(KnowledgeBase.name)))


def _delete_kb_rows(session: Session, kb_id: int) -> None:
    """Every row of a KB, by set-wise deletes (the ORM cascade would load each file and chunk first). The rows go
    first: Python's sqlite3 opens the transaction at the first DML, and the DROP must run inside it."""
    session.execute(delete(Chunk).where(Chunk.kb_id == kb_id))
    session.execute(delete(KnowledgeFile).where(KnowledgeFile.kb_id == kb_id))
    session.execute(delete(KnowledgeBase).where(KnowledgeBase.id == kb_id))
    fulltext.remove_kb(session, kb_id)


def staging_names(session: Session) -> list[str]:
    stmt = select(KnowledgeBase.name).where(KnowledgeBase.name.startswith(STAGING_PREFIX, autoescape=True))
    return list(session.scalars(stmt))


def drop_staging(session: Session, staging_name: str) -> None:
    """Remove a recreate's staging KB, if a failed or killed run left one."""
    kb_id = session.scalar(select(KnowledgeBase.id).where(KnowledgeBase.name == staging_name))
    if kb_id is not None:
        _delete_kb_rows(session, kb_id)


def swap_in_staging(session: Session, name: str, staged_id: int) -> tuple[int, int]:
    """Replace the rows of KB ``name`` by those of its staging KB, in this transaction. The KB keeps its id, name,
    description and creation time and takes the staging KB's model, dimension and store type. Returns (KB id, new
    generation): past the old one, so no index saved for the old rows matches."""
    old = session.scalars(select(KnowledgeBase).where(KnowledgeBase.name == name)).one()
    staged = session.scalars(select(KnowledgeBase).where(KnowledgeBase.id == staged_id)).one()
    kb_id, generation = old.id, old.generation + 1
    session.execute(delete(Chunk).where(Chunk.kb_id == kb_id))
    session.execute(delete(KnowledgeFile).where(KnowledgeFile.kb_id == kb_id))
    session.execute(update(KnowledgeFile).where(KnowledgeFile.kb_id == staged_id).values(kb_id=kb_id))
    session.execute(update(Chunk).where(Chunk.kb_id == staged_id).values(kb_id=kb_id))
    session.execute(
        update(KnowledgeBase)
        .where(KnowledgeBase.id == kb_id)
        .values(
            embed_model=staged.embed_model, embed_dim=staged.embed_dim, vs_type=staged.vs_type, generation=generation
        )
    )
    session.execute(delete(KnowledgeBase).where(KnowledgeBase.id == staged_id))
    session.expunge(old)
    session.expunge(staged)
    fulltext.move_kb(session, staged_id, kb_id)  # DDL last: inside the transaction the DML opened
    return kb_id, generation


def add_kb(session: Session, *, name: str, info: str, vs_type: str, embed_model: str, embed_dim: int) -> KnowledgeBase:
    kb = KnowledgeBase(name=name, info=info, vs_type=vs_type, embed_model=embed_model, embed_dim=embed_dim)
    session.add(kb)
    session.flush()
    return kb


def bump_generation(session: Session, kb_id: int) -> int:
    session.execute(
        update(KnowledgeBase).where(KnowledgeBase.id == kb_id).values(generation=KnowledgeBase.generation + 1)
    )
    return int(session.scalar(select(KnowledgeBase.generation).where(KnowledgeBase.id == kb_id)) or 0)


def kb_counts(session: Session, kb_id: int) -> tuple[int, int]:
    files = session.scalar(select(func.count()).select_from(KnowledgeFile).where(KnowledgeFile.kb_id == kb_id))
    chunks = session.scalar(select(func.count()).select_from(Chunk).where(Chunk.kb_id == kb_id))
    return int(files or 0), int(chunks or 0)


def get_file(session: Session, kb_id: int, path: str) -> KnowledgeFile | None:
    return session.scalar(select(KnowledgeFile).where(KnowledgeFile.kb_id == kb_id, KnowledgeFile.path == path))


def files_by_path(session: Session, kb_id: int, paths: Iterable[str] | None = None) -> dict[str, KnowledgeFile]:
    stmt = select(KnowledgeFile).where(KnowledgeFile.kb_id == kb_id)
    if paths is not None:
        wanted = list(paths)
        if not wanted:
            return {}
        stmt = stmt.where(KnowledgeFile.path.in_(wanted))
    return {f.path: f for f in session.scalars(stmt)}


def list_files(session: Session, kb_id: int) -> list[KnowledgeFile]:
    return list(session.scalars(select(KnowledgeFile).where(KnowledgeFile.kb_id == kb_id).order_by(KnowledgeFile.path)))


def chunk_ids_of_file(session: Session, file_id: int) -> list[int]:
    return list(session.scalars(select(Chunk.id).where(Chunk.file_id == file_id)))


def delete_chunks_of_file(session: Session, file_id: int) -> list[int]:
    ids = chunk_ids_of_file(session, file_id)
    if ids:
        kb_id = session.scalars(select(KnowledgeFile.kb_id).where(KnowledgeFile.id == file_id)).one()
        fulltext.remove(session, kb_id, ids)
        session.execute(delete(Chunk).where(Chunk.file_id == file_id))
    return ids


def delete_file(session: Session, file: KnowledgeFile) -> list[int]:
    ids = delete_chunks_of_file(session, file.id)
    session.execute(delete(KnowledgeFile).where(KnowledgeFile.id == file.id))
    return ids


def insert_chunks(session: Session, kb_id: int, file_id: int, chunks: Sequence[NewChunk]) -> list[int]:
    if not chunks:
        return []
    rows = [
        {
            "kb_id": kb_id,
            "file_id": file_id,
            "ordinal": c.ordinal,
            "text": c.text,
            "text_sha256": c.text_sha256,
            "meta": c.meta,
            "embedding": np.ascontiguousarray(c.embedding, dtype="<f4").tobytes(),
        }
        for c in chunks
    ]
    ids = list(session.scalars(insert(Chunk).returning(Chunk.id, sort_by_parameter_order=True), rows))
    fulltext.add(session, kb_id, zip(ids, (c.keywords for c in chunks), strict=True))
    return ids


def chunks_of_kb(session: Session, kb_id: int, ids: Sequence[int]) -> dict[int, Chunk]:
    """The chunks with these ids that belong to this KB (ids of other KBs are not found)."""
    found: dict[int, Chunk] = {}
    for start in range(0, len(ids), 500):
        stmt = select(Chunk).where(Chunk.kb_id == kb_id, Chunk.id.in_(ids[start : start + 500]))
        found.update((c.id, c) for c in session.scalars(stmt))
    return found


def rewrite_chunk(
    session: Session, kb_id: int, chunk_id: int, text: str, sha: str, meta: dict[str, Any], vector: np.ndarray
) -> None:
    emb = np.ascontiguousarray(vector, dtype="<f4").tobytes()
    session.execute(
        update(Chunk)
        .where(Chunk.kb_id == kb_id, Chunk.id == chunk_id)
        .values(text=text, text_sha256=sha, meta=meta, embedding=emb)
    )


def delete_chunks(session: Session, kb_id: int, ids: Sequence[int]) -> None:
    if ids:
        fulltext.remove(session, kb_id, ids)
        session.execute(delete(Chunk).where(Chunk.kb_id == kb_id, Chunk.id.in_(list(ids))))


def mark_edited(session: Session, file_ids: Iterable[int]) -> None:
    """Files whose chunks a client edited: their chunks are custom now; a file left with none is forgotten."""
    for file_id in file_ids:
        left = int(session.scalar(select(func.count()).select_from(Chunk).where(Chunk.file_id == file_id)) or 0)
        if left == 0:
            session.execute(delete(KnowledgeFile).where(KnowledgeFile.id == file_id))
            continue
        session.execute(
            update(KnowledgeFile)
            .where(KnowledgeFile.id == file_id)
            .values(
                chunk_count=left,
                custom_docs=True,
                splitter="CustomDocs",
                version=KnowledgeFile.version + 1,
                updated_at=utcnow(),
            )
        )


def known_embeddings(session: Session, kb_id: int, text_hashes: Iterable[str]) -> dict[str, bytes]:
    """Embeddings already stored in this KB for these chunk texts (the same model made them): reused, not recomputed."""
    wanted = list(set(text_hashes))
    found: dict[str, bytes] = {}
    for start in range(0, len(wanted), 500):
        part = wanted[start : start + 500]
        stmt = select(Chunk.text_sha256, Chunk.embedding).where(Chunk.kb_id == kb_id, Chunk.text_sha256.in_(part))
        for sha, emb in session.execute(stmt):
            found.setdefault(sha, emb)
    return found


class ChunkRow(NamedTuple):
    """What a search hit needs of a chunk: plain columns, no ORM object (building those cost ~1 ms per search)."""

    id: int
    kb_id: int
    ordinal: int
    text: str
    meta: dict[str, Any]
    embedding: bytes
    path: str


def chunks_by_ids(session: Session, ids: Sequence[int]) -> dict[int, ChunkRow]:
    if not ids:
        return {}
    stmt = (
        select(Chunk.id, Chunk.kb_id, Chunk.ordinal, Chunk.text, Chunk.meta, Chunk.embedding, KnowledgeFile.path)
        .join(KnowledgeFile, Chunk.file_id == KnowledgeFile.id)
        .where(Chunk.id.in_(ids))
    )
    return {row[0]: ChunkRow(*row) for row in session.execute(stmt)}


def kb_version(session: Session, name: str) -> tuple[int, int, str] | None:
    """(id, generation, embedding model) of a KB: the per-search freshness check, without loading the ORM object."""
    stmt = select(KnowledgeBase.id, KnowledgeBase.generation, KnowledgeBase.embed_model).where(
        KnowledgeBase.name == name
    )
    row = session.execute(stmt).first()
    return None if row is None else (int(row[0]), int(row[1]), str(row[2]))


def chunks_of_file(session: Session, file_id: int) -> list[Chunk]:
    return list(session.scalars(select(Chunk).where(Chunk.file_id == file_id).order_by(Chunk.ordinal)))


def iter_embeddings(
    session: Session, kb_id: int, dim: int, page: int = 20000
) -> Iterator[tuple[np.ndarray, np.ndarray]]:
    """(ids, vectors) of every chunk of a KB, in pages, for rebuilding an index without the model."""
    last = 0
    while True:
        stmt = (
            select(Chunk.id, Chunk.embedding)
            .where(Chunk.kb_id == kb_id, Chunk.id > last)
            .order_by(Chunk.id)
            .limit(page)
        )
        rows = session.execute(stmt).all()
        if not rows:
            return
        ids = np.fromiter((r[0] for r in rows), dtype=np.int64, count=len(rows))
        vecs = np.frombuffer(b"".join(r[1] for r in rows), dtype="<f4").reshape(len(rows), dim)
        yield ids, vecs
        last = int(ids[-1])


def chunk_count(session: Session, kb_id: int) -> int:
    return int(session.scalar(select(func.count()).select_from(Chunk).where(Chunk.kb_id == kb_id)) or 0)


def iter_chunk_texts(session: Session, kb_id: int, page: int = 5000) -> Iterator[list[tuple[int, str]]]:
    last = 0
    while True:
        stmt = select(Chunk.id, Chunk.text).where(Chunk.kb_id == kb_id, Chunk.id > last).order_by(Chunk.id).limit(page)
        rows = [(int(i), t) for i, t in session.execute(stmt)]
        if not rows:
            return
        yield rows
        last = rows[-1][0]


def chunk_vectors(session: Session, ids: Sequence[int], dim: int) -> dict[int, np.ndarray]:
    if not ids:
        return {}
    rows = session.execute(select(Chunk.id, Chunk.embedding).where(Chunk.id.in_(list(ids))))
    return {int(i): np.frombuffer(emb, dtype="<f4").reshape(dim) for i, emb in rows}
