"""Search latency at 100,000 chunks: index search + hydration, full hybrid search, and bare query embedding.

The KB is filled directly through the repository with synthetic unit vectors (the index part does not care where
vectors come from) and 250-character windows of the development corpora as chunk text (so the BM25 index has a real
term distribution); queries are the corpora's real queries (Wikipedia descriptions, news titles). Then:

- index search + hydration: FAISS top-k over 100k vectors + fetching the k chunk rows (the query vector is given);
- keyword search: BM25 over the same chunks, from the in-memory snapshot (the default) and from SQLite FTS5's bm25();
- full search: Retriever.search (query embedding + dense + keyword + fusion + hydration), default settings;
- bare query embedding of the same queries with the same model, in the same run.

Targets: index search + hydration p50 <= 10 ms; full search p50 <= 1.5 x bare query embedding p50.

    python benchmarks/search.py [--chunks 100000] [--queries 200]
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
import tracemalloc
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
sys.path.insert(0, str(Path(__file__).resolve().parent))

import numpy as np

from kbqa.db import fulltext
from kbqa.db import repository as repo
from kbqa.db.models import KnowledgeFile
from kbqa.ingest.keywords import index_text, match_tokens, tokenize
from kbqa.knowledge.bm25_index import BM25Index
from kbqa.knowledge.service import KnowledgeBaseService
from kbqa.retrieval.retriever import RetrievalOptions, Retriever
from kbqa.settings import load_settings

REPO = Path(__file__).resolve().parent.parent
CHUNK_CHARS = 250


def real_texts() -> tuple[list[str], list[str]]:
    """Development-corpus documents (English Wikipedia summaries + Chinese news) and their real queries."""
    from corpora import inews_items, wiki_items

    docs, queries = [], []
    for items in (wiki_items(), inews_items()):
        docs.extend(doc for _, _, doc in items)
        queries.extend(query for _, query, _ in items)
    return docs, queries


def pct(values: list[float], q: float) -> float:
    return float(np.percentile(values, q))


def fill(service: KnowledgeBaseService, kb: str, n_chunks: int, dim: int, rng: np.random.Generator) -> None:
    """Chunks are 250-character windows at random offsets of real documents (about 3 windows per character of the
    corpora at 100k chunks), so the keyword index sees a real term distribution; vectors are random unit vectors."""
    docs, _ = real_texts()
    state = service.index_state(kb)
    per_file = 100
    with service.db.session() as s:
        for f in range(0, n_chunks, per_file):
            row = KnowledgeFile(kb_id=state.kb_id, path=f"synthetic/{f // per_file:05d}.txt", status="ready")
            s.add(row)
            s.flush()
            count = min(per_file, n_chunks - f)
            vecs = rng.standard_normal((count, dim)).astype(np.float32)
            vecs /= np.linalg.norm(vecs, axis=1, keepdims=True)
            chunks = []
            for i in range(count):
                doc = docs[int(rng.integers(len(docs)))]
                start = int(rng.integers(max(1, len(doc) - CHUNK_CHARS)))
                text = doc[start : start + CHUNK_CHARS]
                chunks.append(repo.NewChunk(i, text, f"{f}-{i}", {"page": 1}, vecs[i], index_text(text)))
            repo.insert_chunks(s, state.kb_id, row.id, chunks)
            row.chunk_count = count
        repo.bump_generation(s, state.kb_id)


def codec_scan_ms(n: int, dim: int, rng: np.random.Generator, queries: int = 200) -> dict[str, float]:
    """p50 of a one-query, one-thread exhaustive scan over n random unit vectors, per FAISS code type."""
    import faiss

    faiss.omp_set_num_threads(1)
    x = rng.standard_normal((n, dim)).astype(np.float32)
    x /= np.linalg.norm(x, axis=1, keepdims=True)
    q = rng.standard_normal((queries, dim)).astype(np.float32)
    q /= np.linalg.norm(q, axis=1, keepdims=True)
    sq = faiss.ScalarQuantizer
    kinds = {
        "float32 (IndexFlatIP)": None,
        "float16 codes": sq.QT_fp16,
        "bf16 codes": sq.QT_bf16,
        "8-bit, trained ranges": sq.QT_8bit,
        "int8 direct (kbqa)": sq.QT_8bit_direct_signed,
    }
    found = {}
    for name, qt in kinds.items():
        if qt is None:
            index = faiss.IndexFlatIP(dim)
            data = x
        else:
            index = faiss.IndexScalarQuantizer(dim, qt, faiss.METRIC_INNER_PRODUCT)
            data = np.rint(x * 127 / np.abs(x).max()) if qt == sq.QT_8bit_direct_signed else x
            index.train(data)
        index.add(data)
        times = []
        for v in q:
            t = time.perf_counter()
            index.search(v.reshape(1, -1), 50)
            times.append((time.perf_counter() - t) * 1000)
        found[name] = pct(times, 50)
    return found


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--chunks", type=int, default=100_000)
    ap.add_argument("--queries", type=int, default=200)
    ap.add_argument("--top-k", type=int, default=3)
    args = ap.parse_args()
    rng = np.random.default_rng(0)

    work = Path(tempfile.mkdtemp(prefix="kbqa-search-"))
    settings = load_settings(REPO / "configs" / "settings.yaml", root=str(work), paths={"kb_root": str(work / "kb")})
    service = KnowledgeBaseService(settings)
    service.create_tables()
    service.create_kb("bench")
    dim = service.get_kb("bench").embed_dim
    t0 = time.perf_counter()
    fill(service, "bench", args.chunks, dim, rng)
    print(f"filled {args.chunks} chunks in {time.perf_counter() - t0:.1f}s")
    t0 = time.perf_counter()
    state = service.index_state("bench")  # stale generation: rebuilt from the stored vectors
    print(
        f"index rebuilt from the database in {time.perf_counter() - t0:.2f}s ({state.store.count()} vectors, "
        f"BM25 snapshot of {len(state.keywords or [])} chunks)"
    )
    tracemalloc.start()
    t0 = time.perf_counter()
    snapshot = service.indexes.build_keywords(state.kb_id)
    built_s = time.perf_counter() - t0
    held = tracemalloc.get_traced_memory()[0]
    tracemalloc.stop()
    assert snapshot is not None
    image = snapshot.to_bytes(0)
    t0 = time.perf_counter()
    BM25Index.from_bytes(image)
    print(
        f"in-memory BM25 snapshot: built from the FTS5 table in {built_s:.2f}s, holds {held / 2**20:.0f} MiB; "
        f"saved image {len(image) / 2**20:.0f} MiB, loaded in {time.perf_counter() - t0:.2f}s"
    )
    del snapshot, image

    _, all_queries = real_texts()
    queries = [all_queries[int(i)] for i in rng.choice(len(all_queries), args.queries, replace=False)]
    qvecs = rng.standard_normal((args.queries, dim)).astype(np.float32)
    qvecs /= np.linalg.norm(qvecs, axis=1, keepdims=True)

    index_ms = []
    for q in qvecs:
        t = time.perf_counter()
        hits = service.search_vector(state, q, args.top_k)
        index_ms.append((time.perf_counter() - t) * 1000)
        assert len(hits) == args.top_k
    keyword_ms, sqlite_ms = [], []
    assert state.keywords is not None
    tokens = {q: tokenize(q) for q in queries}  # jieba's segmentation is shared by both paths: not timed here
    for q in queries:
        t = time.perf_counter()
        state.keywords.search(tokens[q], settings.retrieval.candidates)
        keyword_ms.append((time.perf_counter() - t) * 1000)
        t = time.perf_counter()
        with service.db.read() as s:
            fulltext.search(s, [state.kb_id], match_tokens(tokens[q]) or "x", settings.retrieval.candidates)
        sqlite_ms.append((time.perf_counter() - t) * 1000)

    embedder = service.embedders.get(state.embed_model)
    retriever = Retriever(service, settings)
    for q in queries[:5]:  # warm-up of both paths
        embedder.embed_query(q)
        retriever.search("bench", q, RetrievalOptions(top_k=args.top_k))
    embed_ms, full_ms = [], []
    for q in queries:  # interleaved, so machine noise hits both alike
        t = time.perf_counter()
        embedder.embed_query(q)
        embed_ms.append((time.perf_counter() - t) * 1000)
        t = time.perf_counter()
        retriever.search("bench", q, RetrievalOptions(top_k=args.top_k))
        full_ms.append((time.perf_counter() - t) * 1000)

    rows = [
        ("index search + hydration", index_ms),
        ("keyword (in-memory BM25)", keyword_ms),
        ("keyword (SQLite FTS5 bm25)", sqlite_ms),
        ("bare query embedding", embed_ms),
        ("full hybrid search", full_ms),
    ]
    print(f"{args.chunks} chunks, dim {dim}, top_k {args.top_k}, {args.queries} queries, model {state.embed_model}")
    print(f"{'stage':<30}{'p50 ms':>10}{'p99 ms':>10}{'mean ms':>10}")
    for name, values in rows:
        print(f"{name:<30}{pct(values, 50):>10.2f}{pct(values, 99):>10.2f}{statistics.fmean(values):>10.2f}")
    ratio = pct(full_ms, 50) / pct(embed_ms, 50)
    print(f"one-query scan of {args.chunks} random vectors, one thread, p50 by code type:")
    for name, ms in codec_scan_ms(args.chunks, dim, rng).items():
        print(f"  {name:<26}{ms:>8.2f} ms")
    print(f"index search + hydration p50 {pct(index_ms, 50):.2f} ms (target <= 10 ms)")
    print(f"full search / bare embedding (p50) = {ratio:.2f} (target <= 1.5)")


if __name__ == "__main__":
    main()
