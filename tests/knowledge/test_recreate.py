"""recreate builds the new rows beside the old and swaps them in by one commit: a failure injected at each step
leaves the knowledge base exactly as it was (or, past the commit, wholly the new one)."""

from __future__ import annotations

import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select, text

from kbqa.db import fulltext
from kbqa.db import repository as repo
from kbqa.db.models import Chunk, KnowledgeBase, KnowledgeFile
from kbqa.embeddings.pool import EmbedderPool
from kbqa.errors import EmbeddingModelError, KBQAError
from kbqa.ingest.pipeline import embed_files
from kbqa.ingest.splitters import SplitConfig
from kbqa.knowledge.content import KBFolder
from kbqa.knowledge.index_cache import IndexCache
from kbqa.knowledge.service import KnowledgeBaseService
from kbqa.settings import Settings

KB = "docs"
BODY = (
    "Paragraph {i}: the API server of kbqa listens on port 7861 and the web UI on port 8501. "
    "知识库 {i} 号文档：上传的文件会被切分成小块，再计算向量。 "
) * 6


class Injected(RuntimeError):
    pass


@pytest.fixture
def svc(settings: Settings, embedders: EmbedderPool) -> KnowledgeBaseService:
    service = KnowledgeBaseService(settings, embedders=embedders)
    service.create_tables()
    service.create_kb(KB)
    content = service.folder(KB).content
    for i in range(6):
        (content / f"doc{i}.txt").write_text(BODY.format(i=i), encoding="utf-8")
    service.ingest(KB, split=SplitConfig(600, 50))
    return service


def snapshot(svc: KnowledgeBaseService) -> dict[str, Any]:
    """Everything a client can observe of the KB: its record, files, chunks, keyword rows and search answers."""
    with svc.db.read() as s:
        kb = s.scalars(select(KnowledgeBase).where(KnowledgeBase.name == KB)).one()
        files = sorted((f.path, f.sha256, f.chunk_count, f.chunk_size, f.status) for f in repo.list_files(s, kb.id))
        chunks = sorted((c.id, c.text) for c in s.scalars(select(Chunk).where(Chunk.kb_id == kb.id)))
        fts = sorted(s.scalars(text(f"SELECT rowid FROM {fulltext.table(kb.id)}")))
        record = (kb.id, kb.embed_model, kb.vs_type, kb.info, kb.generation)
    hits = [(h.chunk_id, h.path) for h in svc.search(KB, "which port does the web UI use", top_k=5)]
    return {"record": record, "files": files, "chunks": chunks, "fts": fts, "hits": hits}


def assert_no_staging(svc: KnowledgeBaseService) -> None:
    with svc.db.read() as s:
        assert repo.staging_names(s) == []
        kb_ids = set(s.scalars(select(KnowledgeBase.id)))
        assert set(s.scalars(select(KnowledgeFile.kb_id))) <= kb_ids
        assert set(s.scalars(select(Chunk.kb_id))) <= kb_ids


def reopened(svc: KnowledgeBaseService) -> KnowledgeBaseService:
    """A fresh service on the same files: what the next process start sees."""
    fresh = KnowledgeBaseService(svc.settings, embedders=svc.embedders)
    fresh.create_tables()
    return fresh


def test_recreate_replaces_rows_and_index_in_one_swap(svc: KnowledgeBaseService) -> None:
    before = snapshot(svc)
    (svc.folder(KB).content / "doc5.txt").unlink()  # a file gone from disk is gone after the recreate
    report = svc.recreate(KB, split=SplitConfig(120, 10))
    after = snapshot(svc)
    assert sorted(report.added) == [f"doc{i}.txt" for i in range(5)] and not report.failed
    assert [f[0] for f in after["files"]] == [f"doc{i}.txt" for i in range(5)]
    assert all(f[3] == 120 for f in after["files"])
    assert len(after["chunks"]) > len(before["chunks"]) * 5 // 6  # smaller chunks: more of them
    assert not {c for c, _ in before["chunks"]} & {c for c, _ in after["chunks"]}
    assert after["fts"] == [c for c, _ in after["chunks"]]
    assert after["record"][0] == before["record"][0]  # the same KB: its id is kept
    assert after["record"][3] == before["record"][3]  # kb_info kept
    assert after["record"][4] > before["record"][4]  # generation moved on: no old saved index matches
    assert after["hits"] and {p for _, p in after["hits"]} <= {f[0] for f in after["files"]}
    assert [kb.name for kb in svc.list_kbs()] == [KB]
    assert_no_staging(svc)
    # the saved index is the new one: a fresh process opens it without a rebuild and finds the same
    fresh = reopened(svc)
    assert snapshot(fresh) == after
    fresh.close()


def test_invalid_values_fail_before_any_write(svc: KnowledgeBaseService) -> None:
    before = snapshot(svc)
    with pytest.raises(KBQAError):
        svc.recreate(KB, vs_type="no-such-store")
    with pytest.raises(EmbeddingModelError):
        svc.recreate(KB, embed_model="no-such-model")
    assert snapshot(svc) == before
    assert_no_staging(svc)


def test_absurd_chunk_size_leaves_the_kb_as_it_was(svc: KnowledgeBaseService) -> None:
    """The reported data loss: a chunk_size past int64 failed after the rows were deleted."""
    before = snapshot(svc)
    with pytest.raises(OverflowError):
        svc.recreate(KB, split=SplitConfig(9223372036854775808, 50))
    assert snapshot(svc) == before
    assert_no_staging(svc)


def _fail_on_call(n: int, real: Callable[..., Any]) -> Callable[..., Any]:
    calls = {"n": 0}

    def wrapper(*args: Any, **kwargs: Any) -> Any:
        calls["n"] += 1
        if calls["n"] == n:
            raise Injected(f"injected on call {n}")
        return real(*args, **kwargs)

    return wrapper


