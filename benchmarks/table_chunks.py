"""Scrap chunks on issue-tracker tables: how many chunks are shorter than 20 characters or bare JSON punctuation.

Writes six tables shaped like Langchain-Chatchat 0.2's sample files (issues_{closed,open}.{csv,jsonl,xlsx}: a pandas
index column, title, file, url, detail, id; our own text, some details several paragraphs long, see
tests/ingest/fixtures.py), splits them with the configured splitter and counts the scraps. ``--search`` also
ingests them into a temporary knowledge base and prints the top hit of a few off-topic queries (dense and hybrid).

    python benchmarks/table_chunks.py [--rows 12] [--search]

The kbqa first on the path is the one measured: this script run with PYTHONPATH pointing at an export of an older
commit (``git archive COMMIT | tar -x -C /tmp/old``) gives the "before" figures with the same tables.
"""

from __future__ import annotations

import argparse
import importlib.util
import os
import re
import sys
import tempfile
from collections.abc import Callable
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
HERE = Path(__file__).resolve().parent
sys.path.append(str(HERE.parent))  # appended: a kbqa put first on PYTHONPATH is the one measured

import kbqa  # noqa: E402
from kbqa.ingest.pipeline import prepare_file  # noqa: E402
from kbqa.settings import load_settings  # noqa: E402


def _make_issue_tables() -> Callable[..., list[Path]]:
    """This tree's table writer, loaded by file path so an older tree on PYTHONPATH cannot shadow it."""
    spec = importlib.util.spec_from_file_location("issue_fixtures", HERE.parent / "tests" / "ingest" / "fixtures.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.make_issue_tables


SCRAP_CHARS = 20
BARE_JSON = re.compile(r'[\s{}\[\],]*("[^"]{0,20}"\s*:\s*[^\s,{}]{0,12})?[\s{}\[\],]*')
OFF_TOPIC = [
    "What is the capital of France?",
    "今天北京的天气怎么样？",
    "chocolate cake recipe",
    "谁赢得了昨天的足球比赛",
]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--rows", type=int, default=12, help="rows per table")
    ap.add_argument("--search", action="store_true", help="also ingest and run off-topic queries (embeds every chunk)")
    args = ap.parse_args()

    root = Path(kbqa.__file__).resolve().parents[1]
    work = Path(tempfile.mkdtemp(prefix="kbqa-table-chunks-"))
    settings = load_settings(root / "configs" / "settings.yaml", root=str(work), paths={"kb_root": str(work)})
    from kbqa.knowledge.service import KnowledgeBaseService

    service = KnowledgeBaseService(settings)
    service.create_tables()
    service.create_kb("tables")
    paths = _make_issue_tables()(service.folder("tables").content, rows=args.rows)
    print(f"kbqa from {root}")
    total = scraps = bare = 0
    for path in paths:
        prepared = prepare_file(path.name, path, service.default_split(), 1 << 30)
        if prepared.error:
            raise SystemExit(prepared.error)
        texts = [c.text for c in prepared.chunks]
        short = [t for t in texts if len(t) < SCRAP_CHARS]
        total += len(texts)
        scraps += len(short)
        bare += sum(1 for t in texts if BARE_JSON.fullmatch(t))
        print(f"{path.name}: {len(texts)} chunks, {len(short)} under {SCRAP_CHARS} characters {short[:4]}")
    print(f"all six: {total} chunks, {scraps} under {SCRAP_CHARS} characters, {bare} bare JSON punctuation")
    if not args.search:
        return
    from kbqa.retrieval.retriever import Retriever

    service.ingest("tables")
    retriever = Retriever(service, settings)
    for query in OFF_TOPIC:
        dense = service.search("tables", query, top_k=1)
        hybrid = retriever.search("tables", query)
        for mode, hits in (("dense", dense), ("hybrid", hybrid)):
            top = hits[0].text if hits else ""
            print(f"{query!r} {mode} top 1: {len(top)} characters {top[:50]!r}")
    service.close()


if __name__ == "__main__":
    main()
