from __future__ import annotations

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
    assert abs(scores[0][0] - 1.0) < 1e-3  # float16 codes
    assert store.remove(np.array([105, 999], dtype=np.int64)) == 1
    _, found = store.search(vecs[5:6], 3)
    assert 105 not in found[0]
    assert store.count() == 19


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


def test_load_tolerates_missing_or_corrupt_files(tmp_path: Path) -> None:
    assert FaissStore.load(tmp_path, 8) is None
    (tmp_path / "CURRENT").write_text('{"generation": 3}')
    assert FaissStore.load(tmp_path, 8) is None
    (tmp_path / "index-3.faiss").write_bytes(b"garbage")
    assert FaissStore.load(tmp_path, 8) is None
