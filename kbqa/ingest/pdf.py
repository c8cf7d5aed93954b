"""PDF pages → Documents: the text layer where a page has one, OCR of the rendered page where it has not.

pypdf reads the text layer (fast, exact). A page whose layer holds fewer than ``ocr.min_text_chars_per_page``
characters is a scan (or a scan with a stamped page number): it is rendered with pdfium at ``ocr.dpi`` and
OCR'd, and its Document says ``ocr: true`` with the line boxes in PDF points from the page's top-left.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

from kbqa.errors import DocumentParseError, EmptyDocument
from kbqa.ingest.document import Document
from kbqa.ingest.images import lines_document
from kbqa.ingest.ocr.engine import OCRLine, read_lines
from kbqa.ingest.ocr.settings import OCRSettings
from kbqa.ingest.pdf_tables import PDFTables, may_hold_ruled_table

logger = logging.getLogger(__name__)

_POINTS_PER_INCH = 72
# Pictures smaller than this (bullets, rules, logos) hold no text worth the OCR time.
_MIN_EMBEDDED_SIDE = 64
# A rendered page with no pixel darker than this is blank paper.
_BLANK_LEVEL = 250


def _unlock(reader: Any) -> None:
    """Open PDFs that are encrypted only against editing (empty user password); refuse the rest."""
    if not reader.is_encrypted:
        return
    from pypdf import PasswordType

    if reader.decrypt("") == PasswordType.NOT_DECRYPTED:
        raise DocumentParseError("the PDF is password-protected")


class _Renderer:
    """Opens the file with pdfium on the first scanned page only: text PDFs never pay for it."""

    def __init__(self, path: Path, settings: OCRSettings) -> None:
        self._path = path
        self._settings = settings
        self._pdf: Any = None

    def ocr_page(self, number: int) -> tuple[list[OCRLine], float]:
        """The lines of page ``number`` (1-based) and the pixels-per-point scale their boxes are in."""
        import numpy as np
        import pypdfium2

        if self._pdf is None:
            self._pdf = pypdfium2.PdfDocument(str(self._path), password="")
        page = self._pdf[number - 1]
        try:
            width, height = page.get_size()
            scale = self._settings.dpi / _POINTS_PER_INCH
            pixels = width * height * scale * scale
            if pixels > self._settings.max_image_pixels:
                # A poster-sized page: render it smaller rather than let one page take all memory.
                scale *= (self._settings.max_image_pixels / pixels) ** 0.5
            bitmap = page.render(scale=scale)
            try:
                image = np.asarray(bitmap.to_pil().convert("RGB"))
            finally:
                bitmap.close()
        finally:
            page.close()
        if int(image.min()) >= _BLANK_LEVEL:
            return [], scale  # a blank page: nothing for the detector to find, skip its seconds of work
        return read_lines(image, self._settings), scale

    def close(self) -> None:
        if self._pdf is not None:
            self._pdf.close()


def _embedded_image_lines(page: Any, settings: OCRSettings) -> list[str]:
    import numpy as np

    texts = []
    for picture in page.images:
        image = picture.image
        if image is None or min(image.size) < _MIN_EMBEDDED_SIDE:
            continue
        if image.size[0] * image.size[1] > settings.max_image_pixels:
            continue
        texts.extend(line.text for line in read_lines(np.asarray(image.convert("RGB")), settings))
    return texts


def _with_tables(tables: PDFTables, number: int, path: Path) -> str | None:
    try:
        return tables.page_text(number)
    except Exception as exc:  # pdfminer trips on some files pypdf reads: the page keeps pypdf's text
        logger.warning("%s: page %d: tables not read: %s", path.name, number, exc)
        return None


def load_pdf(path: Path, settings: OCRSettings) -> list[Document]:
    """One Document per page that has text; ``page`` is 1-based."""
    from pypdf import PdfReader

    reader = PdfReader(path, strict=False)
    _unlock(reader)
    renderer = _Renderer(path, settings)
    tables = PDFTables(path)
    documents: list[Document] = []
    failed_pages = 0
    ocr_pages = settings.enabled and settings.min_text_chars_per_page > 0
    try:
        for number, page in enumerate(reader.pages, start=1):
            try:
                text = page.extract_text() or ""
            except Exception as exc:  # one broken page (bad font, bad stream) should not lose the rest
                logger.warning("%s: page %d has an unreadable text layer: %s", path.name, number, exc)
                failed_pages += 1
                text = ""
            layer_chars = len("".join(text.split()))
            if ocr_pages and layer_chars < settings.min_text_chars_per_page:
                lines, scale = renderer.ocr_page(number)
                if len("".join("".join(line.text for line in lines).split())) > layer_chars:
                    documents.append(lines_document(lines, {"page": number}, scale))
                    continue
            if layer_chars and may_hold_ruled_table(page):
                text = _with_tables(tables, number, path) or text
            if settings.enabled and settings.embedded_images and layer_chars:
                pictures = _embedded_image_lines(page, settings)
                if pictures:
                    text = "\n".join([text, *pictures])
            if text.strip():
                documents.append(Document(text, {"page": number}))
    finally:
        renderer.close()
        tables.close()
    if documents:
        return documents
    if failed_pages:
        raise DocumentParseError(f"{path.name}: no page of this PDF could be read")
    hint = "" if ocr_pages else "; it may be a scanned PDF (OCR is turned off: ocr.enabled)"
    raise EmptyDocument(f"{path.name}: the PDF has no extractable text{hint}")
