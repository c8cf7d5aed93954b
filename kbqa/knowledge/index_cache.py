"""In-memory vector indexes, one per knowledge base, opened once and checked against the database.

Readers take the published store reference and search it without any lock. Writers publish a new store after their
database transaction commits. On open, an index whose recorded generation differs from the database's (a crash
between commit and save, or another process's write) is rebuilt from the embeddings stored in the database.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

from kbqa.atomic_file import atomic_write_bytes
from kbqa.db import fulltext
from kbqa.db import repository as repo
from kbqa.db.engine import Database
from kbqa.errors import KBNotFound
from kbqa.ingest.keywords import index_text
from kbqa.knowledge.bm25_index import BM25Index
from kbqa.store.base import VectorStore
from kbqa.store.registry import store_class

log = logging.getLogger(__name__)

# The BM25 snapshot, saved beside the vector index with the generation it matches.
KEYWORDS_FILE = "keywords.npz"

# (kb name, embed model) -> the folder holding that KB's index for that model
FolderFor = Callable[[str, str], Path]


@dataclass(slots=True)
class IndexState:
    kb_id: int
    name: str
    vs_type: str
    embed_model: str
    dim: int
    folder: Path
    store: VectorStore
    generation: int
    saved_generation: int
    # in-memory BM25 snapshot of the KB's FTS5 table; None when keyword search goes to SQLite (or there is no FTS5)
    keywords: BM25Index | None = None


class IndexCache:
    def __init__(self, db: Database, keywords_in_memory: bool = True) -> None:
        self.db = db
        self.keywords_in_memory = keywords_in_memory
        self._states: dict[str, IndexState] = {}
        self._open_lock = threading.Lock()

    def get(self, name: str, folder_for: FolderFor, writer_active: bool = False) -> IndexState:
        """The current index of a KB, (re)opened if missing or stale relative to the database."""
        with self.db.read() as s:
            version = repo.kb_version(s, name)
        if version is None:
            self.drop(name)
            raise KBNotFound(f"knowledge base {name} not found")
        kb_id, db_generation, embed_model = version
        state = self._states.get(name)
        same_kb = state is not None and state.kb_id == kb_id and state.embed_model == embed_model
        if same_kb and (state.generation == db_generation or writer_active):  # type: ignore[union-attr]
            return state  # type: ignore[return-value]
        with self._open_lock:
            state = self._states.get(name)
            if state is not None and (state.kb_id, state.embed_model, state.generation) == (
                kb_id,
                embed_model,
                db_generation,
            ):
                return state
            state = self._open(name, folder_for)
            self._states[name] = state
            return state

    def _open(self, name: str, folder_for: FolderFor) -> IndexState:
        with self.db.read() as s:
            kb = repo.get_kb(s, name)
            assert kb is not None
            kb_id, vs_type, model, dim, generation = kb.id, kb.vs_type, kb.embed_model, kb.embed_dim, kb.generation
        folder: Path = folder_for(name, model)
        cls = store_class(vs_type)
        loaded = cls.load(folder, dim)
        if loaded is not None and loaded[1] == generation:
            store, saved = loaded
        else:
            found = "none" if loaded is None else f"generation {loaded[1]}"
            level = logging.INFO if loaded is None else logging.WARNING
            log.log(
                level,
                "index of %s is stale (%s, database at %d): rebuilding from stored embeddings",
                name,
                found,
                generation,
            )
            store = self.rebuild_store(kb_id, vs_type, dim)
            store.save(folder, generation)
            saved = generation
        rebuilt_keywords = self._check_keyword_index(kb_id, name)
        keywords = None if rebuilt_keywords else self._load_keywords(folder, generation)
        if keywords is None:
            keywords = self.build_keywords(kb_id)
            self._save_keywords(folder, keywords, generation)
        return IndexState(kb_id, name, vs_type, model, dim, folder, store, generation, saved, keywords)

    @staticmethod
    def _save_keywords(folder: Path, keywords: BM25Index | None, generation: int) -> None:
        if keywords is not None:
            folder.mkdir(parents=True, exist_ok=True)
            atomic_write_bytes(folder / KEYWORDS_FILE, keywords.to_bytes(generation))

    def _load_keywords(self, folder: Path, generation: int) -> BM25Index | None:
        if not self.keywords_in_memory:
            return None
        try:
            keywords, saved = BM25Index.from_bytes((folder / KEYWORDS_FILE).read_bytes())
        except (OSError, ValueError):
            return None
        return keywords if saved == generation else None

    def build_keywords(self, kb_id: int) -> BM25Index | None:
        """The in-memory BM25 snapshot, from the tokens stored in the FTS5 table (no re-tokenising of chunk text)."""
        if not self.keywords_in_memory:
            return None
        with self.db.read() as s:
            if not fulltext.available(s):
                return None
            return BM25Index.build(fulltext.rows(s, kb_id))

    def _check_keyword_index(self, kb_id: int, name: str) -> bool:
        """Rows written before the keyword index existed (or by a build without it) are indexed on open.
        Returns whether the FTS5 table was rebuilt."""
        with self.db.read() as s:
            if not fulltext.available(s):
                return False
            chunks, indexed = repo.chunk_count(s, kb_id), fulltext.count(s, kb_id)
        if chunks == indexed:
            return False
        log.warning("keyword index of %s has %d of %d chunks: rebuilding it", name, indexed, chunks)
        with self.db.session() as s:
            fulltext.remove_kb(s, kb_id)
            for rows in repo.iter_chunk_texts(s, kb_id):
                fulltext.add(s, kb_id, ((i, index_text(t)) for i, t in rows))
        return True

    def rebuild_store(self, kb_id: int, vs_type: str, dim: int) -> VectorStore:
        store = store_class(vs_type).empty(dim)
        with self.db.read() as s:
            for ids, vecs in repo.iter_embeddings(s, kb_id, dim):
                store.add(ids, vecs)
        return store

    def publish(
        self,
        state: IndexState,
        store: VectorStore,
        generation: int,
        added_keywords: Sequence[tuple[int, str]] = (),
        removed_ids: Sequence[int] = (),
    ) -> None:
        """Make a committed change visible to searches: the new vector store and the keyword snapshot updated by
        the same chunks (added as (chunk id, stored tokens), removed by id)."""
        if state.keywords is not None and (added_keywords or removed_ids):
            state.keywords = state.keywords.updated(added_keywords, removed_ids)
        state.store = store
        state.generation = generation

    def save(self, state: IndexState) -> None:
        if state.saved_generation != state.generation:
            state.store.save(state.folder, state.generation)
            self._save_keywords(state.folder, state.keywords, state.generation)
            state.saved_generation = state.generation

    def install(self, state: IndexState) -> None:
        """Publish a whole index built elsewhere (a recreate's staging KB, now swapped in under this name)."""
        with self._open_lock:
            self._states[state.name] = state

    def drop(self, name: str) -> None:
        self._states.pop(name, None)
