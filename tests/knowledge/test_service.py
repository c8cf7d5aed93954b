"""KnowledgeBaseService on real FAISS, real SQLite and the bundled multilingual embedding model."""

from __future__ import annotations

import io
import threading
import time
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pytest
from sqlalchemy import func, select

from kbqa.db.models import Chunk, KnowledgeFile
from kbqa.embeddings.base import Embedder
from kbqa.embeddings.pool import EmbedderPool
from kbqa.errors import FileExistsInKB, FileNotInKB, InvalidName, InvalidPath, KBExists, KBNotFound
from kbqa.ingest.document import Document
from kbqa.ingest.splitters import SplitConfig
from kbqa.knowledge.service import KnowledgeBaseService
from kbqa.settings import EmbeddingSettings, Settings

EN = (
    "kbqa answers questions from your documents. The API server listens on port 7861 and the web UI on port 8501. "
    "Uploads are parsed, split into chunks and embedded into a FAISS index."
)
ZH = "知识库的元数据保存在 SQLite 数据库里。向量保存在 FAISS 索引中，数据库是唯一的事实来源。上传的文件会被切分成小块。"
ZH2 = "熊猫是中国的国宝，主要生活在四川的竹林里，每天要吃大量的竹子。"


class CountingEmbedder:
    """The real model, with a count of the texts it was asked to embed."""

    def __init__(self, inner: Embedder) -> None:
        self.inner = inner
        self.name = inner.name
        self.dim = inner.dim
        self.documents = 0
        self.calls = 0

    def embed_documents(self, texts: Sequence[str]) -> np.ndarray:
        self.documents += len(texts)
        self.calls += 1
        return self.inner.embed_documents(texts)

    def embed_query(self, text: str) -> np.ndarray:
        return self.inner.embed_query(text)

    def token_count(self, texts: Sequence[str]) -> int:
        return self.inner.token_count(texts)


@pytest.fixture
def counting(settings: Settings, embedders: EmbedderPool) -> CountingEmbedder:
    return CountingEmbedder(embedders.get(settings.embedding.model))


@pytest.fixture
def svc(settings: Settings, counting: CountingEmbedder) -> KnowledgeBaseService:
    pool = EmbedderPool(EmbeddingSettings())
    pool.register(settings.embedding.model, counting)
    service = KnowledgeBaseService(settings, embedders=pool)
    service.create_tables()
    return service


def upload(svc: KnowledgeBaseService, kb: str, rel: str, data: str | bytes, override: bool = True) -> None:
    raw = data.encode() if isinstance(data, str) else data
    svc.save_upload(kb, rel, io.BytesIO(raw), override=override)


def chunk_rows(svc: KnowledgeBaseService) -> int:
    with svc.db.read() as s:
        return int(s.scalar(select(func.count()).select_from(Chunk)) or 0)


def test_create_list_and_duplicate(svc: KnowledgeBaseService) -> None:
    kb = svc.create_kb("docs", info="测试")
    assert (kb.name, kb.info, kb.vs_type, kb.embed_model, kb.embed_dim) == (
        "docs",
        "测试",
        "faiss",
        "multilingual-e5-small",
        384,
    )
    with pytest.raises(KBExists):
        svc.create_kb("docs")
    with pytest.raises(InvalidName):
        svc.create_kb("../escape")
    assert [k.name for k in svc.list_kbs()] == ["docs"]
    assert (svc.kb_root / "docs" / "content").is_dir()


