"""The in-memory BM25 snapshot against SQLite FTS5's own bm25() over the same stored tokens."""

from __future__ import annotations

import random
import sqlite3

import numpy as np
import pytest

from kbqa.ingest.keywords import index_text, match_tokens, tokenize
from kbqa.knowledge.bm25_index import BM25Index, terms

TEXTS = [
    "Green tea is made from unoxidised leaves; black tea is oxidised before drying.",
    "Oolong tea is partly oxidised, between green and black teas.",
    "The error code XJ-4471 means the index generation does not match the database.",
    "Running the indexer again rebuilds every index from the stored embeddings.",
    "大熊猫主要生活在四川的竹林里，每天要吃大量的竹子。",
    "中国的高速铁路网络是世界上最长的，复兴号列车的最高运营时速达到三百五十公里。",
    "Café owners in Zürich serve coffee and tea; the café opens at seven.",
    "Indexes, indexing and indexed rows: the stemmer folds them into one term.",
]
QUERIES = ["oxidised tea leaves", "XJ-4471", "indexing", "竹林", "复兴号 时速", "cafe zurich", "black green teas"]


def fts5(rows: list[tuple[int, str]]) -> sqlite3.Connection:
    con = sqlite3.connect(":memory:")
    con.execute("CREATE VIRTUAL TABLE t USING fts5(tokens, tokenize='porter unicode61')")
    con.executemany("INSERT INTO t(rowid, tokens) VALUES (?, ?)", rows)
    return con


def fts5_search(con: sqlite3.Connection, query: str, limit: int = 50) -> list[tuple[int, float]]:
    match = match_tokens(tokenize(query))
    assert match is not None
    sql = "SELECT rowid, -bm25(t) FROM t WHERE t MATCH ? ORDER BY bm25(t), rowid LIMIT ?"
    return [(int(i), float(s)) for i, s in con.execute(sql, (match, limit))]


def assert_same(found: list[tuple[int, float]], expected: list[tuple[int, float]]) -> None:
    """Same scores in the same order; equal scores (to float rounding) may come in any order, and at the cut of the
    limit either of two tied chunks may be the one kept."""
    assert [s for _, s in found] == pytest.approx([s for _, s in expected], rel=1e-5)
    cut = expected[-1][1] if expected else 0.0
    clear = {i: s for i, s in expected if s > cut * (1 + 1e-5)}
    mine = dict(found)
    assert set(clear) <= set(mine)
    assert [mine[i] for i in clear] == pytest.approx(list(clear.values()), rel=1e-5)


def test_terms_fold_case_diacritics_and_stems_like_fts5_porter() -> None:
    assert terms(index_text("Indexes indexing INDEXED")) == ["index", "index", "index"]
    assert terms(index_text("ecology ecological possibly")) == ["ecolog", "ecolog", "possibl"]  # Porter's C rules
    assert terms(index_text("Café Zürich đại")) == ["cafe", "zurich", "đai"]
    assert terms(index_text("复兴号列车")) == tokenize("复兴号列车")  # CJK words are kept whole
    assert terms("xj 4471 don't s") == ["xj", "4471", "don", "t", "s"]


def test_scores_and_order_match_sqlite_fts5_bm25() -> None:
    rows = [(10 + n, index_text(t)) for n, t in enumerate(TEXTS)]
    con = fts5(rows)
    index = BM25Index.build(rows)
    assert len(index) == len(rows)
    for query in QUERIES:
        expected = fts5_search(con, query)
        assert expected, query
        assert_same(index.search(tokenize(query), 50), expected)
    assert index.search(tokenize("zebra unicorn"), 5) == []


