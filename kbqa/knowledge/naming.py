"""Knowledge-base names and file paths are hostile until proven safe.

Chatchat 0.2 only rejected names containing ``../``; absolute names, backslashes, URL-encoded traversal and bare ``..``
all reached ``shutil.rmtree``. Here every name and path goes through one of two functions before it touches the disk
or the database.
"""

from __future__ import annotations

import os
import re
import unicodedata
from pathlib import Path, PurePosixPath

from kbqa.errors import InvalidName, InvalidPath

KB_NAME_MAX = 64
FILE_PATH_MAX = 512
FILE_PART_MAX = 255

# Letters (any script, so CJK works), digits, underscore, dash and dot; must start with a letter, digit or underscore.
_KB_NAME_RE = re.compile(r"^[^\W][\w.\-]*$", re.UNICODE)
_WINDOWS_DRIVE_RE = re.compile(r"^[A-Za-z]:")
_RESERVED_WINDOWS = {"con", "prn", "aux", "nul", *(f"com{i}" for i in range(10)), *(f"lpt{i}" for i in range(10))}


def validate_kb_name(name: object) -> str:
    """Return the NFC-normalised name, or raise :class:`InvalidName` saying why."""
    if not isinstance(name, str):
        raise InvalidName("knowledge base name must be a string")
    normalized = unicodedata.normalize("NFC", name).strip()
    if not normalized:
        raise InvalidName("knowledge base name must not be empty")
    if "\x00" in normalized:
        raise InvalidName("knowledge base name must not contain NUL")
    if len(normalized) > KB_NAME_MAX:
        raise InvalidName(f"knowledge base name is longer than {KB_NAME_MAX} characters")
    if "/" in normalized or "\\" in normalized or os.sep in normalized:
        raise InvalidName("knowledge base name must not contain path separators")
    if normalized.startswith(".") or ".." in normalized:
        raise InvalidName("knowledge base name must not start with a dot or contain '..'")
    if not _KB_NAME_RE.match(normalized):
        raise InvalidName(
            "knowledge base name may contain only letters (any language), digits, '_', '-' and '.', "
            "and must start with a letter, digit or '_'"
        )
    if normalized.split(".")[0].lower() in _RESERVED_WINDOWS:
        raise InvalidName("knowledge base name is a reserved device name")
    return normalized


def normalize_relative_path(raw: object) -> str:
    """Validate a file path given relative to a KB's content folder; return it in canonical POSIX form.

    Sub-folders are allowed (``wiki/Home.md``). Rejected: empty, absolute, drive letters, backslashes (a Windows
    separator on the server's disk would be a different path than the one checked), ``.``/``..`` segments,
    NUL and control characters, over-long names, hidden top-level names used for kbqa's own temp files.
    """
    if not isinstance(raw, str):
        raise InvalidPath("file name must be a string")
    path = unicodedata.normalize("NFC", raw)
    if not path.strip():
        raise InvalidPath("file name must not be empty")
    if len(path) > FILE_PATH_MAX:
        raise InvalidPath(f"file path is longer than {FILE_PATH_MAX} characters")
    if any(ord(ch) < 32 or ord(ch) == 127 for ch in path):
        raise InvalidPath("file name must not contain control characters or NUL")
    if "\\" in path:
        raise InvalidPath("file name must use '/' as separator, not '\\'")
    if path.startswith("/") or _WINDOWS_DRIVE_RE.match(path):
        raise InvalidPath("file name must be relative")
    parts = path.split("/")
    for part in parts:
        if part in ("", ".", ".."):
            raise InvalidPath("file path must not contain empty, '.' or '..' segments")
        if len(part.encode("utf-8")) > FILE_PART_MAX:
            raise InvalidPath(f"a path segment is longer than {FILE_PART_MAX} bytes")
        if part != part.strip():
            raise InvalidPath("path segments must not start or end with spaces")
    if parts[0].startswith(".kbqa"):
        raise InvalidPath("names starting with '.kbqa' are reserved")
    return str(PurePosixPath(*parts))


def resolve_inside(root: Path, relative: str) -> Path:
    """Join a validated relative path to ``root`` and prove the result stays inside it, symlinks included."""
    rel = normalize_relative_path(relative)
    base = root.resolve()
    candidate = (base / rel).resolve()
    if not candidate.is_relative_to(base):
        raise InvalidPath("file path escapes the knowledge base folder")
    return candidate
