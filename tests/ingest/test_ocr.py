"""Images and scanned PDF pages through the real OCR engine (RapidOCR, PP-OCRv4), on text drawn with a Noto font."""

from __future__ import annotations

from pathlib import Path

import pytest

from kbqa.errors import DocumentParseError, EmptyDocument
from kbqa.ingest.loaders import load_file, loader_name
from kbqa.ingest.ocr.settings import OCRSettings
from tests.ingest import scans

LINES = ["The warehouse opens at seven thirty.", "仓库每天早上七点半开门。", "Deliveries go to dock 4."]


def test_image_lines_come_in_reading_order_with_their_boxes(tmp_path: Path) -> None:
    path = scans.save_lines(tmp_path / "notice.png", LINES)
    [doc] = load_file(path)
    lines = doc.text.split("\n")
    assert len(lines) == 3
    assert lines[0] == LINES[0]
    assert "仓库每天早上七点半" in lines[1]
    assert lines[2] == LINES[2]
    assert doc.metadata["ocr"] is True
    boxes = doc.metadata["line_boxes"]
    assert len(boxes) == 3
    tops = [box[1] for box in boxes]
    assert tops == sorted(tops)
    width, height = 720, 24 * 2 + 54 * 3
    for x0, y0, x1, y1 in boxes:
        assert 0 <= x0 < x1 <= width and 0 <= y0 < y1 <= height


def test_pieces_of_one_line_are_joined_left_to_right(tmp_path: Path) -> None:
    from PIL import Image, ImageDraw, ImageFont

    font = ImageFont.truetype(scans.cjk_font_path(), 30)
    image = Image.new("RGB", (720, 90), "white")
    draw = ImageDraw.Draw(image)
    # A label and its value far apart, as in a form: the detector returns two boxes.
    draw.text((24, 24), "API port", font=font, fill="black")
    draw.text((520, 26), "7861", font=font, fill="black")
    image.save(tmp_path / "form.png")
    [doc] = load_file(tmp_path / "form.png")
    assert doc.text == "API port 7861"
    assert len(doc.metadata["line_boxes"]) == 1


@pytest.mark.parametrize("ext", [".jpg", ".jpeg", ".bmp", ".tif", ".tiff", ".webp"])
def test_every_image_format_is_read(tmp_path: Path, ext: str) -> None:
    path = scans.save_lines(tmp_path / f"card{ext}", ["Invoice 2024-118"], width=360)
    assert loader_name(path) == "ImageOCRLoader"
    [doc] = load_file(path)
    assert doc.text == "Invoice 2024-118"


def test_transparent_png_is_read_on_white(tmp_path: Path) -> None:
    image = scans.render_lines(["Logo text on nothing"], width=420).convert("RGBA")  # type: ignore[attr-defined]
    # Black text on a fully transparent background: read naively, black on black.
    pixels = [(0, 0, 0, 255 - r) for r, _g, _b, _a in image.getdata()]
    image.putdata(pixels)
    image.save(tmp_path / "logo.png")
    [doc] = load_file(tmp_path / "logo.png")
    assert doc.text == "Logo text on nothing"


def test_scanned_pages_are_ocred_and_text_pages_are_not(tmp_path: Path) -> None:
    path = scans.scanned_pdf(
        tmp_path / "mixed.pdf",
        [LINES, "This page has a real text layer, read without OCR.", []],
    )
    docs = load_file(path)
    assert [doc.metadata["page"] for doc in docs] == [1, 2]  # page 3 is blank paper
    scanned, typed = docs
    assert scanned.metadata["ocr"] is True
    assert LINES[0] in scanned.text and "仓库每天早上七点半" in scanned.text
    # Boxes are in PDF points: the picture sits at x=60 pt, 432 pt wide, at the top of a 842 pt page.
    x0, y0, x1, _y1 = scanned.metadata["line_boxes"][0]
    assert 55 < x0 < 80 and x1 < 60 + 432 and y0 < 120
    assert "ocr" not in typed.metadata and "line_boxes" not in typed.metadata
    assert typed.text == "This page has a real text layer, read without OCR."


def test_a_page_number_alone_does_not_count_as_a_text_layer(tmp_path: Path) -> None:
    from reportlab.lib.utils import ImageReader
    from reportlab.pdfgen import canvas

    path = tmp_path / "stamped.pdf"
    pdf = canvas.Canvas(str(path))
    pdf.drawImage(ImageReader(scans.render_lines([LINES[2]])), 60, 700, width=432, height=62)
    pdf.drawString(300, 30, "- 7 -")
    pdf.showPage()
    pdf.save()
    [doc] = load_file(path)
    assert doc.metadata["ocr"] is True and LINES[2] in doc.text
    # With the threshold at 0 the stamped number is the page's text and nothing is OCR'd.
    [plain] = load_file(path, OCRSettings(min_text_chars_per_page=0))
    assert plain.text.strip() == "- 7 -" and "ocr" not in plain.metadata


