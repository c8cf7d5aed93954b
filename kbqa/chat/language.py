"""The language a question is asked in, so the grounded prompt's instruction can be given in it."""

from __future__ import annotations

import re
from typing import Literal

Language = Literal["en", "zh"]

# CJK ideographs: the unified block, extension A, compatibility ideographs and the supplementary-plane extensions.
_CJK = re.compile("[\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff\U00020000-\U0003134f]")
# One ideograph carries about a word, a Latin word several letters: "什么是 FAISS?" is a Chinese question although
# most of its letters are Latin, so a quarter of the letters being ideographs is enough.
ZH_SHARE = 0.25


def detect_language(text: str) -> Language:
    """``zh`` when at least :data:`ZH_SHARE` of the letters are CJK ideographs, else ``en`` (the only two the
    built-in instructions are written in)."""
    cjk = len(_CJK.findall(text))
    if not cjk:
        return "en"
    letters = sum(1 for ch in text if ch.isalpha())  # ideographs count as letters too
    return "zh" if cjk / letters >= ZH_SHARE else "en"
