"""Choosing the answerability gate's threshold from answers scored with the gate watching but never refusing.

Run the answer evaluation with ``api.answerability_threshold: 0`` (every answer generated, every gate score
recorded); then for a threshold t, an answerable question stays right only if it was right and scored >= t, and
an unanswerable one is refused if it scored < t or the model refused by itself. The chosen threshold refuses the
most unanswerable questions while each set's answer accuracy (English, Chinese) drops by at most ``max_drop`` (the
issue's 0.03).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from kbqa.evaluation.answer_eval import ScoredAnswer


@dataclass(frozen=True)
class GatePoint:
    threshold: float
    accuracy: float
    refused: float


def gate_point(answers: Sequence[ScoredAnswer], threshold: float) -> GatePoint:
    answerable = [a for a in answers if a.correct is not None]
    unanswerable = [a for a in answers if a.correct is None]

    def passes(a: ScoredAnswer) -> bool:
        return a.answerability is None or a.answerability >= threshold

    accuracy = sum(bool(a.correct) and passes(a) for a in answerable) / max(1, len(answerable))
    refused = sum(a.refused or not passes(a) for a in unanswerable) / max(1, len(unanswerable))
    return GatePoint(threshold, accuracy, refused)


def choose_threshold(answer_sets: Sequence[Sequence[ScoredAnswer]], max_drop: float = 0.03) -> GatePoint:
    """The threshold (0, or just above an observed score) that refuses the most unanswerable questions over all
    sets while no set's answer accuracy drops by more than ``max_drop`` from its ungated figure; ties go to the lower
    threshold (fewer false refusals). The returned point is over all sets together."""
    everything = [a for answers in answer_sets for a in answers]
    floors = [gate_point(answers, 0.0).accuracy - max_drop - 1e-9 for answers in answer_sets]
    scores = {a.answerability for a in everything if a.answerability is not None}
    # A threshold just above an observed score refuses that score: step past each one.
    best = gate_point(everything, 0.0)
    for t in sorted({0.0, *(min(1.0, c + 1e-6) for c in scores)}):
        if any(gate_point(answers, t).accuracy < floor for answers, floor in zip(answer_sets, floors, strict=True)):
            continue
        point = gate_point(everything, t)
        if point.refused > best.refused:
            best = point
    return best
