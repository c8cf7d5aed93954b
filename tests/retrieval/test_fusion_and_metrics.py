from __future__ import annotations

import math

import pytest

from kbqa.retrieval.evaluate import GoldenSetError, parse_golden, score_ranking
from kbqa.retrieval.fusion import ordered, rrf, weighted


def test_rrf_by_hand() -> None:
    fused = rrf([([1, 2, 3], 1.0), ([3, 1], 1.0)], k=60)
    assert fused[1] == pytest.approx(1 / 61 + 1 / 62)
    assert fused[2] == pytest.approx(1 / 62)
    assert fused[3] == pytest.approx(1 / 63 + 1 / 61)
    assert [i for i, _ in ordered(fused)] == [1, 3, 2]


def test_rrf_weights_and_zero_weight_drops_a_ranking() -> None:
    fused = rrf([([1, 2], 2.0), ([2, 1], 0.0)], k=1)
    assert fused == {1: pytest.approx(1.0), 2: pytest.approx(2 / 3)}


def test_weighted_min_max() -> None:
    fused = weighted([([(1, 0.9), (2, 0.5), (3, 0.1)], 1.0), ([(3, 12.0), (4, 2.0)], 0.5)])
    assert fused[1] == pytest.approx(1.0)
    assert fused[2] == pytest.approx(0.5)
    assert fused[3] == pytest.approx(0.0 + 0.5)
    assert fused[4] == pytest.approx(0.0)
    assert weighted([([(7, 3.0)], 1.0)]) == {7: 1.0}


def test_metrics_by_hand() -> None:
    ranked = ["x", "a", "y", "b", "z"]
    m = score_ranking(ranked, {"a", "b"})
    assert m["recall@1"] == 0.0
    assert m["recall@5"] == 1.0
    assert m["mrr@10"] == 0.5
    dcg = 1 / math.log2(3) + 1 / math.log2(5)
    idcg = 1 + 1 / math.log2(3)
    assert m["ndcg@10"] == pytest.approx(dcg / idcg)
    assert score_ranking(["a"], {"a"}) == {
        "recall@1": 1.0,
        "recall@5": 1.0,
        "recall@10": 1.0,
        "mrr@10": 1.0,
        "ndcg@10": 1.0,
    }
    assert score_ranking([f"n{i}" for i in range(10)] + ["a"], {"a"})["mrr@10"] == 0.0  # rank 11 is past the cut


def test_golden_parsing_errors_name_the_line() -> None:
    items = parse_golden(
        ['{"query": "q", "relevant_files": ["a.md"]}', "", '{"query": "r", "relevant_chunk_ids": [3]}']
    )
    assert items[0].relevant_files == {"a.md"} and items[1].relevant_chunks == {3}
    with pytest.raises(GoldenSetError, match="line 2"):
        parse_golden(['{"query": "q", "relevant_files": ["a"]}', "{not json"])
    with pytest.raises(GoldenSetError, match="no relevant"):
        parse_golden(['{"query": "q"}'])
