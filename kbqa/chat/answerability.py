"""The answerability gate: before answering, the LLM judges whether the retrieved sources hold the answer.

Small models answer whatever they are asked, so the grounded prompt's "reply only: <refusal>" rule alone refused
no unanswerable question in the development sets. The gate asks the same model one short yes/no question over the
same numbered sources and reads the probability of "yes" from the first token's logprobs (an OpenAI ``logprobs``
request, so any compatible endpoint serves it). Below ``api.answerability_threshold`` the chat answers with the
refusal and the sources it looked at, without generating. Retrieval scores alone cannot make this call: with the
bundled embedder, answerable questions scored 0.79-0.91 and unanswerable ones 0.79-0.84.
"""

from __future__ import annotations

import logging
import math
from typing import Any

from kbqa.chat.grounding import numbered_context
from kbqa.chat.language import Language
from kbqa.chat.prompts import PromptTemplates
from kbqa.llm.client import AsyncLLMClient

log = logging.getLogger(__name__)

CHECK = "answerability_check"
_YES = ("yes", "是", "有", "能", "可以", "包含")
_NO = ("no", "否", "不", "没", "无")
# Alternatives read from the first token: enough to find both "yes" and "no" spellings ("Yes", " yes", "是").
_TOP_LOGPROBS = 20


def yes_probability(first_token: dict[str, Any]) -> float | None:
    """P(yes) / (P(yes) + P(no)) over the first token's alternatives (OpenAI's ``logprobs.content[0]``); None when
    neither appears among them."""
    yes = no = 0.0
    candidates = first_token.get("top_logprobs") or [first_token]
    for alt in candidates:
        word = str(alt.get("token", "")).strip().lower()
        if not word:
            continue
        p = math.exp(float(alt.get("logprob", -math.inf)))
        if word.startswith(_YES):
            yes += p
        elif word.startswith(_NO):
            no += p
    if yes + no == 0.0:
        return None
    return yes / (yes + no)


class AnswerabilityGate:
    def __init__(self, prompts: PromptTemplates, client: AsyncLLMClient) -> None:
        self.prompts = prompts
        self.client = client

    async def score(
        self, question: str, sources: list[dict[str, Any]], language: Language, model: str | None
    ) -> float | None:
        """The probability that ``sources`` contain the answer, or None when the endpoint gave no usable logprobs
        (the chat then answers as if there were no gate)."""
        prompt = self.prompts.render(
            CHECK, "default", context=numbered_context(sources), question=question, language=language
        )
        result = await self.client.chat(
            [{"role": "user", "content": prompt}],
            model=model or None,
            temperature=0.0,
            max_tokens=1,
            logprobs=True,
            top_logprobs=_TOP_LOGPROBS,
        )
        if not result.logprobs:
            log.warning("the LLM endpoint returned no logprobs; the answerability gate is skipped")
            return None
        return yes_probability(result.logprobs[0])
