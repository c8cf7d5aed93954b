"""How one chat answer is scored against its expected answers: right, only the answer, a refusal, the right source.

Pure functions over strings, so the same rules score every model and prompt. Text is compared after NFKC folding,
case folding and removing punctuation; an English alias must match on word boundaries ("art" is not in "start"),
while a Chinese one, written without spaces, matches anywhere.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterable, Sequence

# What a model puts before a short answer without adding anything to it.
_LEAD_INS = re.compile(
    r"^(?:(?:the )?answer(?: is)?|it is|it's|this is|the name is|its name is|name|答案是|答案|答|回答|是)\s*"
    r"|^(?:the|a|an)\s+",
)
# A short answer may exceed its expected text by this many characters (an article, a unit, a trailing word).
ONLY_MARGIN_CHARS = 6

# Refusals in English and Chinese, matched on the normalised answer (lower case, no punctuation).
REFUSAL_PATTERNS: tuple[str, ...] = (
    r"\b(?:can ?not|can t|unable to|not able to) (?:answer|determine|find|tell|say|provide)",
    r"\b(?:don t|do not|does not|doesn t) (?:know|have (?:enough |any )?information|contain|mention|say|provide)",
    r"\bno (?:relevant |such )?(?:information|content|answer|mention|data)",
    r"\bnot (?:enough|sufficient) information",
    r"\bnot (?:mentioned|provided|found|given|stated|specified|included|known|available) in",
    r"\b(?:there is|there s) no (?:information|mention)",
    r"\bi m (?:not sure|sorry)",
    r"\bi am (?:not sure|sorry)",
    r"无法(?:回答|确定|得知|找到|判断|提供)",
    r"不知道",
    r"不清楚",
    r"没有(?:相关|提到|提及|找到|给出|说明|涉及|这方面)",
    r"未(?:提及|提到|找到|给出|说明|涉及)",
    r"(?:信息|资料)不足",
    r"找不到",
)
_REFUSAL = re.compile("|".join(f"(?:{p})" for p in REFUSAL_PATTERNS))


def normalise(text: str) -> str:
    """NFKC, case-folded, punctuation and symbols turned into spaces, whitespace collapsed."""
    folded = unicodedata.normalize("NFKC", text).casefold()
    kept = "".join(" " if unicodedata.category(ch)[0] in "PSZC" else ch for ch in folded)
    return " ".join(kept.split())


def _boundary_pattern(alias: str) -> re.Pattern[str]:
    # Word boundaries only where the alias itself starts or ends with a letter or digit of a spaced script.
    before = r"(?<![a-z0-9])" if re.match(r"[a-z0-9]", alias) else ""
    after = r"(?![a-z0-9])" if re.search(r"[a-z0-9]$", alias) else ""
    return re.compile(before + re.escape(alias) + after)


def matched_alias(answer: str, aliases: Iterable[str]) -> str | None:
    """The first expected alias (normalised) found in the answer, or None."""
    text = normalise(answer)
    for alias in aliases:
        norm = normalise(alias)
        if norm and _boundary_pattern(norm).search(text):
            return norm
    return None


def contains_answer(answer: str, aliases: Sequence[str]) -> bool:
    return matched_alias(answer, aliases) is not None


def strip_lead_in(text: str) -> str:
    """The normalised answer without lead-ins such as "The answer is" or "答案是"."""
    out = normalise(text)
    while True:
        stripped = _LEAD_INS.sub("", out, count=1).strip()
        if stripped == out:
            return out
        out = stripped


def only_answer(answer: str, aliases: Sequence[str], margin: int = ONLY_MARGIN_CHARS) -> bool:
    """The answer contains an expected alias and little else: at most ``margin`` characters more than the alias
    once punctuation and lead-ins are gone."""
    alias = matched_alias(answer, aliases)
    return alias is not None and len(strip_lead_in(answer)) <= len(alias) + margin


def is_refusal(answer: str, empty_answer: str | None = None) -> bool:
    """The configured empty answer, an empty answer, or a refusal phrase ("cannot answer", "无法回答", ...)."""
    text = normalise(answer)
    if not text:
        return True
    if empty_answer and normalise(empty_answer) in text:
        return True
    return _REFUSAL.search(text) is not None


def cites_source(sources: Sequence[dict], expected_file: str) -> bool:
    """The expected file (a KB-relative path) is among the sources the chat returned."""
    return any(str(s.get("file", "")) == expected_file for s in sources)
