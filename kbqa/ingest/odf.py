"""OpenDocument text (.odt) → markdown-ish text, straight from the package's ``content.xml``.

``unstructured`` converts ODT through pandoc, which is not installed (and is not a Python package), so
kbqa reads the XML itself: headings become ``#`` lines, table rows ``| a | b |`` lines.
"""

from __future__ import annotations

import zipfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

_ODF_TEXT_NS = "urn:oasis:names:tc:opendocument:xmlns:text:1.0"
_ODF_TABLE_NS = "urn:oasis:names:tc:opendocument:xmlns:table:1.0"


def _odf_inline_text(element: Any) -> str:
    """Text of a paragraph, honouring ODF's whitespace elements (<text:s/>, <text:tab/>, ...)."""
    parts = [element.text or ""]
    for child in element:
        tag = child.tag.rsplit("}", 1)[-1] if isinstance(child.tag, str) else ""
        if tag == "s":
            parts.append(" " * int(child.get(f"{{{_ODF_TEXT_NS}}}c", "1")))
        elif tag == "tab":
            parts.append("\t")
        elif tag == "line-break":
            parts.append("\n")
        elif tag not in ("note", "annotation"):
            parts.append(_odf_inline_text(child))
        parts.append(child.tail or "")
    return "".join(parts)


def _odf_table_lines(table: Any) -> Iterator[str]:
    # iter() also reaches rows wrapped in <table:table-header-rows>.
    for row in table.iter(f"{{{_ODF_TABLE_NS}}}table-row"):
        cells = [" ".join(" ".join(_odf_blocks(cell)).split()) for cell in row]
        yield "| " + " | ".join(cells) + " |"


def _odf_blocks(element: Any) -> Iterator[str]:
    for child in element:
        if not isinstance(child.tag, str):
            continue
        if child.tag == f"{{{_ODF_TEXT_NS}}}h":
            level = int(child.get(f"{{{_ODF_TEXT_NS}}}outline-level", "1"))
            yield f"{'#' * min(level, 6)} {_odf_inline_text(child).strip()}"
        elif child.tag == f"{{{_ODF_TEXT_NS}}}p":
            yield _odf_inline_text(child)
        elif child.tag == f"{{{_ODF_TABLE_NS}}}table":
            yield "\n".join(_odf_table_lines(child))
        else:
            yield from _odf_blocks(child)


def odt_text(path: Path) -> str:
    """The document body in reading order; raises zipfile.BadZipFile or KeyError for a non-ODT."""
    from lxml import etree

    with zipfile.ZipFile(path) as archive, archive.open("content.xml") as content:
        # resolve_entities/no_network: a document is untrusted input (XXE).
        parser = etree.XMLParser(resolve_entities=False, no_network=True, huge_tree=True)
        root = etree.parse(content, parser).getroot()
    return "\n\n".join(block for block in _odf_blocks(root) if block.strip())
