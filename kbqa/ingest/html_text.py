"""HTML → plain text that keeps the structure a splitter and a reader need.

Shared by the HTML, EPUB and e-mail loaders. Headings become markdown ``#`` lines (the markdown-aware
splitter cuts on them), table rows become ``| a | b |`` lines so every cell is retrievable, list items
become ``- `` lines, and ``<pre>`` keeps its whitespace.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from bs4 import BeautifulSoup
from bs4.dammit import EncodingDetector
from bs4.element import NavigableString, PreformattedString, Tag

from kbqa.ingest.encoding import bom_encoding, decode_bytes, is_utf8

# Boilerplate and non-text: navigation menus repeat on every page and would pollute retrieval.
_DROPPED = frozenset({"script", "style", "nav", "noscript", "template", "head", "svg", "canvas", "iframe", "object"})
# Blocks that stand apart with a blank line, and blocks that only start a new line.
_PARAGRAPHS = frozenset(
    {
        "address", "article", "aside", "blockquote", "details", "dl", "fieldset", "figure", "footer",
        "form", "header", "hr", "main", "ol", "p", "section", "table", "ul",
    }
)  # fmt: skip
_LINES = frozenset(
    {"body", "caption", "dd", "dialog", "div", "dt", "figcaption", "html", "li", "summary", "tbody",
     "tfoot", "thead", "tr"}
)  # fmt: skip
_HEADINGS = {f"h{level}": level for level in range(1, 7)}

# Browsers read these labels as their supersets (WHATWG Encoding); so must we, or GBK-only characters
# in a page that claims gb2312 turn into replacement characters.
_ENCODING_ALIASES = {
    "gb2312": "gb18030",
    "gbk": "gb18030",
    "x-gbk": "gb18030",
    "iso-8859-1": "cp1252",
    "latin1": "cp1252",
    "ascii": "cp1252",
    "us-ascii": "cp1252",
}

_WHITESPACE = re.compile(r"\s+")
_PRE_TOKEN = "\x00pre{}\x00"
_PRE_TOKEN_RE = re.compile(r"\x00pre(\d+)\x00")
_BLANK_LINES = re.compile(r"\n{3,}")


@dataclass(slots=True)
class HtmlText:
    text: str
    title: str | None


@dataclass(slots=True)
class _Writer:
    parts: list[str] = field(default_factory=list)
    # <pre> bodies are set aside so the per-line whitespace trim below cannot eat their indentation.
    preformatted: list[str] = field(default_factory=list)
    # Line breaks owed before the next text: nested blocks ask for breaks, the largest one wins, so
    # "</p></div><div><p>" gives one blank line rather than four.
    pending: int = 0

    def text(self, text: str) -> None:
        if not text.strip() and (self.pending or not self.parts):
            return  # indentation between block tags, not content
        self._flush()
        self.parts.append(text)

    def request_break(self, lines: int) -> None:
        self.pending = max(self.pending, lines)

    def line_break(self) -> None:
        self._flush()
        self.parts.append("\n")

    def block(self, text: str, lines: int) -> None:
        self.request_break(lines)
        self._flush()
        self.parts.append(text)
        self.request_break(lines)

    def pre(self, text: str) -> None:
        self.block(_PRE_TOKEN.format(len(self.preformatted)), 2)
        self.preformatted.append(text.strip("\n"))

    def _flush(self) -> None:
        if self.pending and self.parts:
            self.parts.append("\n" * self.pending)
        self.pending = 0

    def render(self) -> str:
        lines = (line.strip() for line in "".join(self.parts).split("\n"))
        text = _BLANK_LINES.sub("\n\n", "\n".join(lines))
        return _PRE_TOKEN_RE.sub(lambda m: self.preformatted[int(m.group(1))], text).strip()


def decode_html(data: bytes) -> str:
    """Decode HTML bytes: BOM, valid UTF-8, the page's own ``<meta charset>``, then detection."""
    if bom_encoding(data) is None and not is_utf8(data, complete=True):
        declared = EncodingDetector.find_declared_encoding(data, is_html=True)
        if declared:
            codec = _ENCODING_ALIASES.get(declared.lower(), declared)
            try:
                return data.decode(codec, errors="replace")
            except LookupError:
                pass  # an encoding label Python does not know: fall back to detection
    return decode_bytes(data)


def _row_text(row: Tag) -> str:
    cells = [cell.get_text(" ", strip=True) for cell in row.find_all(["td", "th"], recursive=False)]
    return "| " + " | ".join(cells) + " |"


def _walk(node: Tag, out: _Writer) -> None:
    for child in node.children:
        if isinstance(child, NavigableString):
            # Comments, doctypes and CDATA are PreformattedString subclasses: not visible text.
            if not isinstance(child, PreformattedString):
                out.text(_WHITESPACE.sub(" ", str(child)))
        elif isinstance(child, Tag):
            _walk_tag(child, out)


def _walk_tag(tag: Tag, out: _Writer) -> None:
    name = tag.name
    if name in _DROPPED:
        return
    if name in _HEADINGS:
        heading = tag.get_text(" ", strip=True)
        if heading:
            out.block(f"{'#' * _HEADINGS[name]} {heading}", 2)
    elif name == "br":
        out.line_break()
    elif name == "tr":
        out.block(_row_text(tag), 1)
    elif name == "pre":
        out.pre(tag.get_text())
    elif name in _PARAGRAPHS or name in _LINES:
        # A list nested in a list item continues that list: no blank line around it.
        nested_list = name in ("ul", "ol") and tag.find_parent("li") is not None
        lines = 2 if name in _PARAGRAPHS and not nested_list else 1
        out.request_break(lines)
        if name == "li":
            out.text("- ")
        _walk(tag, out)
        out.request_break(lines)
    else:
        _walk(tag, out)


def html_to_text(markup: bytes | str) -> HtmlText:
    """Visible text of an HTML/XHTML document plus its ``<title>``."""
    if isinstance(markup, bytes):
        markup = decode_html(markup)
    soup = BeautifulSoup(markup, "lxml")
    title_tag = soup.find("title")
    title = title_tag.get_text(" ", strip=True) if title_tag is not None else None
    out = _Writer()
    _walk(soup, out)
    return HtmlText(text=out.render(), title=title or None)
