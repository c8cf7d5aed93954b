"""The answer-quality scores on tiny hand-made answers, and the answer-set parser's refusals of bad lines."""

from __future__ import annotations

import pytest

from kbqa.evaluation.answer_eval import ChatAnswer, ChatRequestOptions, markdown_table, percentile, score, summarise
from kbqa.evaluation.answer_scoring import cites_source, contains_answer, is_refusal, normalise, only_answer
from kbqa.evaluation.answer_set import AnswerItem, AnswerSetError, parse_answer_set

EMPTY = "根据已知信息无法回答该问题。(No relevant content was found in the knowledge base.)"


def test_normalise_folds_case_width_and_punctuation() -> None:
    assert normalise("  The MOJAVE—Desert!! ") == "the mojave desert"
    assert normalise("ＡＢＣ，北京。") == "abc 北京"


@pytest.mark.parametrize(
    ("answer", "aliases", "expected"),
    [
        ("It is the Mojave Desert.", ["Mojave Desert"], True),
        ("mojave   desert", ["Mojave Desert"], True),
        ("The Sahara", ["Mojave Desert"], False),
        ("Let me start over", ["art"], False),  # word boundaries for spaced scripts
        ("Art.", ["art"], True),
        ("K2 is the answer", ["K2"], True),
        ("K22", ["K2"], False),
        ("答案是北京市。", ["北京"], True),  # no boundaries in Chinese
        ("南京", ["北京"], False),
        ("Władysław II Jagiełło was king", ["Wladyslaw", "Władysław II Jagiełło"], True),
        ("3-6周", ["3-6周"], True),
    ],
)
def test_contains_answer(answer: str, aliases: list[str], expected: bool) -> None:
    assert contains_answer(answer, aliases) is expected


@pytest.mark.parametrize(
    ("answer", "expected"),
    [
        ("Mojave Desert", True),
        ("The Mojave Desert.", True),
        ("The answer is: Mojave Desert", True),
        ("Answer: the Mojave Desert!", True),
        ("The Mojave Desert is a desert in the rain shadow of the Sierra Nevada.", False),
        ("I think it might be the Sahara", False),
    ],
)
def test_only_answer_in_english(answer: str, expected: bool) -> None:
    assert only_answer(answer, ["Mojave Desert"]) is expected


def test_only_answer_in_chinese() -> None:
    assert only_answer("答案是：宣宝农场。", ["宣宝农场"])
    assert only_answer("宣宝农场", ["宣宝农场"])
    assert not only_answer("他们到城郊宣宝农场组织开展了一次户外活动，农场内设有草莓园。", ["宣宝农场"])
    assert not only_answer("城郊", ["宣宝农场"])  # short but wrong


@pytest.mark.parametrize(
    "answer",
    [
        EMPTY,
        "",
        "I don't know.",
        "I cannot answer this question from the given information.",
        "The context does not mention the king of Nepal.",
        "This is not mentioned in the provided text.",
        "There is no information about it.",
        "根据已知信息无法回答该问题。",
        "抱歉，文中没有提到相关内容。",
        "我不知道。",
    ],
)
def test_refusals(answer: str) -> None:
    assert is_refusal(answer, EMPTY)


@pytest.mark.parametrize("answer", ["Mojave Desert", "Prithviraj Chauhan", "北京", "The answer is Nanchang."])
def test_answers_are_not_refusals(answer: str) -> None:
    assert not is_refusal(answer, EMPTY)


def test_cites_source_compares_whole_paths() -> None:
    sources = [{"file": "a/en-1.txt"}, {"file": "en-2.txt"}]
    assert cites_source(sources, "en-2.txt")
    assert not cites_source(sources, "en-1.txt")
    assert not cites_source([], "en-2.txt")


def test_summary_counts_answerable_and_unanswerable_separately() -> None:
    items = [
        AnswerItem("a", "q1", ("Paris",), "fr.txt"),
        AnswerItem("b", "q2", ("Rome",), "it.txt"),
        AnswerItem("u", "q3"),
    ]
    replies = [
        ChatAnswer("Paris.", [{"file": "fr.txt"}], 0.5, 1.0),
        ChatAnswer("I don't know.", [{"file": "fr.txt"}], 0.4, 2.0),
        ChatAnswer(EMPTY, [], None, 0.1),
    ]
    report = summarise("t", [score(i, r, EMPTY) for i, r in zip(items, replies, strict=True)], ChatRequestOptions())
    assert (report.answerable, report.unanswerable) == (2, 1)
    assert report.accuracy == 0.5
    assert report.only_answer == 0.5
    assert report.cited == 0.5
    assert report.refused == 1.0 and report.refused_count == 1
    assert report.false_refusals == 0.5
    assert report.first_token_s_p50 == pytest.approx(0.45)
    assert report.total_s_p90 == 2.0
    table = markdown_table([report])
    assert "| t | 2 + 1 | 0.50 | 0.50 | 1/1 | 0.50 | 0.500 |" in table


def test_percentile_is_nearest_rank() -> None:
    assert percentile([1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 7.0, 8.0, 9.0, 10.0], 90) == 9.0
    assert percentile([3.0], 90) == 3.0
    assert percentile([], 50) is None


@pytest.mark.parametrize(
    ("line", "message"),
    [
        ('{"question": "q", "answers": ["a"]}', "needs the file"),
        ('{"answers": []}', "question"),
        ('{"question": "q", "answers": "a", "file": "f"}', "list of non-empty strings"),
        ('{"question": "", "answers": []}', "non-empty"),
        ("[1]", "not a JSON object"),
        ("{oops", "line 1"),
    ],
)
def test_bad_answer_set_lines_are_refused(line: str, message: str) -> None:
    with pytest.raises(AnswerSetError, match=message):
        parse_answer_set([line])


def test_answer_set_rejects_duplicates_and_empty_sets() -> None:
    with pytest.raises(AnswerSetError, match="duplicate"):
        parse_answer_set(['{"id": "x", "question": "q", "answers": []}'] * 2)
    with pytest.raises(AnswerSetError, match="empty"):
        parse_answer_set(["", "  "])