def test_ingest_search_english_and_chinese_with_sources(svc: KnowledgeBaseService) -> None:
    svc.create_kb("docs")
    upload(svc, "docs", "guide/en.txt", EN)
    upload(svc, "docs", "zh/说明.md", ZH)
    upload(svc, "docs", "zh/熊猫.txt", ZH2)
    report = svc.ingest("docs")
    assert sorted(report.added) == ["guide/en.txt", "zh/熊猫.txt", "zh/说明.md"] and not report.failed
    hits = svc.search("docs", "Which port does the web UI use?", top_k=3)
    assert hits[0].path == "guide/en.txt"
    assert 0.0 <= hits[-1].relevance <= hits[0].relevance <= 1.0
    assert abs(hits[0].distance - (2 - 2 * hits[0].cosine)) < 1e-6
    hits = svc.search("docs", "元数据存在哪里？", top_k=1)
    assert hits[0].path == "zh/说明.md" and hits[0].metadata["source"] == "zh/说明.md"
    assert svc.search("docs", "大熊猫吃什么", top_k=1)[0].path == "zh/熊猫.txt"


def test_score_threshold_keeps_chatchat_meaning(svc: KnowledgeBaseService) -> None:
    svc.create_kb("docs")
    upload(svc, "docs", "en.txt", EN)
    upload(svc, "docs", "panda.txt", ZH2)
    svc.ingest("docs")
    everything = svc.search("docs", "web UI port", top_k=5, score_threshold=2.0)
    assert len(everything) == 2
    cut = (everything[0].distance + everything[1].distance) / 2
    strict = svc.search("docs", "web UI port", top_k=5, score_threshold=cut)
    assert [h.path for h in strict] == [everything[0].path]
    assert svc.search("docs", "web UI port", top_k=5, score_threshold=0.0) == []


def test_unchanged_files_do_no_work_and_changed_file_replaces_only_its_chunks(
    svc: KnowledgeBaseService, counting: CountingEmbedder
) -> None:
    svc.create_kb("docs")
    upload(svc, "docs", "en.txt", EN)
    upload(svc, "docs", "zh.txt", ZH)
    svc.ingest("docs")
    first = counting.documents
    assert first >= 2
    with svc.db.read() as s:
        zh_ids_before = sorted(s.scalars(select(Chunk.id).join(KnowledgeFile).where(KnowledgeFile.path == "zh.txt")))

    report = svc.ingest("docs")
    assert sorted(report.skipped) == ["en.txt", "zh.txt"] and counting.documents == first  # no model call at all

    upload(svc, "docs", "en.txt", EN + " A new sentence about backups was added today.")
    report = svc.ingest("docs")
    assert report.updated == ["en.txt"] and report.skipped == ["zh.txt"]
    # only the new text went through the model; the unchanged chunk text was reused from the DB
    assert 0 < counting.documents - first <= 2
    with svc.db.read() as s:
        zh_ids_after = sorted(s.scalars(select(Chunk.id).join(KnowledgeFile).where(KnowledgeFile.path == "zh.txt")))
        versions = dict(s.execute(select(KnowledgeFile.path, KnowledgeFile.version)).all())
    assert zh_ids_after == zh_ids_before
    assert versions == {"en.txt": 2, "zh.txt": 1}
    state = svc.indexes.get("docs", svc._index_folder)
    assert state.store.count() == chunk_rows(svc)
    assert "backups" in svc.search("docs", "backups", top_k=1)[0].text


def test_changing_split_settings_reprocesses(svc: KnowledgeBaseService) -> None:
    svc.create_kb("docs")
    upload(svc, "docs", "en.txt", EN)
    svc.ingest("docs")
    report = svc.ingest("docs", split=SplitConfig(chunk_size=80, chunk_overlap=10))
    assert report.updated == ["en.txt"]
    assert svc.get_file("docs", "en.txt").chunk_count > 1


