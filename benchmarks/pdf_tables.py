"""PDF table extraction: cell-level exact match on ruled tables generated with reportlab from known cells.

Each table has a header and 3-12 rows of 2-6 columns: words, numbers, dates, Chinese (reportlab's CID font
STSong-Light) and empty cells, on one line each (wrapped cells are not in the set). The PDF is read back through
kbqa's loader and the Markdown table rows are compared with the cells written, position by position, with
whitespace collapsed.

    python benchmarks/pdf_tables.py [--tables 40] [--write]
"""

from __future__ import annotations

import argparse
import os
import random
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
sys.path.append(str(HERE.parent))

from results_file import replace_section  # noqa: E402

from kbqa.ingest.loaders import load_file  # noqa: E402

HEADING = "## PDF tables (cell-level exact match)"
WORDS = ["pump", "valve", "north", "depot", "invoice", "blue", "Zürich", "alpha", "storage", "meter"]
ZH = ["仓库", "水泵", "北区", "发票", "蓝色", "储存", "电表", "检修"]


def _cell(rng: random.Random) -> str:
    kind = rng.random()
    if kind < 0.1:
        return ""
    if kind < 0.35:
        return str(rng.randint(0, 99999))
    if kind < 0.45:
        return f"2026-{rng.randint(1, 12):02d}-{rng.randint(1, 28):02d}"
    if kind < 0.6:
        return "".join(rng.sample(ZH, 2))
    return " ".join(rng.choice(WORDS) for _ in range(rng.randint(1, 3)))


def make_tables(count: int, seed: int = 0) -> list[list[list[str]]]:
    rng = random.Random(seed)
    tables = []
    for _ in range(count):
        cols = rng.randint(2, 6)
        header = [f"Col {c + 1}" for c in range(cols)]
        rows = [[_cell(rng) for _ in range(cols)] for _ in range(rng.randint(3, 12))]
        tables.append([header, *rows])
    return tables


def write_pdf(tables: list[list[list[str]]], path: Path) -> None:
    from reportlab.lib import colors
    from reportlab.lib.styles import getSampleStyleSheet
    from reportlab.pdfbase import pdfmetrics
    from reportlab.pdfbase.cidfonts import UnicodeCIDFont
    from reportlab.platypus import PageBreak, Paragraph, SimpleDocTemplate, Table, TableStyle

    pdfmetrics.registerFont(UnicodeCIDFont("STSong-Light"))
    styles = getSampleStyleSheet()
    story: list = []
    for index, cells in enumerate(tables):
        story.append(Paragraph(f"Table {index + 1} of the generated set.", styles["BodyText"]))
        table = Table(cells)
        table.setStyle(
            TableStyle([("GRID", (0, 0), (-1, -1), 0.5, colors.black), ("FONT", (0, 0), (-1, -1), "STSong-Light")])
        )
        story += [table, PageBreak()]
    SimpleDocTemplate(str(path)).build(story)


def _rows(markdown: str) -> list[list[str]]:
    rows = []
    for line in markdown.split("\n"):
        if line.startswith("|") and not set(line) <= set("|-: "):
            rows.append([cell.strip().replace("\\|", "|") for cell in line.strip()[1:-1].split(" | ")])
    return rows


def run(count: int) -> tuple[int, int, float]:
    tables = make_tables(count)
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "tables.pdf"
        write_pdf(tables, path)
        started = time.perf_counter()
        docs = load_file(path)
        elapsed = time.perf_counter() - started
    by_page = {doc.metadata["page"]: _rows(doc.text) for doc in docs}
    right = total = 0
    for number, cells in enumerate(tables, start=1):
        read = by_page.get(number, [])
        for r, row in enumerate(cells):
            for c, value in enumerate(row):
                total += 1
                got = read[r][c] if r < len(read) and c < len(read[r]) else None
                right += got is not None and " ".join(got.split()) == " ".join(value.split())
    return right, total, len(tables) / elapsed


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--tables", type=int, default=40)
    parser.add_argument("--write", action="store_true", help="replace the section in benchmarks/RESULTS.md")
    args = parser.parse_args(argv)
    right, total, pages_per_s = run(args.tables)
    text = (
        f"{HEADING}\n\n`python benchmarks/pdf_tables.py --tables {args.tables} --write`: {args.tables} ruled tables "
        "(2-6 columns, 3-12 rows of words, numbers, dates, Chinese and empty cells) drawn with reportlab, one per page "
        "under a line of text, read back through kbqa's PDF loader (pdfplumber for pages that draw lines).\n\n"
        "| cells | exact match | pages/s |\n|---|---|---|\n"
        f"| {total} | {right / total:.1%} | {pages_per_s:.1f} |\n"
    )
    print(text)
    if args.write:
        replace_section(HEADING, text)


if __name__ == "__main__":
    main()
