from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from kbqa.store.faiss_store import FaissStore


def _unit(rng: np.random.Generator, n: int, d: int = 8) -> np.ndarray:
    v = rng.standard_normal((n, d)).astype(np.float32)
    return v / np.linalg.norm(v, axis=1, keepdims=True)


def test_add_search_remove_with_stable_ids() -> None:
    rng = np.random.default_rng(0)
    vecs = _unit(rng, 20)
    store = FaissStore.empty(8)
    ids = np.arange(100, 120, dtype=np.int64)
    store.add(ids, vecs)
    scores, found = store.search(vecs[5:6], 3)
    assert found[0][0] == 105
    assert abs(scores[0][0] - 1.0) < 2e-2  # int8 codes of 8-dim vectors: coarse, but the id is right
    assert store.remove(np.array([105, 999], dtype=np.int64)) == 1
    _, found = store.search(vecs[5:6], 3)
    assert 105 not in found[0]
    assert store.count() == 19


def test_int8_codes_keep_cosines_and_rankings_of_real_sized_vectors() -> None:
    rng = np.random.default_rng(3)
    vecs = _unit(rng, 2000, 384)
    store = FaissStore.empty(384)
    store.add(np.arange(2000, dtype=np.int64), vecs)
    # queries near known vectors, as real questions are near their passages
    targets = rng.choice(2000, 20, replace=False)
    queries = vecs[targets] + 0.05 * _unit(rng, 20, 384)
    queries /= np.linalg.norm(queries, axis=1, keepdims=True)
    scores, found = store.search(queries, 10)
    exact = queries @ vecs.T
    errors = np.abs(scores - np.take_along_axis(exact, found, axis=1))
    assert errors.max() < 5e-3 and errors.mean() < 1.5e-3  # rounding to int8 moves a cosine by ~1e-3
    assert found[:, 0].tolist() == targets.tolist()
    outlier = np.zeros((1, 384), np.float32)
    outlier[0, 0] = 1.0  # beyond the range the scale was chosen for: clipped, still found first
    store.add(np.array([5000], dtype=np.int64), outlier)
    assert store.search(outlier, 1)[1][0][0] == 5000


def test_copy_is_independent() -> None:
    rng = np.random.default_rng(1)
    store = FaissStore.empty(8)
    store.add(np.arange(5, dtype=np.int64), _unit(rng, 5))
    clone = store.copy()
    clone.remove(np.array([0, 1], dtype=np.int64))
    assert store.count() == 5 and clone.count() == 3


def test_save_load_round_trip_and_generation(tmp_path: Path) -> None:
    rng = np.random.default_rng(2)
    vecs = _unit(rng, 10)
    store = FaissStore.empty(8)
    store.add(np.arange(10, dtype=np.int64), vecs)
    store.save(tmp_path, 7)
    store.remove(np.array([0], dtype=np.int64))
    store.save(tmp_path, 8)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["CURRENT", "index-8.faiss"]
    loaded = FaissStore.load(tmp_path, 8)
    assert loaded is not None
    again, generation = loaded
    assert generation == 8 and again.count() == 9
    assert FaissStore.load(tmp_path, 16) is None  # wrong dimension is refused, not misread


def test_an_index_saved_with_float16_codes_is_not_loaded(tmp_path: Path) -> None:
    rng = np.random.default_rng(4)
    store = FaissStore.empty(8)
    store.add(np.arange(4, dtype=np.int64), _unit(rng, 4))
    store.save(tmp_path, 3)
    pointer = json.loads((tmp_path / "CURRENT").read_text())
    loaded = FaissStore.load(tmp_path, 8)
    assert loaded is not None and loaded[0].scale == store.scale
    del pointer["codec"], pointer["scale"]  # what earlier versions wrote: the caller rebuilds from the database
    (tmp_path / "CURRENT").write_text(json.dumps(pointer))
    assert FaissStore.load(tmp_path, 8) is None


def test_load_tolerates_missing_or_corrupt_files(tmp_path: Path) -> None:
    assert FaissStore.load(tmp_path, 8) is None
    (tmp_path / "CURRENT").write_text('{"generation": 3}')
    assert FaissStore.load(tmp_path, 8) is None
    (tmp_path / "index-3.faiss").write_bytes(b"garbage")
    assert FaissStore.load(tmp_path, 8) is None