def _raise_after(real: Callable[..., Any]) -> Callable[..., Any]:
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        real(*args, **kwargs)
        raise Injected("injected after the step ran")

    return wrapper


# Steps before the swap commit: the KB must come out exactly as it was.
BEFORE_COMMIT: dict[str, Callable[[pytest.MonkeyPatch, KnowledgeBaseService], None]] = {
    "staging row added": lambda mp, svc: mp.setattr(repo, "add_kb", _raise_after(repo.add_kb)),
    "first group parsed": lambda mp, svc: mp.setattr(svc, "_commit_group", _fail_on_call(1, svc._commit_group)),
    "some groups committed": lambda mp, svc: mp.setattr(svc, "_commit_group", _fail_on_call(3, svc._commit_group)),
    "embedding": lambda mp, svc: mp.setattr("kbqa.knowledge.service.embed_files", _fail_on_call(2, embed_files)),
    "inside the swap transaction": lambda mp, svc: mp.setattr(
        repo, "swap_in_staging", _raise_after(repo.swap_in_staging)
    ),
}


@pytest.mark.parametrize("step", list(BEFORE_COMMIT))
def test_failure_before_the_swap_leaves_the_kb_unchanged(
    svc: KnowledgeBaseService, monkeypatch: pytest.MonkeyPatch, step: str
) -> None:
    svc.settings.kb.commit_every = 1  # one file per commit: failures land between commits
    before = snapshot(svc)
    BEFORE_COMMIT[step](monkeypatch, svc)
    with pytest.raises(Injected):
        svc.recreate(KB, split=SplitConfig(120, 10))
    monkeypatch.undo()
    assert snapshot(svc) == before
    assert_no_staging(svc)
    fresh = reopened(svc)
    assert snapshot(fresh) == before
    fresh.close()


# Steps after the commit: the KB is wholly the new one, now and after a restart.
AFTER_COMMIT: dict[str, Callable[[pytest.MonkeyPatch, KnowledgeBaseService], None]] = {
    "old indexes removed": lambda mp, svc: mp.setattr(
        KBFolder, "remove_indexes", _raise_after(KBFolder.remove_indexes)
    ),
    "index published": lambda mp, svc: mp.setattr(IndexCache, "install", _raise_after(IndexCache.install)),
    "index saved": lambda mp, svc: mp.setattr(IndexCache, "save", _fail_on_call(1, IndexCache.save)),
}


@pytest.mark.parametrize("step", list(AFTER_COMMIT))
def test_failure_after_the_swap_leaves_the_new_kb(
    svc: KnowledgeBaseService, monkeypatch: pytest.MonkeyPatch, step: str
) -> None:
    before = snapshot(svc)
    AFTER_COMMIT[step](monkeypatch, svc)
    with pytest.raises(Injected):
        svc.recreate(KB, split=SplitConfig(120, 10))
    monkeypatch.undo()
    fresh = reopened(svc)  # the next start: the stale saved index is rebuilt from the stored rows
    after = snapshot(fresh)
    assert [f[0] for f in after["files"]] == [f[0] for f in before["files"]]
    assert all(f[3] == 120 for f in after["files"])
    assert after["fts"] == [c for c, _ in after["chunks"]]
    assert after["hits"] and {c for c, _ in after["hits"]} <= {c for c, _ in after["chunks"]}
    assert snapshot(svc) == after  # the running service agrees
    assert_no_staging(fresh)
    fresh.close()


def test_cancel_keeps_the_old_kb(svc: KnowledgeBaseService) -> None:
    svc.settings.kb.commit_every = 1
    before = snapshot(svc)
    cancel = threading.Event()

    def progress(event: dict[str, Any]) -> None:
        if event["finished"] >= 2:
            cancel.set()

    report = svc.recreate(KB, split=SplitConfig(120, 10), progress=progress, cancel=cancel)
    assert report.cancelled
    assert snapshot(svc) == before
    assert_no_staging(svc)


def test_searches_see_the_old_kb_until_the_swap(svc: KnowledgeBaseService) -> None:
    svc.settings.kb.commit_every = 1
    before = snapshot(svc)
    seen: list[list[tuple[int, str]]] = []

    def progress(event: dict[str, Any]) -> None:
        seen.append([(h.chunk_id, h.path) for h in svc.search(KB, "which port does the web UI use", top_k=5)])

    svc.recreate(KB, split=SplitConfig(120, 10), progress=progress)
    assert len(seen) == 6 and all(hits == before["hits"] for hits in seen)


def test_stale_staging_rows_are_dropped_on_the_next_start(svc: KnowledgeBaseService, tmp_path: Path) -> None:
    """What a kill -9 mid-recreate leaves: staging rows nobody holds a lock on."""
    svc.settings.kb.commit_every = 1
    before = snapshot(svc)
    original = svc._drop_staging
    svc._drop_staging = lambda staging: None  # type: ignore[method-assign]  # as if killed: no clean-up ran
    svc._commit_group = _fail_on_call(3, svc._commit_group)  # type: ignore[method-assign]
    with pytest.raises(Injected):
        svc.recreate(KB, split=SplitConfig(120, 10))
    svc._drop_staging = original  # type: ignore[method-assign]
    with svc.db.read() as s:
        assert repo.staging_names(s) == [repo.STAGING_PREFIX + KB]
    assert [kb.name for kb in svc.list_kbs()] == [KB]  # never listed
    fresh = reopened(svc)
    assert_no_staging(fresh)
    assert snapshot(fresh) == before
    fresh.close()
