"""Writers for real sample files, made with the same libraries people's tools use (no canned bytes)."""

from __future__ import annotations

import datetime as dt
from email.message import EmailMessage
from pathlib import Path


def make_pdf(path: Path, pages: list[str | None]) -> Path:
    """One PDF page per entry, drawn in reportlab's built-in Chinese CID font; None = a blank page."""
    from reportlab.pdfbase import pdfmetrics
    from reportlab.pdfbase.cidfonts import UnicodeCIDFont
    from reportlab.pdfgen import canvas

    pdfmetrics.registerFont(UnicodeCIDFont("STSong-Light"))
    pdf = canvas.Canvas(str(path))
    for text in pages:
        if text is not None:
            pdf.setFont("STSong-Light", 14)
            for index, line in enumerate(text.split("\n")):
                pdf.drawString(72, 720 - 20 * index, line)
        pdf.showPage()
    pdf.save()
    return path


def make_image_only_pdf(path: Path) -> Path:
    """A 'scanned' page: only a drawn image, no text objects."""
    from PIL import Image, ImageDraw
    from reportlab.lib.utils import ImageReader
    from reportlab.pdfgen import canvas

    image = Image.new("RGB", (200, 60), "white")
    ImageDraw.Draw(image).rectangle((10, 10, 190, 50), outline="black", fill="gray")
    pdf = canvas.Canvas(str(path))
    pdf.drawImage(ImageReader(image), 72, 600, width=200, height=60)
    pdf.showPage()
    pdf.save()
    return path


def make_encrypted_pdf(path: Path) -> Path:
    from reportlab.pdfgen import canvas

    pdf = canvas.Canvas(str(path), encrypt="s3cret")
    pdf.drawString(72, 720, "classified text")
    pdf.showPage()
    pdf.save()
    return path


def make_docx(path: Path) -> Path:
    import docx

    document = docx.Document()
    document.add_heading("项目概述", level=1)
    document.add_paragraph("The first paragraph explains the retrieval pipeline.")
    table = document.add_table(rows=3, cols=2)
    for row, (name, value) in enumerate([("模型", "版本"), ("bge-small", "1.5"), ("qwen", "2.5")]):
        table.cell(row, 0).text = name
        table.cell(row, 1).text = value
    document.add_heading("Deployment", level=2)
    document.add_paragraph("Closing paragraph after the table.")
    document.save(str(path))
    return path


def make_pptx(path: Path) -> Path:
    from pptx import Presentation
    from pptx.util import Inches

    deck = Presentation()
    first = deck.slides.add_slide(deck.slide_layouts[1])  # title and content
    first.shapes.title.text = "季度报告"
    first.placeholders[1].text = "Revenue grew by 12 percent"
    first.notes_slide.notes_text_frame.text = "Mention the new customers."

    second = deck.slides.add_slide(deck.slide_layouts[5])  # title only
    second.shapes.title.text = "Pricing table"
    table = second.shapes.add_table(2, 2, Inches(1), Inches(2), Inches(6), Inches(1.5)).table
    for row, (plan, price) in enumerate([("Plan", "Price"), ("Enterprise", "999 USD")]):
        table.cell(row, 0).text = plan
        table.cell(row, 1).text = price
    deck.save(str(path))
    return path


def make_xlsx(path: Path) -> Path:
    import openpyxl

    workbook = openpyxl.Workbook()
    staff = workbook.active
    staff.title = "员工"
    staff.append([None, None])  # a blank first row: the header is the first non-empty row
    staff.append(["姓名", "城市", "入职日期"])
    staff.append(["张三", "北京", dt.datetime(2023, 5, 1)])
    staff.append([None, None, None])  # blank rows are skipped
    staff.append(["李四", "上海", dt.datetime(2024, 1, 15)])
    prices = workbook.create_sheet("Prices")
    prices.append(["Item", "Price"])
    prices.append(["Widget", 3.0])
    prices.append(["Gadget", 4.5])
    workbook.save(str(path))
    return path


def make_xls(path: Path) -> Path:
    import xlwt

    workbook = xlwt.Workbook(encoding="utf-8")
    sheet = workbook.add_sheet("库存")
    for row, values in enumerate([("产品", "数量"), ("键盘", 12), ("鼠标", 30)]):
        for col, value in enumerate(values):
            sheet.write(row, col, value)
    workbook.save(str(path))
    return path


def make_epub(path: Path) -> Path:
    from ebooklib import epub

    book = epub.EpubBook()
    book.set_identifier("kbqa-test-book")
    book.set_title("测试之书")
    book.set_language("zh")
    chapters = [
        ("第一章 起源", "chap1.xhtml", "<h1>第一章 起源</h1><p>故事从一个小村庄开始。</p>"),
        ("Chapter Two", "chap2.xhtml", "<h1>Chapter Two</h1><p>The hero leaves the village.</p>"),
    ]
    items = []
    for title, file_name, body in chapters:
        item = epub.EpubHtml(title=title, file_name=file_name, lang="zh")
        item.content = f"<html><head><title>{title}</title></head><body>{body}</body></html>"
        book.add_item(item)
        items.append(item)
    book.toc = [epub.Link(item.file_name, title, item.id) for item, (title, _, _) in zip(items, chapters, strict=True)]
    book.add_item(epub.EpubNcx())
    book.add_item(epub.EpubNav())
    book.spine = ["nav", *items]
    epub.write_epub(str(path), book)
    return path


def make_eml(path: Path, *, html_only: bool = False) -> Path:
    message = EmailMessage()
    message["Subject"] = "会议纪要 Q3 planning"
    message["From"] = "Alice <alice@example.com>"
    message["To"] = "bob@example.com"
    message["Date"] = "Mon, 02 Oct 2023 10:00:00 +0800"
    if html_only:
        message.set_content("<html><body><h2>议程</h2><p>Budget review at <b>3pm</b>.</p></body></html>", "html")
    else:
        message.set_content("大家好，\n会议定于周五下午三点。\n")
        message.add_alternative("<p>HTML version should not be used</p>", subtype="html")
        message.add_attachment(b"%PDF-1.4 fake", maintype="application", subtype="pdf", filename="budget.pdf")
    path.write_bytes(bytes(message))
    return path


def make_odt(path: Path) -> Path:
    """An OpenDocument text written by docutils' ODT writer (a pinned dependency)."""
    from docutils.core import publish_file

    source = path.with_suffix(".rst")
    source.write_text(
        "产品手册\n========\n\nThe ODT body paragraph mentions 向量检索.\n\n"
        "=====  =====\nKey    Value\n=====  =====\nalpha  1\n=====  =====\n",
        encoding="utf-8",
    )
    publish_file(
        source_path=str(source),
        destination_path=str(path),
        writer="odt",
        settings_overrides={"report_level": 5},
    )
    source.unlink()
    return path