def test_bad_files_fail_alone(svc: KnowledgeBaseService) -> None:
    svc.create_kb("docs")
    upload(svc, "docs", "good.txt", EN)
    upload(svc, "docs", "broken.pdf", b"%PDF-1.4 this is not really a pdf")
    upload(svc, "docs", "broken.docx", b"PK\x03\x04 not a zip")
    upload(svc, "docs", "archive.xyz", b"whatever")
    upload(svc, "docs", "empty.txt", b"")
    report = svc.ingest("docs")
    assert report.added == ["empty.txt", "good.txt"] or sorted(report.added) == ["empty.txt", "good.txt"]
    assert set(report.failed) == {"broken.pdf", "broken.docx", "archive.xyz"}
    assert "Traceback" not in "".join(report.failed.values())
    files = {f.path: f for f in svc.list_files("docs")}
    assert files["broken.pdf"].status == "error" and files["broken.pdf"].error
    assert files["good.txt"].status == "ready" and files["good.txt"].chunk_count == 1
    # An unsupported type is not parsed, but its failure is recorded (listed, not retried while unchanged).
    assert files["archive.xyz"].status == "error" and "not supported" in files["archive.xyz"].error
    assert files["archive.xyz"].chunk_count == 0 and files["archive.xyz"].failed_at is not None
    assert svc.search("docs", "web UI port", top_k=1)[0].path == "good.txt"


def test_delete_files_and_content(svc: KnowledgeBaseService) -> None:
    svc.create_kb("docs")
    upload(svc, "docs", "a/en.txt", EN)
    upload(svc, "docs", "zh.txt", ZH)
    svc.ingest("docs")
    failed = svc.delete_files("docs", ["a/en.txt", "missing.txt", "../x"], delete_content=True)
    assert set(failed) == {"missing.txt", "../x"}
    assert svc.file_names("docs") == ["zh.txt"]
    assert not (svc.kb_root / "docs" / "content" / "a").exists()  # emptied sub-folder removed too
    assert all(h.path == "zh.txt" for h in svc.search("docs", "web UI port", top_k=3))
    svc.delete_files("docs", ["zh.txt"])
    assert (svc.kb_root / "docs" / "content" / "zh.txt").exists()
    assert svc.search("docs", "数据库", top_k=3) == []


def test_names_match_exactly_never_as_wildcards(svc: KnowledgeBaseService) -> None:
    for name in ("a_b", "axb", "_"):
        svc.create_kb(name)
    upload(svc, "axb", "f_1.txt", EN)
    upload(svc, "axb", "fx1.txt", ZH)
    svc.ingest("axb")
    svc.delete_kb("a_b")
    assert [k.name for k in svc.list_kbs()] == ["_", "axb"]
    svc.delete_files("axb", ["f_1.txt"])
    assert svc.file_names("axb") == ["fx1.txt"]
    with pytest.raises(KBNotFound):
        svc.get_kb("a_b")
    assert svc.get_kb("axb").file_count == 1
    with pytest.raises(InvalidName):
        svc.get_kb("a%")


def test_upload_refuses_overwrite_and_escape(svc: KnowledgeBaseService) -> None:
    svc.create_kb("docs")
    upload(svc, "docs", "a.txt", EN)
    with pytest.raises(FileExistsInKB):
        upload(svc, "docs", "a.txt", ZH, override=False)
    for hostile in ("../evil.txt", "/tmp/evil.txt", "..\\evil.txt", "a/../../evil.txt"):
        with pytest.raises(InvalidPath):
            upload(svc, "docs", hostile, "x")
    assert not (svc.kb_root / "evil.txt").exists() and not (svc.kb_root / "docs" / "evil.txt").exists()
    assert [p.name for p in (svc.kb_root / "docs").iterdir() if p.name.startswith(".kbqa-tmp")] == []


def test_stale_or_missing_index_is_rebuilt_from_db_without_the_model(
    svc: KnowledgeBaseService, settings: Settings, counting: CountingEmbedder
) -> None:
    svc.create_kb("docs")
    upload(svc, "docs", "en.txt", EN)
    upload(svc, "docs", "zh.txt", ZH)
    svc.ingest("docs")
    index_dir = svc.kb_root / "docs" / "vector_store" / "multilingual-e5-small"
    for f in index_dir.iterdir():
        f.unlink()
    embedded = counting.documents
    pool = EmbedderPool(EmbeddingSettings())
    pool.register(settings.embedding.model, counting)
    reopened = KnowledgeBaseService(settings, embedders=pool)
    assert reopened.search("docs", "web UI port", top_k=1)[0].path == "en.txt"
    assert counting.documents == embedded
    assert (index_dir / "CURRENT").exists()