def test_a_huge_page_is_rendered_smaller_instead_of_filling_memory(tmp_path: Path) -> None:
    from reportlab.lib.utils import ImageReader
    from reportlab.pdfgen import canvas

    path = tmp_path / "poster.pdf"
    side = 14_400  # 200 inches, the largest page PDF allows: 1.6 billion pixels at 200 dpi
    pdf = canvas.Canvas(str(path), pagesize=(side, side))
    pdf.drawImage(ImageReader(scans.render_lines(["Summer sale"], width=300)), 400, 6000, width=13_000, height=4_700)
    pdf.showPage()
    pdf.save()
    [doc] = load_file(path, OCRSettings(max_image_pixels=1_000_000))
    assert doc.metadata["ocr"] is True and "Summer sale" in doc.text
    # Boxes stay in PDF points whatever the render scale was.
    x0, _y0, x1, _y1 = doc.metadata["line_boxes"][0]
    assert 400 < x0 < x1 < 13_400


def test_with_ocr_off_images_are_refused_and_scans_say_so(tmp_path: Path) -> None:
    off = OCRSettings(enabled=False)
    image = scans.save_lines(tmp_path / "note.png", ["hello"], width=200)
    with pytest.raises(DocumentParseError, match=r"ocr\.enabled"):
        load_file(image, off)
    pdf = scans.scanned_pdf(tmp_path / "scan.pdf", [["hello there"]])
    with pytest.raises(EmptyDocument, match="OCR"):
        load_file(pdf, off)


def test_decompression_bomb_is_refused_before_decoding(tmp_path: Path) -> None:
    path = scans.decompression_bomb_png(tmp_path / "bomb.png")
    assert path.stat().st_size < 1 << 20
    with pytest.raises(DocumentParseError) as info:
        load_file(path)
    assert info.value.message.startswith("bomb.png") and "ocr.max_image_pixels" in info.value.message


def test_an_image_above_the_limit_is_refused(tmp_path: Path) -> None:
    path = scans.save_lines(tmp_path / "wide.png", ["too big"], width=4000)
    with pytest.raises(DocumentParseError, match=r"4000 x \d+ pixels, above ocr.max_image_pixels \(100000\)"):
        load_file(path, OCRSettings(max_image_pixels=100_000))


@pytest.mark.parametrize(
    ("name", "data"),
    [
        ("broken.png", b"\x89PNG\r\n\x1a\n" + b"\x00" * 64),
        ("noise.jpg", bytes(range(256)) * 8),
        ("cut.tiff", b"II*\x00"),
    ],
)
def test_corrupt_images_are_parse_errors(tmp_path: Path, name: str, data: bytes) -> None:
    path = tmp_path / name
    path.write_bytes(data)
    with pytest.raises(DocumentParseError) as info:
        load_file(path)
    assert info.value.message.startswith(name) and "\n" not in info.value.message


@pytest.mark.parametrize("name", ["empty.png", "empty.pdf"])
def test_zero_byte_image_or_pdf_is_a_parse_error(tmp_path: Path, name: str) -> None:
    path = tmp_path / name
    path.write_bytes(b"")
    with pytest.raises(DocumentParseError, match=r"empty \(0 bytes\)"):
        load_file(path)


def test_a_blank_image_is_an_empty_document(tmp_path: Path) -> None:
    scans.save_lines(tmp_path / "blank.png", [], width=300)
    with pytest.raises(EmptyDocument):
        load_file(tmp_path / "blank.png")


def test_pictures_inside_text_pages_are_read_only_when_asked(tmp_path: Path) -> None:
    from reportlab.lib.utils import ImageReader
    from reportlab.pdfgen import canvas

    path = tmp_path / "report.pdf"
    pdf = canvas.Canvas(str(path))
    pdf.drawString(72, 760, "Quarterly report: the screenshot below shows the error.")
    pdf.drawImage(ImageReader(scans.render_lines(["Error 503: upstream timeout"], width=560)), 72, 600, 336, 60)
    pdf.showPage()
    pdf.save()
    [plain] = load_file(path)
    assert "upstream timeout" not in plain.text and "ocr" not in plain.metadata
    [both] = load_file(path, OCRSettings(embedded_images=True))
    assert both.text.startswith("Quarterly report") and "Error 503: upstream timeout" in both.text


def test_ocr_settings_load_from_the_environment_and_refuse_unread_languages(monkeypatch: pytest.MonkeyPatch) -> None:
    from pydantic import ValidationError

    from kbqa.settings import Settings

    monkeypatch.setenv("KBQA_OCR__DPI", "300")
    assert Settings().ocr.dpi == 300
    with pytest.raises(ValidationError, match="languages"):
        Settings(ocr={"languages": ["fr"]})
    with pytest.raises(ValidationError, match="max_image_pixels"):
        Settings(ocr={"max_image_pixels": 10})
