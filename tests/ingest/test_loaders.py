"""kbqa.ingest.loaders on real files generated per test (reportlab, python-docx, openpyxl, ...)."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from kbqa.errors import DocumentParseError, EmptyDocument, UnsupportedFile
from kbqa.ingest.encoding import clean_text, decode_bytes
from kbqa.ingest.loaders import load_file, loader_name, supported_extensions
from kbqa.ingest.ocr.settings import OCRSettings
from tests.ingest import fixtures

REQUIRED_EXTENSIONS = {
    ".txt", ".md", ".markdown", ".html", ".htm", ".pdf", ".docx", ".pptx", ".xlsx", ".xls",
    ".csv", ".tsv", ".json", ".jsonl", ".epub", ".rst", ".eml",
}  # fmt: skip


def _texts(path: Path) -> list[str]:
    return [doc.text for doc in load_file(path)]


# --------------------------------------------------------------------------- registry


def test_supported_extensions_cover_the_required_formats() -> None:
    extensions = supported_extensions()
    assert extensions >= REQUIRED_EXTENSIONS
    assert all(ext.startswith(".") and ext == ext.lower() for ext in extensions)


def test_loader_name_is_case_insensitive() -> None:
    assert loader_name(Path("report.PDF")) == "PDFLoader"
    assert loader_name(Path("a/b/table.Xlsx")) == "XlsxLoader"
    assert loader_name(Path("notes.md")) == "MarkdownLoader"


@pytest.mark.parametrize("name", ["virus.exe", "Makefile", "archive.tar.gz"])
def test_unknown_extension_is_unsupported(tmp_path: Path, name: str) -> None:
    path = tmp_path / name
    path.write_bytes(b"MZ\x90\x00 some bytes")
    with pytest.raises(UnsupportedFile) as info:
        load_file(path)
    assert str(tmp_path) not in info.value.message  # nothing about our folders leaks
    assert ".pdf" in info.value.message
    with pytest.raises(UnsupportedFile):
        loader_name(path)


@pytest.mark.parametrize("ext", sorted((REQUIRED_EXTENSIONS | {".odt", ".xml"}) - {".pdf"}))
def test_zero_byte_file_gives_no_documents(tmp_path: Path, ext: str) -> None:
    path = tmp_path / f"empty{ext}"
    path.touch()
    assert load_file(path) == []


# --------------------------------------------------------------------------- text & encodings


def test_gbk_text_is_decoded(tmp_path: Path) -> None:
    path = tmp_path / "gbk.txt"
    path.write_bytes("你好，世界".encode("gbk"))  # short text: charset-normalizer alone guesses cp949
    assert _texts(path) == ["你好，世界"]


def test_gb18030_longer_text_is_decoded(tmp_path: Path) -> None:
    text = "知识库问答系统：这是一个测试编码检测的中文文本。\n第二行：北京、上海、广州。"
    path = tmp_path / "gb.txt"
    path.write_bytes(text.encode("gb18030"))
    assert _texts(path) == [text]


@pytest.mark.parametrize("codec", ["utf-16", "utf-16-be", "utf-8-sig"])
def test_bom_encodings_are_decoded(tmp_path: Path, codec: str) -> None:
    text = "Unicode 文本 with a BOM\nsecond line"
    data = text.encode(codec)
    if codec == "utf-16-be":
        data = b"\xfe\xff" + data
    path = tmp_path / "bom.txt"
    path.write_bytes(data)
    assert _texts(path) == [text]


def test_big5_text_is_decoded(tmp_path: Path) -> None:
    text = "知識庫問答系統：這是一個用來測試編碼檢測的中文文字檔案。我們希望它能夠正確識別。"
    path = tmp_path / "big5.txt"
    path.write_bytes(text.encode("big5"))
    assert _texts(path) == [text]


def test_text_is_cleaned_but_otherwise_intact(tmp_path: Path) -> None:
    path = tmp_path / "messy.txt"
    path.write_bytes(b"Title\r\nLine\x00 two\r\n\r\n\r\n\r\n\r\nAfter MANY blanks\r\n")
    assert _texts(path) == ["Title\nLine two\n\n\nAfter MANY blanks"]


def test_clean_text_keeps_two_blank_lines_at_most() -> None:
    assert clean_text("a\n\n\nb") == "a\n\n\nb"
    assert clean_text("a\n\n \n\t\n\nb") == "a\n\n\nb"
    assert clean_text("a\rb") == "a\nb"


def test_markdown_is_kept_raw_and_rst_as_text(tmp_path: Path) -> None:
    markdown = "# 安装\n\n运行 `pip install kbqa`。\n\n## Usage\n\n- item"
    (tmp_path / "readme.md").write_text(markdown, encoding="utf-8")
    assert _texts(tmp_path / "readme.md") == [markdown]
    rst = "Guide\n=====\n\n.. note:: Keep backups."
    (tmp_path / "guide.rst").write_text(rst, encoding="utf-8")
    assert _texts(tmp_path / "guide.rst") == [rst]


def test_binary_junk_with_txt_name_is_a_parse_error(tmp_path: Path) -> None:
    path = tmp_path / "junk.txt"
    path.write_bytes(bytes(range(256)) * 4 + os.urandom(2048))
    with pytest.raises(DocumentParseError, match=r"junk\.txt"):
        load_file(path)


def test_whitespace_only_file_is_empty_document(tmp_path: Path) -> None:
    path = tmp_path / "blank.md"
    path.write_text("\n\n   \n", encoding="utf-8")
    with pytest.raises(EmptyDocument, match="no text"):
        load_file(path)


def test_decode_bytes_prefers_utf8() -> None:
    assert decode_bytes("naïve café 中文".encode()) == "naïve café 中文"


# --------------------------------------------------------------------------- HTML


def test_html_drops_boilerplate_and_keeps_structure(tmp_path: Path) -> None:
    html = """<!DOCTYPE html><html><head><meta charset="gbk"><title>产品说明</title>
    <style>body {color: red}</style><script>var secret = 1;</script></head>
    <body><nav><a href="/">首页</a> | <a href="/about">关于</a></nav>
    <h1>安装指南</h1><p>第一步：下载   安装包。<!-- hidden comment --></p>
    <h2>Requirements</h2><ul><li>Python 3.11</li><li>8 GB RAM</li></ul>
    <table><tr><th>参数</th><th>默认值</th></tr><tr><td>top_k</td><td>3</td></tr></table>
    <pre>def f():
    return 1</pre></body></html>"""
    path = tmp_path / "page.HTM"
    path.write_bytes(html.encode("gbk"))
    [doc] = load_file(path)
    assert doc.metadata["title"] == "产品说明"
    assert "# 安装指南" in doc.text
    assert "## Requirements" in doc.text
    assert "第一步：下载 安装包。" in doc.text
    assert "- Python 3.11" in doc.text
    assert "| 参数 | 默认值 |\n| top_k | 3 |" in doc.text
    assert "def f():\n    return 1" in doc.text  # <pre> keeps its indentation
    for dropped in ("secret", "color: red", "首页", "hidden comment"):
        assert dropped not in doc.text


def test_html_without_declared_charset_is_detected(tmp_path: Path) -> None:
    path = tmp_path / "legacy.html"
    body = "<html><body><p>这是一个没有声明编码的旧网页，内容使用国标编码保存。</p></body></html>"
    path.write_bytes(body.encode("gb18030"))
    assert _texts(path) == ["这是一个没有声明编码的旧网页，内容使用国标编码保存。"]


# --------------------------------------------------------------------------- PDF


def test_pdf_one_document_per_page_with_chinese(tmp_path: Path) -> None:
    path = fixtures.make_pdf(tmp_path / "zh.pdf", ["知识库问答系统\n第一页内容", None, "Third page in English"])
    docs = load_file(path)
    assert [doc.metadata["page"] for doc in docs] == [1, 3]  # the blank page 2 is skipped
    assert "知识库问答系统" in docs[0].text and "第一页内容" in docs[0].text
    assert "Third page in English" in docs[1].text


def test_pdf_without_text_and_ocr_off_says_so(tmp_path: Path) -> None:
    path = fixtures.make_image_only_pdf(tmp_path / "scan.pdf")
    with pytest.raises(EmptyDocument, match="OCR"):
        load_file(path, OCRSettings(enabled=False))


def test_scanned_pdf_without_any_text_is_an_empty_document(tmp_path: Path) -> None:
    # A grey box: the page is OCR'd and still holds no text.
    with pytest.raises(EmptyDocument):
        load_file(fixtures.make_image_only_pdf(tmp_path / "scan.pdf"))


def test_encrypted_pdf_is_a_parse_error(tmp_path: Path) -> None:
    path = fixtures.make_encrypted_pdf(tmp_path / "locked.pdf")
    with pytest.raises(DocumentParseError, match="password"):
        load_file(path)


@pytest.mark.parametrize(
    ("name", "data"),
    [
        ("random.pdf", os.urandom(4096)),
        ("truncated.pdf", b"%PDF-1.7\n1 0 obj << /Type /Catalog"),
        ("notzip.docx", b"this is plain text, not a zip package"),
        ("notzip.pptx", os.urandom(1024)),
        ("notzip.xlsx", b"a,b,c\n1,2,3\n"),
        ("notxls.xls", os.urandom(1024)),
        ("notzip.epub", b"<html>not an epub</html>"),
        ("notzip.odt", b"plain"),
    ],
)
def test_corrupt_binary_formats_raise_parse_error(tmp_path: Path, name: str, data: bytes) -> None:
    path = tmp_path / name
    path.write_bytes(data)
    with pytest.raises(DocumentParseError) as info:
        load_file(path)
    message = info.value.message
    assert message.startswith(name)
    assert "Traceback" not in message and str(tmp_path) not in message
    assert "\n" not in message


# --------------------------------------------------------------------------- Office


def test_docx_paragraphs_tables_and_headings_in_order(tmp_path: Path) -> None:
    [doc] = load_file(fixtures.make_docx(tmp_path / "spec.docx"))
    text = doc.text
    assert "# 项目概述" in text and "## Deployment" in text
    assert "| 模型 | 版本 |" in text and "| bge-small | 1.5 |" in text and "| qwen | 2.5 |" in text
    order = [text.index(s) for s in ("项目概述", "first paragraph", "bge-small", "Deployment", "Closing")]
    assert order == sorted(order)


def test_docx_chinese_heading_style_becomes_a_heading(tmp_path: Path) -> None:
    import docx
    from docx.enum.style import WD_STYLE_TYPE

    document = docx.Document()
    document.styles.add_style("标题 2", WD_STYLE_TYPE.PARAGRAPH)
    document.add_paragraph("安装步骤", style="标题 2")
    document.add_paragraph("正文内容")
    document.save(str(tmp_path / "wps.docx"))
    assert _texts(tmp_path / "wps.docx") == ["## 安装步骤\n\n正文内容"]


def test_pptx_one_document_per_slide_with_tables_and_notes(tmp_path: Path) -> None:
    docs = load_file(fixtures.make_pptx(tmp_path / "deck.pptx"))
    assert [doc.metadata["slide"] for doc in docs] == [1, 2]
    assert "季度报告" in docs[0].text and "Revenue grew by 12 percent" in docs[0].text
    assert "Mention the new customers." in docs[0].text  # speaker notes
    assert "| Enterprise | 999 USD |" in docs[1].text
    assert docs[1].metadata["title"] == "Pricing table"


def test_xlsx_rows_pair_values_with_headers(tmp_path: Path) -> None:
    docs = load_file(fixtures.make_xlsx(tmp_path / "book.xlsx"))
    records = [(doc.metadata["sheet"], doc.metadata["row"], doc.text) for doc in docs]
    assert records == [
        ("员工", 3, "姓名: 张三; 城市: 北京; 入职日期: 2023-05-01"),
        ("员工", 5, "姓名: 李四; 城市: 上海; 入职日期: 2024-01-15"),
        ("Prices", 2, "Item: Widget; Price: 3"),
        ("Prices", 3, "Item: Gadget; Price: 4.5"),
    ]


def test_xls_rows_pair_values_with_headers(tmp_path: Path) -> None:
    docs = load_file(fixtures.make_xls(tmp_path / "legacy.xls"))
    assert [(d.metadata["sheet"], d.metadata["row"], d.text) for d in docs] == [
        ("库存", 2, "产品: 键盘; 数量: 12"),
        ("库存", 3, "产品: 鼠标; 数量: 30"),
    ]


def test_xlsx_saved_with_xls_name_still_loads(tmp_path: Path) -> None:
    path = fixtures.make_xlsx(tmp_path / "misnamed.xls")
    assert loader_name(path) == "XlsLoader"
    assert "Item: Gadget; Price: 4.5" in _texts(path)


# --------------------------------------------------------------------------- CSV / TSV


def test_csv_one_document_per_row_gbk(tmp_path: Path) -> None:
    path = tmp_path / "people.csv"
    rows = ["姓名,城市,备注", "张三,北京,", '李四,上海,"多行\n备注"', "", "王五,广州,ok"]
    path.write_bytes("\r\n".join(rows).encode("gbk"))
    docs = load_file(path)
    assert [doc.text for doc in docs] == [
        "姓名: 张三; 城市: 北京",
        "姓名: 李四; 城市: 上海; 备注: 多行\n备注",
        "姓名: 王五; 城市: 广州; 备注: ok",
    ]
    assert [doc.metadata["row"] for doc in docs] == [2, 3, 6]


def test_csv_semicolon_delimiter_is_sniffed(tmp_path: Path) -> None:
    path = tmp_path / "eu.csv"
    path.write_text("name;price\nApfel;1,50\nBirne;2,00\n", encoding="utf-8")
    assert _texts(path) == ["name: Apfel; price: 1,50", "name: Birne; price: 2,00"]


def test_tsv_with_bom(tmp_path: Path) -> None:
    path = tmp_path / "t.tsv"
    path.write_text("id\tquestion\n1\t如何安装？\n2\tHow to upgrade?\n", encoding="utf-8-sig")
    docs = load_file(path)
    assert [d.text for d in docs] == ["id: 1; question: 如何安装？", "id: 2; question: How to upgrade?"]
    assert [d.metadata["row"] for d in docs] == [2, 3]


def test_large_csv_streams_every_row(tmp_path: Path) -> None:
    path = tmp_path / "big.csv"
    with path.open("w", encoding="utf-8", newline="") as fh:
        fh.write("id,text\n")
        for i in range(20_000):
            fh.write(f"{i},row number {i} 的内容\n")
    docs = load_file(path)
    assert len(docs) == 20_000
    assert docs[-1].text == "id: 19999; text: row number 19999 的内容"
    assert docs[-1].metadata["row"] == 20_001


# --------------------------------------------------------------------------- JSON


def test_json_object_is_pretty_text(tmp_path: Path) -> None:
    path = tmp_path / "conf.json"
    path.write_text(json.dumps({"名称": "知识库", "top_k": 3}), encoding="utf-8")
    [doc] = load_file(path)
    assert '"名称": "知识库"' in doc.text and '"top_k": 3' in doc.text


def test_json_list_one_document_per_element(tmp_path: Path) -> None:
    path = tmp_path / "faq.json"
    path.write_text(json.dumps(["第一条", {"q": "why?"}, "", "third"], ensure_ascii=False), encoding="utf-8")
    docs = load_file(path)
    assert [(d.metadata["index"], d.text) for d in docs] == [
        (0, "第一条"),
        (1, '{\n  "q": "why?"\n}'),
        (3, "third"),
    ]


def test_invalid_json_names_the_line(tmp_path: Path) -> None:
    path = tmp_path / "bad.json"
    path.write_text('{\n  "a": 1,\n  "b": \n}', encoding="utf-8")
    with pytest.raises(DocumentParseError, match="line 4"):
        load_file(path)


def test_jsonl_line_numbers_and_bad_line(tmp_path: Path) -> None:
    path = tmp_path / "data.jsonl"
    path.write_text('{"q": "问题一"}\n\n"plain string"\n', encoding="utf-8")
    docs = load_file(path)
    assert [d.metadata["line"] for d in docs] == [1, 3]
    assert '"q": "问题一"' in docs[0].text and docs[1].text == "plain string"

    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"ok": 1}\n{"ok": 2}\n{broken\n', encoding="utf-8")
    with pytest.raises(DocumentParseError, match="line 3"):
        load_file(bad)


# --------------------------------------------------------------------------- e-books, mail, ODF, XML


def test_epub_chapters_in_spine_order_with_titles(tmp_path: Path) -> None:
    docs = load_file(fixtures.make_epub(tmp_path / "book.epub"))
    assert [d.metadata["title"] for d in docs] == ["第一章 起源", "Chapter Two"]
    assert "故事从一个小村庄开始。" in docs[0].text
    assert "The hero leaves the village." in docs[1].text


def test_eml_headers_plain_body_and_attachments(tmp_path: Path) -> None:
    [doc] = load_file(fixtures.make_eml(tmp_path / "mail.eml"))
    assert doc.metadata["title"] == "会议纪要 Q3 planning"
    assert "Subject: 会议纪要 Q3 planning" in doc.text
    assert "From: Alice <alice@example.com>" in doc.text and "To: bob@example.com" in doc.text
    assert "会议定于周五下午三点。" in doc.text
    assert "HTML version" not in doc.text  # text/plain is preferred
    assert "Attachments: budget.pdf" in doc.text


def test_eml_html_only_body_is_converted(tmp_path: Path) -> None:
    [doc] = load_file(fixtures.make_eml(tmp_path / "html.eml", html_only=True))
    assert "## 议程" in doc.text and "Budget review at 3pm." in doc.text
    assert "<p>" not in doc.text


def test_odt_text_and_table(tmp_path: Path) -> None:
    [doc] = load_file(fixtures.make_odt(tmp_path / "manual.odt"))
    assert "产品手册" in doc.text
    assert "The ODT body paragraph mentions 向量检索." in doc.text
    assert "| alpha | 1 |" in doc.text


def test_xml_via_unstructured_offline(tmp_path: Path) -> None:
    path = tmp_path / "catalog.xml"
    path.write_text(
        '<?xml version="1.0" encoding="UTF-8"?><catalog><book id="1"><title>深度学习入门</title>'
        "<summary>This book explains neural networks in simple words.</summary></book></catalog>",
        encoding="utf-8",
    )
    assert loader_name(path) == "UnstructuredXMLLoader"
    [doc] = load_file(path)
    assert "深度学习入门" in doc.text
    assert "This book explains neural networks in simple words." in doc.text
    assert "<title>" not in doc.text


def test_malformed_xml_is_a_parse_error(tmp_path: Path) -> None:
    path = tmp_path / "broken.xml"
    path.write_text("<root><a>unclosed</root>", encoding="utf-8")
    with pytest.raises(DocumentParseError, match=r"broken\.xml"):
        load_file(path)


# --------------------------------------------------------------------------- tables as Markdown


def test_docx_table_is_a_markdown_table_with_its_header_line(tmp_path: Path) -> None:
    import docx

    document = docx.Document()
    document.add_paragraph("Opening hours by site.")
    table = document.add_table(rows=3, cols=3)
    cells = [("Site", "Opens", "Note"), ("North | East", "07:30", "line one\nline two"), ("South", "08:00", "")]
    for row, values in enumerate(cells):
        for col, value in enumerate(values):
            table.cell(row, col).text = value
    document.save(str(tmp_path / "hours.docx"))
    [doc] = load_file(tmp_path / "hours.docx")
    assert doc.text.split("\n\n")[1] == (
        "| Site | Opens | Note |\n|---|---|---|\n| North \\| East | 07:30 | line one line two |\n| South | 08:00 |  |"
    )


def test_pptx_table_is_a_markdown_table(tmp_path: Path) -> None:
    from pptx import Presentation
    from pptx.util import Inches

    deck = Presentation()
    slide = deck.slides.add_slide(deck.slide_layouts[5])
    shape = slide.shapes.add_table(2, 2, Inches(1), Inches(2), Inches(4), Inches(1))
    for (row, col), value in {(0, 0): "Metric", (0, 1): "Q3", (1, 0): "Revenue", (1, 1): "4.2M"}.items():
        shape.table.cell(row, col).text = value
    deck.save(str(tmp_path / "q3.pptx"))
    [doc] = load_file(tmp_path / "q3.pptx")
    assert "| Metric | Q3 |\n|---|---|\n| Revenue | 4.2M |" in doc.text


def test_pdf_ruled_table_is_a_markdown_table_between_its_paragraphs(tmp_path: Path) -> None:
    from reportlab.lib import colors
    from reportlab.lib.styles import getSampleStyleSheet
    from reportlab.platypus import Paragraph, SimpleDocTemplate, Table, TableStyle

    styles = getSampleStyleSheet()
    cells = [["Depot", "Opens", "Staff"]] + [[f"Depot {i}", f"0{6 + i % 3}:30", str(10 + i)] for i in range(6)]
    table = Table(cells)
    table.setStyle(TableStyle([("GRID", (0, 0), (-1, -1), 0.5, colors.black)]))
    path = tmp_path / "depots.pdf"
    story = [Paragraph("Opening hours are listed below.", styles["BodyText"]), table]
    story.append(Paragraph("Closing remark after the table.", styles["BodyText"]))
    SimpleDocTemplate(str(path)).build(story)
    [doc] = load_file(path)
    lines = doc.text.split("\n")
    assert lines[0] == "Opening hours are listed below."
    assert lines[1:4] == ["| Depot | Opens | Staff |", "|---|---|---|", "| Depot 0 | 06:30 | 10 |"]
    assert lines[8] == "| Depot 5 | 08:30 | 15 |"
    assert lines[9] == "Closing remark after the table."
    assert doc.metadata == {"page": 1}
