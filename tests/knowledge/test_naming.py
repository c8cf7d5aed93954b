from __future__ import annotations

import os
from pathlib import Path

import pytest

from kbqa.errors import InvalidName, InvalidPath
from kbqa.knowledge.naming import normalize_relative_path, resolve_inside, validate_kb_name

HOSTILE_KB_NAMES = [
    "",
    " ",
    ".",
    "..",
    "../x",
    "..\\x",
    "a/b",
    "a\\b",
    "/tmp/victim",
    "C:evil",
    ".hidden",
    "a..b",
    "x\x00y",
    "%2e%2e",
    "..%2F..%2Fetc",
    "a" * 65,
    "con",
    "NUL.txt",
    "name with space",
    "semi;colon",
    "quote'",
    "%",
    "*",
    "tab\tname",
    "new\nline",
    "\u202eevil",
]
LEGAL_KB_NAMES = ["samples", "a_b", "_", "kb-1", "v1.2", "知识库", "知识库_测试", "Ünïcödé", "a" * 64]


@pytest.mark.parametrize("name", HOSTILE_KB_NAMES)
def test_hostile_kb_names_are_rejected(name: str) -> None:
    with pytest.raises(InvalidName):
        validate_kb_name(name)


@pytest.mark.parametrize("name", LEGAL_KB_NAMES)
def test_legal_kb_names_pass_unchanged(name: str) -> None:
    assert validate_kb_name(name) == name


def test_kb_names_are_unicode_normalised() -> None:
    decomposed = "Cafe\u0301"
    assert validate_kb_name(decomposed) == "Café"


HOSTILE_PATHS = [
    "",
    "../x",
    "a/../../x",
    "/etc/passwd",
    "C:/Windows/win.ini",
    "c:evil",
    "..\\..\\x",
    "a\\b.txt",
    "a//b",
    "./a",
    "a/./b",
    "a/..",
    "x\x00.txt",
    "line\nbreak.txt",
    " lead/x.txt",
    "x/trail /y",
    ".kbqa-tmp-1",
    "a" * 300,
    "/".join(["d"] * 300),
]


@pytest.mark.parametrize("path", HOSTILE_PATHS)
def test_hostile_relative_paths_are_rejected(path: str) -> None:
    with pytest.raises(InvalidPath):
        normalize_relative_path(path)


@pytest.mark.parametrize(
    "path",
    [
        "a.txt",
        "wiki/Home.MD",
        "test_files/test.txt",
        "中文/说明.md",
        "a b.txt",
        "%.txt",
        "under_score.md",
        ".hidden-but-ok",
    ],
)
def test_legal_paths(path: str) -> None:
    assert normalize_relative_path(path) == path


def test_resolve_inside_refuses_symlink_escape(tmp_path: Path) -> None:
    content = tmp_path / "content"
    outside = tmp_path / "outside"
    content.mkdir()
    outside.mkdir()
    (outside / "secret.txt").write_text("secret")
    os.symlink(outside, content / "link")
    with pytest.raises(InvalidPath):
        resolve_inside(content, "link/secret.txt")
    (content / "ok.txt").write_text("fine")
    assert resolve_inside(content, "ok.txt") == (content / "ok.txt").resolve()