def test_updates_and_deletes_match_a_fresh_build_and_fts5() -> None:
    rng = random.Random(7)
    words = [
        "tea",
        "leaf",
        "index",
        "table",
        "error",
        "code",
        "panda",
        "bamboo",
        "train",
        "speed",
        "coffee",
        "green",
        "black",
        "river",
        "stone",
    ]
    live: dict[int, str] = {}
    index = BM25Index()
    next_id = 1
    for _ in range(40):  # many small commits: adds, re-ingests (delete + add) and deletes
        removed = rng.sample(sorted(live), k=min(len(live), rng.randint(0, 3)))
        added = []
        for _ in range(rng.randint(0, 6)):
            added.append((next_id, " ".join(rng.choices(words, k=rng.randint(3, 12)))))
            next_id += 1
        index = index.updated(added, removed)
        for chunk_id in removed:
            del live[chunk_id]
        live.update(added)
    assert len(index) == len(live)
    assert index.segment_count <= 8  # small segments were merged
    rows = sorted(live.items())
    con, fresh = fts5(rows), BM25Index.build(rows)
    for query in ["tea leaf", "panda bamboo train", "coffee", "stone river green black"]:
        assert_same(index.search(tokenize(query), 20), fts5_search(con, query, 20))
        assert_same(fresh.search(tokenize(query), 20), fts5_search(con, query, 20))
    everything = index.updated(removed=list(live))
    assert len(everything) == 0 and everything.search(["tea"], 5) == []


def test_allowed_ids_filter_before_the_limit() -> None:
    rows = [(n, "tea " * (n % 5 + 1)) for n in range(1, 101)]
    index = BM25Index.build(rows)
    allowed = np.asarray([3, 50, 99], dtype=np.int64)
    found = index.search(["tea"], 2, allowed)
    assert len(found) == 2 and {i for i, _ in found} <= {3, 50, 99}
    assert index.search(["tea"], 10, np.zeros(0, np.int64)) == []


def test_saved_snapshot_round_trips_and_garbage_is_refused() -> None:
    rows = [(10 + n, index_text(t)) for n, t in enumerate(TEXTS)]
    index = BM25Index.build(rows[:5]).updated(rows[5:], removed=[11])
    loaded, generation = BM25Index.from_bytes(index.to_bytes(42))
    assert generation == 42 and len(loaded) == len(index) == len(rows) - 1
    for query in QUERIES:
        assert loaded.search(tokenize(query), 10) == index.search(tokenize(query), 10)
    empty, _ = BM25Index.from_bytes(BM25Index().to_bytes(1))
    assert len(empty) == 0
    for junk in (b"", b"garbage", index.to_bytes(1)[:100]):
        with pytest.raises(ValueError):
            BM25Index.from_bytes(junk)


def test_term_cache_reset_keeps_words_resolved_earlier(monkeypatch: pytest.MonkeyPatch) -> None:
    import kbqa.knowledge.bm25_index as bm25

    monkeypatch.setattr(bm25, "_CACHE_LIMIT", 5)
    assert terms("running jumps") == ["run", "jump"]
    assert terms("running jumps swimming quickly tables indexes") == ["run", "jump", "swim", "quickli", "tabl", "index"]
    assert terms("running") == ["run"]  # a word known before the reset is resolved again


def test_paged_build_and_capped_segments_rank_as_one_index(monkeypatch: pytest.MonkeyPatch) -> None:
    import kbqa.knowledge.bm25_index as bm25

    rng = random.Random(11)
    words = ["tea", "leaf", "index", "panda", "bamboo", "train", "coffee", "river", "stone", "green"]
    rows = [(n, " ".join(rng.choices(words, k=rng.randint(2, 9)))) for n in range(1, 121)]
    monkeypatch.setattr(bm25, "_BUILD_PAGE", 7)  # as a KB of millions of chunks is built: page by page
    monkeypatch.setattr(bm25, "_MAX_SEGMENT_DOCS", 30)
    paged = BM25Index.build(rows)
    assert 4 <= paged.segment_count <= 8 and len(paged) == 120
    con = fts5(rows)
    for query in ["tea leaf", "panda", "coffee river stone", "green bamboo train index"]:
        assert_same(paged.search(tokenize(query), 25), fts5_search(con, query, 25))
    fewer = paged.updated(removed=range(1, 61))
    con.execute("DELETE FROM t WHERE rowid <= 60")
    for query in ["tea leaf", "coffee river stone"]:
        assert_same(fewer.search(tokenize(query), 25), fts5_search(con, query, 25))
