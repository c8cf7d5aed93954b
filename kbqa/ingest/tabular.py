"""Spreadsheet and CSV rows → one Document per record.

Each data row becomes ``"header1: v1; header2: v2"``: a row of bare values ("42; 3.5") means nothing
to a retriever, the header names are what a question mentions. The first non-empty row of a sheet is
its header. ``row`` is the 1-based row number a spreadsheet program shows, so a citation can be
checked by opening the file.
"""

from __future__ import annotations

import csv
import datetime as dt
from collections.abc import Iterable, Iterator, Sequence
from pathlib import Path
from typing import Any

from kbqa.ingest.document import Document
from kbqa.ingest.encoding import detect_file_encoding
from kbqa.ingest.records import Record, table_record

# A CSV cell (a pasted article, a JSON blob) can outgrow csv's 128 KiB default; a bigger limit only
# costs memory for the cells that really are that big.
_CSV_FIELD_LIMIT = 64 << 20
_SNIFF_BYTES = 64 << 10
_CSV_DELIMITERS = ",;\t|"

Row = tuple[int, list[str]]


def cell_text(value: Any) -> str:
    """A cell value as people would read it: 3.0 → "3", midnight datetimes as dates."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "TRUE" if value else "FALSE"
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    if isinstance(value, dt.datetime):
        return value.date().isoformat() if value.time() == dt.time() else value.isoformat(sep=" ")
    if isinstance(value, dt.date | dt.time):
        return value.isoformat()
    return str(value).strip()


def row_record(header: Sequence[str], values: Sequence[str]) -> Record:
    """Pair values with their column names, leaving out empty cells."""

    def name(index: int) -> str:
        return header[index] if index < len(header) and header[index] else f"column {index + 1}"

    return table_record(values, name)


def rows_to_documents(rows: Iterable[Row], metadata: dict[str, Any]) -> Iterator[Document]:
    """Records of one table; ``rows`` yields (row number, cell texts) and may hold blank rows."""
    header: list[str] | None = None
    header_row = 0
    emitted = False
    for row_number, cells in rows:
        if not any(cells):
            continue
        if header is None:
            header, header_row = cells, row_number
            continue
        emitted = True
        record = row_record(header, cells)
        yield Document(record.whole, {**metadata, "row": row_number}, record)
    if header is not None and not emitted:
        # A one-row table is all header: keep it, or a small lookup list would vanish.
        yield Document("; ".join(cell for cell in header if cell), {**metadata, "row": header_row})


def _sniff_delimiter(path: Path, encoding: str, default: str) -> str:
    with path.open("r", encoding=encoding, errors="replace", newline="") as fh:
        sample = fh.read(_SNIFF_BYTES)
    try:
        return csv.Sniffer().sniff(sample, delimiters=_CSV_DELIMITERS).delimiter
    except csv.Error:
        return default


def iter_csv_rows(path: Path, delimiter: str | None) -> Iterator[Row]:
    """Stream a delimited file row by row; ``delimiter=None`` sniffs it (``,`` when unsure)."""
    csv.field_size_limit(max(csv.field_size_limit(), _CSV_FIELD_LIMIT))
    encoding = detect_file_encoding(path)
    if delimiter is None:
        delimiter = _sniff_delimiter(path, encoding, default=",")
    with path.open("r", encoding=encoding, errors="replace", newline="") as fh:
        reader = csv.reader(fh, delimiter=delimiter)
        # reader.line_num counts physical lines, so a quoted multi-line cell cannot skew the
        # numbering: a record starts on the line after the one where the previous record ended.
        first_line = 1
        for cells in reader:
            yield first_line, [cell.strip() for cell in cells]
            first_line = reader.line_num + 1


def iter_xlsx_rows(sheet: Any) -> Iterator[Row]:
    """Rows of an openpyxl read-only worksheet, numbered as Excel numbers them."""
    # Some writers store a wrong <dimension>; trusting it would silently cut rows off.
    sheet.reset_dimensions()
    for number, values in enumerate(sheet.iter_rows(values_only=True), start=1):
        yield number, [cell_text(value) for value in values]


def iter_xls_rows(sheet: Any, datemode: int) -> Iterator[Row]:
    """Rows of an xlrd sheet; dates are stored as floats and need the workbook's datemode."""
    import xlrd

    for index in range(sheet.nrows):
        cells = []
        for cell in sheet.row(index):
            if cell.ctype == xlrd.XL_CELL_DATE:
                cells.append(cell_text(xlrd.xldate.xldate_as_datetime(cell.value, datemode)))
            elif cell.ctype == xlrd.XL_CELL_BOOLEAN:
                cells.append(cell_text(bool(cell.value)))
            elif cell.ctype == xlrd.XL_CELL_ERROR:
                cells.append("")
            else:
                cells.append(cell_text(cell.value))
        yield index + 1, cells
