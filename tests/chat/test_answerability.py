"""The answerability gate's arithmetic: P(yes) from first-token logprobs, and choosing its threshold."""

from __future__ import annotations

import math

import pytest

from kbqa.chat.answerability import yes_probability
from kbqa.evaluation.answer_eval import ScoredAnswer
from kbqa.evaluation.gate_calibration import choose_threshold, gate_point


def _alt(token: str, p: float) -> dict[str, object]:
    return {"token": token, "logprob": math.log(p)}


def test_yes_probability_sums_spellings_and_renormalises() -> None:
    first = {
        "token": "Yes",
        "logprob": math.log(0.5),
        "top_logprobs": [_alt("Yes", 0.5), _alt(" yes", 0.1), _alt("No", 0.2), _alt("The", 0.2)],
    }
    assert yes_probability(first) == pytest.approx(0.6 / 0.8)
    chinese = {"token": "否", "logprob": math.log(0.7), "top_logprobs": [_alt("否", 0.7), _alt("是", 0.1)]}
    assert yes_probability(chinese) == pytest.approx(0.125)
    assert yes_probability({"token": "The", "logprob": -0.1, "top_logprobs": [_alt("The", 0.9)]}) is None


def _answer(correct: bool | None, score: float | None, refused: bool = False) -> ScoredAnswer:
    return ScoredAnswer("x", "q", [], None, "a", [], None, 0.0, correct=correct, refused=refused, answerability=score)


def test_threshold_refuses_most_unanswerables_within_the_accuracy_budget() -> None:
    answerable = [_answer(True, s) for s in (0.9, 0.8, 0.7, 0.6, 0.5, 0.45, 0.3, 0.95, 0.85, 0.75)]
    answerable += [_answer(False, 0.2)] * 10  # wrong anyway: refusing them costs no accuracy
    unanswerable = [_answer(None, s) for s in (0.1, 0.2, 0.25, 0.4, 0.65)] + [_answer(None, 0.9, refused=True)]
    answers = answerable + unanswerable
    assert gate_point(answers, 0.0).accuracy == pytest.approx(0.5)
    chosen = choose_threshold([answers], max_drop=0.03)
    # 0.3 < t <= 0.4 would cost one right answer (0.05 of 20): over budget; t just above 0.25 costs nothing.
    assert 0.25 < chosen.threshold <= 0.3
    assert chosen.accuracy == pytest.approx(0.5)
    assert chosen.refused == pytest.approx(4 / 6)
    looser = choose_threshold([answers], max_drop=0.05)
    assert 0.4 < looser.threshold <= 0.45 and looser.refused == pytest.approx(5 / 6)
    # A second set whose one right answer scored 0.28 holds the threshold under 0.28: every set keeps its accuracy.
    other = [_answer(True, 0.28), _answer(None, 0.1)]
    both = choose_threshold([answers, other], max_drop=0.03)
    assert 0.25 < both.threshold <= 0.28
    assert both.refused == pytest.approx(5 / 7)


def test_each_model_gets_its_own_threshold() -> None:
    from pathlib import Path

    from kbqa.api.settings import APISettings
    from kbqa.chat.kb_chat import KBChat
    from kbqa.chat.prompts import PromptTemplates
    from kbqa.llm.client import AsyncLLMClient
    from kbqa.llm.settings import ClientSettings

    api = APISettings(answerability_threshold=0.6, answerability_thresholds={"small": 0.2, "served": 0.4, "tiny": None})
    prompts = PromptTemplates(Path(__file__).parents[2] / "configs" / "prompts.yaml")
    client = AsyncLLMClient(ClientSettings(model="served"))
    chat = KBChat(api, prompts, searcher=None, client=client, sync_client=None)  # type: ignore[arg-type]
    assert chat.answerability_threshold("small") == 0.2
    assert chat.answerability_threshold(None) == 0.4  # the client's configured model
    assert chat.answerability_threshold("other") == 0.6
    assert chat.answerability_threshold("tiny") is None  # the gate is off for that model