def test_other_process_writes_are_picked_up(
    svc: KnowledgeBaseService, settings: Settings, embedders: EmbedderPool
) -> None:
    svc.create_kb("docs")
    upload(svc, "docs", "en.txt", EN)
    svc.ingest("docs")
    assert svc.search("docs", "熊猫", top_k=5)[0].path == "en.txt"
    other = KnowledgeBaseService(settings, embedders=embedders)  # e.g. init_database.py run beside the API server
    upload(other, "docs", "panda.txt", ZH2)
    other.ingest("docs")
    assert svc.search("docs", "熊猫吃竹子", top_k=1)[0].path == "panda.txt"


def test_custom_docs_are_indexed_as_given(svc: KnowledgeBaseService) -> None:
    svc.create_kb("docs")
    upload(svc, "docs", "FAQ.md", "# FAQ\n\nThe parsed text, replaced by the custom docs.\n")
    svc.add_documents("docs", "FAQ.md", [Document("Q: Where are logs? A: In the logs folder.", {"q": 1})])
    info = svc.get_file("docs", "FAQ.md")
    assert info.custom_docs and info.chunk_count == 1 and info.in_folder
    assert svc.file_chunks("docs", "FAQ.md")[0].metadata["q"] == 1


def test_custom_docs_need_their_file_in_the_content_folder(svc: KnowledgeBaseService) -> None:
    svc.create_kb("docs")
    with pytest.raises(FileNotInKB):
        svc.add_documents("docs", "ghost.md", [Document("never indexed", {})])
    assert svc.file_names("docs") == []


def test_recreate_with_another_embedding_model(svc: KnowledgeBaseService, embedders: EmbedderPool) -> None:
    svc.embedders.register("all-MiniLM-L6-v2", embedders.get("all-MiniLM-L6-v2"))
    svc.create_kb("docs")
    upload(svc, "docs", "en.txt", EN)
    svc.ingest("docs")
    report = svc.recreate("docs", embed_model="all-MiniLM-L6-v2")
    assert report.added == ["en.txt"]
    kb = svc.get_kb("docs")
    assert (kb.embed_model, kb.chunk_count) == ("all-MiniLM-L6-v2", 1)
    assert svc.search("docs", "web UI port", top_k=1)[0].path == "en.txt"
    assert (svc.kb_root / "docs" / "vector_store" / "all-MiniLM-L6-v2" / "CURRENT").exists()


def test_delete_kb_removes_everything(svc: KnowledgeBaseService) -> None:
    svc.create_kb("docs")
    upload(svc, "docs", "en.txt", EN)
    svc.ingest("docs")
    svc.delete_kb("docs")
    assert not (svc.kb_root / "docs").exists()
    assert chunk_rows(svc) == 0
    with pytest.raises(KBNotFound):
        svc.search("docs", "anything")


def test_searches_do_not_wait_for_a_writer(svc: KnowledgeBaseService, tmp_path: Path) -> None:
    svc.create_kb("docs")
    upload(svc, "docs", "en.txt", EN)
    svc.ingest("docs")
    for i in range(40):
        upload(svc, "docs", f"bulk/{i}.txt", f"Document {i}. " + ZH2 * 3)
    writer = threading.Thread(target=svc.ingest, args=("docs",))
    writer.start()
    latencies = []
    results = []
    while writer.is_alive():
        t0 = time.perf_counter()
        results.append(svc.search("docs", "web UI port", top_k=1)[0].path)
        latencies.append(time.perf_counter() - t0)
    writer.join()
    assert results and set(results) == {"en.txt"}  # every search answered from a committed snapshot
    assert svc.get_kb("docs").file_count == 41
