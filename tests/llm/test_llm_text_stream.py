"""Incremental detokenization and stop strings, with the bundled model's real tokenizer."""

from __future__ import annotations

from pathlib import Path

import pytest

from kbqa.llm.backends.model_files import bundled_gguf_path, ensure_hf_folder
from kbqa.llm.backends.text_stream import IncrementalDetokenizer, StopStringMatcher


@pytest.fixture(scope="module")
def tokenizer():  # type: ignore[no-untyped-def]
    from transformers import AutoTokenizer

    folder: Path = ensure_hf_folder(bundled_gguf_path(), None)
    return AutoTokenizer.from_pretrained(folder)


@pytest.mark.parametrize(
    "text",
    [
        "Hello, world! How are you?",
        "知识库问答系统：你好，世界。",
        "emoji 🚀🔥 and accents: café, naïve",
        "  spaced\n\nlines  ",
    ],
)
def test_deltas_rebuild_the_text_and_never_split_a_character(tokenizer, text: str) -> None:  # type: ignore[no-untyped-def]
    prompt = tokenizer("Prompt: ").input_ids
    ids = tokenizer(text, add_special_tokens=False).input_ids
    detok = IncrementalDetokenizer(tokenizer, prompt)
    deltas = [detok.push(t) for t in ids]
    deltas.append(detok.flush())
    assert all("\ufffd" not in d for d in deltas)
    assert "".join(deltas) == tokenizer.decode(ids, skip_special_tokens=True, clean_up_tokenization_spaces=False)


def test_multibyte_character_is_held_until_complete(tokenizer) -> None:  # type: ignore[no-untyped-def]
    ids = tokenizer("🚀", add_special_tokens=False).input_ids
    assert len(ids) > 1, "the rocket emoji spans several byte-level tokens"
    detok = IncrementalDetokenizer(tokenizer, [])
    out = [detok.push(t) for t in ids]
    assert out[:-1] == [""] * (len(ids) - 1)
    assert out[-1] == "🚀"


def test_unfinished_character_at_the_end_is_dropped(tokenizer) -> None:  # type: ignore[no-untyped-def]
    ids = tokenizer("ok 🚀", add_special_tokens=False).input_ids
    detok = IncrementalDetokenizer(tokenizer, [])
    text = "".join(detok.push(t) for t in ids[:-1]) + detok.flush()
    assert text == "ok "


def test_stop_string_split_across_deltas_is_caught() -> None:
    m = StopStringMatcher(["###", "END"])
    assert m.feed("Hello #") == ("Hello ", False)
    assert m.feed("#") == ("", False)
    assert m.feed("# tail") == ("", True)


def test_false_alarm_is_released() -> None:
    m = StopStringMatcher(["END"])
    assert m.feed("THE EN") == ("THE ", False)
    assert m.feed("joy") == ("ENjoy", False)
    assert m.feed("E") == ("", False)
    assert m.flush() == "E"


def test_earliest_stop_wins() -> None:
    m = StopStringMatcher(["b", "a"])
    assert m.feed("xxabc") == ("xx", True)


def test_no_stops_passes_through() -> None:
    m = StopStringMatcher([])
    assert m.feed("anything") == ("anything", False)
