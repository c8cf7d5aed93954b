"""Turning the bytes of a text file into ``str``, and the text clean-up every loader shares.

Knowledge bases are full of legacy files (GBK/GB18030 exports, Big5, UTF-16 from Windows tools), so
decoding is: byte-order mark, then strict UTF-8 (the fast path that covers most files), then
``charset-normalizer``.
"""

from __future__ import annotations

import codecs
import re
from pathlib import Path

# Longest BOM first: the UTF-32-LE mark starts with the UTF-16-LE one.
_BOMS: tuple[tuple[bytes, str], ...] = (
    (codecs.BOM_UTF32_LE, "utf-32"),
    (codecs.BOM_UTF32_BE, "utf-32"),
    (codecs.BOM_UTF8, "utf-8-sig"),
    (codecs.BOM_UTF16_LE, "utf-16"),
    (codecs.BOM_UTF16_BE, "utf-16"),
)

# charset-normalizer often ranks several encodings exactly level on short CJK text (a GBK "你好，世界"
# comes out as cp949 first). kbqa's knowledge bases are mostly Chinese, so on a tie the Chinese
# legacy encodings win; GB18030 is a superset of GBK and GB2312.
_TIE_PREFERENCE: tuple[str, ...] = ("gb18030", "big5", "cp932", "cp949", "cp1252")

# Enough bytes to guess a streamed file's encoding without reading all of it.
DETECTION_SAMPLE_BYTES = 1 << 20

_BLANK_RUN = re.compile(r"\n(?:[ \t]*\n){3,}")


class UndetectableEncoding(ValueError):
    """The bytes do not look like text in any encoding we can recognise."""


def bom_encoding(data: bytes) -> str | None:
    """The codec named by a leading byte-order mark, or None."""
    for bom, name in _BOMS:
        if data.startswith(bom):
            return name
    return None


def is_utf8(data: bytes, *, complete: bool) -> bool:
    # An incremental decoder tolerates a sample cut in the middle of a multi-byte character.
    decoder = codecs.getincrementaldecoder("utf-8")(errors="strict")
    try:
        decoder.decode(data, final=complete)
    except UnicodeDecodeError:
        return False
    return True


def _guess_with_charset_normalizer(data: bytes) -> str:
    from charset_normalizer import from_bytes

    matches = from_bytes(data)
    best = matches.best()
    if best is None:
        raise UndetectableEncoding("no text encoding fits these bytes")
    tied = {m.encoding for m in matches if m.chaos == best.chaos and m.coherence == best.coherence}
    for preferred in _TIE_PREFERENCE:
        if preferred in tied:
            return preferred
    return best.encoding


def detect_encoding(data: bytes, *, complete: bool = True) -> str:
    """Name the codec for ``data``; ``complete=False`` when ``data`` is only the head of a file."""
    by_bom = bom_encoding(data)
    if by_bom is not None:
        return by_bom
    if is_utf8(data, complete=complete):
        return "utf-8"
    return _guess_with_charset_normalizer(data)


def decode_bytes(data: bytes) -> str:
    """Decode a whole file's bytes; raises UndetectableEncoding for binary junk."""
    encoding = detect_encoding(data)
    # Detection may have looked at a sample only; a stray bad byte later should not sink the file.
    return data.decode(encoding, errors="replace")


def detect_file_encoding(path: Path) -> str:
    """Guess a file's codec from its head, for loaders that stream the file line by line."""
    with path.open("rb") as fh:
        head = fh.read(DETECTION_SAMPLE_BYTES)
        complete = not fh.read(1)
    return detect_encoding(head, complete=complete)


def clean_text(text: str) -> str:
    """Drop NULs, normalise newlines, keep at most two blank lines in a row, trim the ends."""
    # The membership tests keep this cheap for the million one-line records of a big CSV.
    if "\x00" in text:
        text = text.replace("\x00", "")
    if "\r" in text:
        text = text.replace("\r\n", "\n").replace("\r", "\n")
    if "\n" in text:
        text = _BLANK_RUN.sub("\n\n\n", text)
    return text.strip()
