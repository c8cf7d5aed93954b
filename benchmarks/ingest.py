"""Ingestion throughput: end-to-end chunks/s against bare model encode of the same chunk texts, in one run.

End-to-end = hash + parse + split + embed + write SQLite rows + FAISS add + commit + index save, through
KnowledgeBaseService.ingest on a folder of real documents (the development halves of the corpora in MODELS.md).
Bare encode = the same chunk texts, same model, same batch size, straight into the embedder. The ratio says how much
everything except the model costs (goal: >= 0.9). With --no-baseline it only ingests and reports wall time and peak
RSS (the 10,000-document run).

    python benchmarks/ingest.py --docs 1000                       # ratio run (English wiki)
    python benchmarks/ingest.py --docs 1000 --corpus inews        # Chinese news
    python benchmarks/ingest.py --docs 10000 --corpus mixed --max-chars 250 --pieces 2 --no-baseline
"""

from __future__ import annotations

import argparse
import os
import resource
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from corpora import Corpus, inews_dev, wiki_dev, wiki_items, write_files
from sqlalchemy import select

from kbqa.db.models import Chunk
from kbqa.knowledge.service import KnowledgeBaseService
from kbqa.settings import load_settings

REPO = Path(__file__).resolve().parent.parent


def build_corpus(kind: str, n_docs: int, max_chars: int | None, pieces: int = 1) -> list[Corpus]:
    """``pieces`` > 1 (with ``max_chars``) cuts each document into that many consecutive files of ``max_chars``
    characters: how the 10,000-file run gets 10,000 real-text files from corpora of ~4,700 documents each."""
    wanted = -(-n_docs // pieces) if pieces == 1 else int(n_docs / pieces * 1.25) + 1  # short docs give one piece
    if kind == "wiki":
        corpora = [wiki_dev(wanted, 0)]
    elif kind == "inews":
        corpora = [inews_dev(wanted, 0)]
    else:  # as many English as available up to half, the rest Chinese
        english = min(wanted // 2, len(wiki_items()))
        corpora = [wiki_dev(english, 0), inews_dev(wanted - english, 0)]
    if max_chars:
        for corpus in corpora:
            docs = []
            for doc_id, text in corpus.docs:
                for j in range(pieces):
                    piece = text[j * max_chars : (j + 1) * max_chars]
                    if piece.strip():
                        docs.append((doc_id if pieces == 1 else f"{doc_id}-p{j}", piece))
            corpus.docs = docs
    total = sum(len(c.docs) for c in corpora)
    for corpus in reversed(corpora):  # trim the surplus of the last pieces
        surplus = total - n_docs
        if surplus <= 0:
            break
        cut = min(surplus, len(corpus.docs))
        corpus.docs = corpus.docs[: len(corpus.docs) - cut]
        total -= cut
    return corpora


def peak_rss_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--docs", type=int, default=1000)
    ap.add_argument("--corpus", choices=["wiki", "inews", "mixed"], default="wiki")
    ap.add_argument("--model", default=None, help="embedding model (default: the settings' default)")
    ap.add_argument("--no-baseline", action="store_true", help="skip the bare-encode pass")
    ap.add_argument("--max-chars", type=int, default=None, help="truncate each document to this many characters")
    ap.add_argument("--pieces", type=int, default=1, help="with --max-chars: files cut from each document")
    ap.add_argument("--workdir", help="keep the knowledge base here instead of a temp folder")
    args = ap.parse_args()

    work = Path(args.workdir or tempfile.mkdtemp(prefix="kbqa-bench-"))
    settings = load_settings(REPO / "configs" / "settings.yaml", root=str(work), paths={"kb_root": str(work / "kb")})
    if args.model:
        settings.embedding.model = args.model
    service = KnowledgeBaseService(settings)
    service.create_tables()
    service.create_kb("bench")
    content = service.folder("bench").content
    n_files = 0
    for corpus in build_corpus(args.corpus, args.docs, args.max_chars, args.pieces):
        write_files(corpus, content / corpus.name)
        n_files += len(corpus.docs)
    embedder = service.embedders.get(settings.embedding.model)
    embedder.embed_documents(["warm-up text"] * 4)

    t0 = time.perf_counter()
    report = service.ingest("bench")
    e2e = time.perf_counter() - t0
    rss = peak_rss_mib()
    chunks = report.chunks
    print(
        f"corpus={args.corpus} files={n_files} model={settings.embedding.model} batch={settings.embedding.batch_size}"
    )
    print(
        f"end-to-end: {chunks} chunks ({report.embedded} embedded, {len(report.failed)} failed files) "
        f"in {e2e:.1f}s = {chunks / e2e:.2f} chunks/s, {n_files / e2e:.2f} files/s; peak RSS {rss:.0f} MiB"
    )
    if args.no_baseline:
        return
    with service.db.read() as s:
        texts = list(s.scalars(select(Chunk.text).order_by(Chunk.id)))
    unique = list(dict.fromkeys(texts))
    batch = settings.embedding.batch_size
    t0 = time.perf_counter()
    for start in range(0, len(unique), batch):
        embedder.embed_documents(unique[start : start + batch])
    bare = time.perf_counter() - t0
    # Compare like with like: the pipeline embeds each distinct text once, so does the baseline.
    e2e_rate = len(unique) / e2e
    bare_rate = len(unique) / bare
    print(f"bare encode: {len(unique)} distinct chunk texts in {bare:.1f}s = {bare_rate:.2f} chunks/s")
    print(f"ratio end-to-end / bare encode = {e2e_rate / bare_rate:.3f}  (goal >= 0.9)")


if __name__ == "__main__":
    main()
