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


# Rows shaped like an issue tracker export (the shape of Langchain-Chatchat 0.2's sample tables: a pandas index
# column, title, file, url, detail, id); the text is our own. Short and long titles, one-line and
# multi-paragraph details, so that some records fit a 250-character chunk and some are several times longer.
_ISSUE_TITLES = [
    "安装后启动报错",
    "How do I change the default embedding model?",
    "上传 PDF 后检索不到内容",
    "Support for Excel files with several sheets",
    "回答速度很慢，CPU 占用很高，请问有什么优化办法吗？"
    "另外内存也一直在涨，跑一晚上就被系统杀掉了，日志里没有明显的错误，"
    "换了更小的模型也一样，关掉流式输出也一样，把知识库清空以后依然如此，所以怀疑是服务本身的问题而不是模型的问题，"
    "希望维护者能帮忙看看是不是有什么资源没有释放，比如数据库连接、线程池或者是缓存的向量索引一直没有被回收。"
    "我们在三台不同配置的机器上都复现了这个现象，附件里是其中一台机器连续运行十二个小时的内存曲线截图，"
    "另外两台机器的曲线也基本一致，只是上涨的速度稍慢一些。",
    "docker 镜像无法拉取",
    "Chunk size and overlap: what do they mean?",
    "知识库删除后文件夹还在",
    "API returns 500 on empty question",
    "中文分词不准确",
    "Streaming answers stop after the first sentence",
    "如何导入已有的 FAQ 表格",
]
_SHORT_DETAILS = [
    "同上。",
    "Same here, any update?",
    "请问这个问题解决了吗？",
    "Thanks, that fixed it.",
]
_MEDIUM_DETAILS = [
    "在 Windows 上用 conda 环境安装依赖时，faiss-cpu 一直编译失败，换成 pip 安装预编译的 wheel 以后就正常了，"
    "建议在文档里写明 Windows 用户应该用哪个版本的 Python 和哪种安装方式。",
    "When the question is empty the server answers with status 500 and a long traceback instead of a clear message; "
    "a 422 with the name of the missing field would be easier to handle in our client.",
    "切换到英文模型以后，中文问题的检索结果明显变差，排在第一位的经常是不相关的段落。"
    "请问有没有同时支持中英文的轻量模型推荐，最好能在 CPU 上运行。",
]
_LONG_DETAILS = [
    "按照 README 的步骤安装以后，运行 startup.py 报错，提示找不到模型文件。我已经确认模型放在了 models 目录下，"
    "路径里没有中文和空格。\n\n环境：Ubuntu 22.04，Python 3.11，显卡 RTX 3090，驱动 535。\n\n"
    '完整的报错信息如下：\nTraceback (most recent call last):\n  File "startup.py", line 12, in <module>\n'
    "OSError: model folder not found\n\n请问还需要设置哪些环境变量？是否需要先运行初始化脚本？",
    "I tried to switch from the default embedding model to a larger multilingual one by editing the settings file, "
    "but after restarting the server the old model is still used for existing knowledge bases.\n\n"
    "Steps to reproduce: create a knowledge base, upload two PDF files, change the model name, restart.\n\n"
    "Expected: a way to re-embed everything with the new model. Actual: searches return results from the old "
    "vectors, and new uploads fail with a dimension mismatch error that mentions 384 and 768.",
    "上传了一个 80 页的扫描版 PDF，界面显示上传成功，但是提问时总是回答“根据已知信息无法回答该问题”。"
    "后来发现这个文件被切分成了零个片段。\n\n文字版的 PDF 没有这个问题。请问扫描件需要先做 OCR 吗？"
    "有没有推荐的开源工具？如果能在上传时直接提示“没有可提取的文字”就更好了，否则用户完全不知道发生了什么。",
    "Our monthly report is one workbook with twelve sheets, one per month, and each sheet has the same columns: "
    "region, product, units, revenue, comment. The comment column often holds a whole paragraph written by the "
    "regional manager.\n\nOnly the first sheet seems to be indexed, and long comments come back cut in the middle. "
    "Could every sheet be read, and could a long row keep its region and product when it is split?",
]


def _issue_rows(kind: str, count: int) -> list[dict[str, object]]:
    rows: list[dict[str, object]] = []
    for index in range(count):
        title = _ISSUE_TITLES[index % len(_ISSUE_TITLES)]
        if index % 3 == 0:
            detail = _LONG_DETAILS[(index // 3) % len(_LONG_DETAILS)]
        elif index % 3 == 1:
            detail = _MEDIUM_DETAILS[(index // 3) % len(_MEDIUM_DETAILS)]
        else:
            detail = _SHORT_DETAILS[index % len(_SHORT_DETAILS)]
        number = index + (100 if kind == "closed" else 400)
        rows.append(
            {
                "title": title,
                "file": f"2024-05-{index % 28 + 1:02d}.{number:04d}",
                "url": f"https://github.com/example-org/kb-assistant/issues/{number}",
                "detail": detail,
                "id": index,
            }
        )
    return rows


def make_issue_tables(folder: Path, rows: int = 12) -> list[Path]:
    """Six files: issues_{closed,open}.{csv,jsonl,xlsx}; CSV and XLSX carry an unnamed index column first."""
    import csv
    import json

    import openpyxl

    folder.mkdir(parents=True, exist_ok=True)
    paths: list[Path] = []
    columns = ["title", "file", "url", "detail", "id"]
    for kind in ("closed", "open"):
        records = _issue_rows(kind, rows)
        csv_path = folder / f"issues_{kind}.csv"
        with csv_path.open("w", encoding="utf-8", newline="") as fh:
            writer = csv.writer(fh)
            writer.writerow(["", *columns])
            for index, record in enumerate(records):
                writer.writerow([index, *(record[c] for c in columns)])
        jsonl_path = folder / f"issues_{kind}.jsonl"
        jsonl_path.write_text(
            "".join(json.dumps(record, ensure_ascii=False) + "\n" for record in records), encoding="utf-8"
        )
        xlsx_path = folder / f"issues_{kind}.xlsx"
        workbook = openpyxl.Workbook()
        sheet = workbook.active
        sheet.title = "Sheet1"
        sheet.append([None, *columns])
        for index, record in enumerate(records):
            sheet.append([index, *(record[c] for c in columns)])
        workbook.save(xlsx_path)
        paths += [csv_path, jsonl_path, xlsx_path]
    return paths
