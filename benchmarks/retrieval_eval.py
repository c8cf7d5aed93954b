"""Retrieval quality on the development sets: builds (once) a 1,000-document KB per corpus and runs `kbqa eval`.

English: Wikipedia summaries (query = description); Chinese: news (query = title); 200 known-item queries each, from
the development halves only (benchmarks/corpora.py). Prints recall@1/5/10, MRR@10, nDCG@10 and latency per mode
(dense, keyword, hybrid) and checks the target MRR@10 >= 0.92 for the default pipeline (hybrid).

    pip install -e '.[bench]'
    python benchmarks/retrieval_eval.py [--docs 1000] [--queries 200] [--workdir benchmarks/.data/eval] [--resplit]

After a splitter change, ``--resplit`` on a copy of an earlier work folder re-splits every file and embeds only the
chunk texts that changed (the others' stored embeddings are reused), so a before/after comparison costs one full run.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
sys.path.insert(0, str(HERE.parent))

from corpora import inews_dev, wiki_dev, write_files, write_golden  # noqa: E402

from kbqa.knowledge.service import KnowledgeBaseService  # noqa: E402
from kbqa.retrieval.evaluate import evaluate_kb, format_table, load_golden  # noqa: E402
from kbqa.retrieval.retriever import Retriever  # noqa: E402
from kbqa.settings import load_settings  # noqa: E402

TARGET = 0.92


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--docs", type=int, default=1000)
    ap.add_argument("--queries", type=int, default=200)
    ap.add_argument("--workdir", default=str(HERE / ".data" / "eval"))
    ap.add_argument("--modes", default="dense,keyword,hybrid")
    ap.add_argument("--corpora", default="wiki,inews")
    ap.add_argument("--json", help="also write the results here")
    ap.add_argument("--chunk-size", type=int, help="override kb.chunk_size (the KB name gets a -c<size> suffix)")
    ap.add_argument("--chunk-overlap", type=int, help="override kb.chunk_overlap")
    ap.add_argument("--resplit", action="store_true", help="re-split unchanged files too (after a splitter change)")
    args = ap.parse_args()

    work = Path(args.workdir).resolve()
    kb_overrides = {}
    if args.chunk_size is not None:
        kb_overrides["chunk_size"] = args.chunk_size
    if args.chunk_overlap is not None:
        kb_overrides["chunk_overlap"] = args.chunk_overlap
    settings = load_settings(
        HERE.parent / "configs" / "settings.yaml", root=str(work), paths={"kb_root": str(work)}, kb=kb_overrides
    )
    suffix = f"-c{args.chunk_size}" if args.chunk_size is not None else ""
    service = KnowledgeBaseService(settings)
    service.create_tables()
    retriever = Retriever(service, settings)
    builders = {"wiki": wiki_dev, "inews": inews_dev}
    all_results = {}
    for key in args.corpora.split(","):
        corpus = builders[key](args.docs, args.queries)
        kb = f"eval-{corpus.name}-{args.docs}{suffix}"
        golden_path = work / f"{kb}.golden.jsonl"
        if not service.exists(kb):
            service.create_kb(kb)
        write_golden(corpus, golden_path)
        write_files(corpus, service.folder(kb).content)
        started = time.perf_counter()
        report = service.ingest(kb, force=args.resplit)
        print(
            f"{kb}: {len(report.added)} added, {len(report.updated)} updated, {len(report.skipped)} unchanged, "
            f"{report.chunks} chunks "
            f"({report.embedded} embedded) in {time.perf_counter() - started:.0f}s",
            flush=True,
        )
        results = evaluate_kb(retriever, kb, load_golden(golden_path), args.modes.split(","))
        all_results[kb] = results
        print(format_table(results))
        hybrid = results.get("hybrid", {}).get("mrr@10")
        if hybrid is not None:
            verdict = "meets" if hybrid >= TARGET else "misses"
            print(f"default pipeline (hybrid) MRR@10 = {hybrid:.3f}: {verdict} the {TARGET} target\n")
    if args.json:
        Path(args.json).write_text(json.dumps(all_results, indent=2))


if __name__ == "__main__":
    main()
