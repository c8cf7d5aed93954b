"""OCR accuracy and speed on real paragraphs drawn as scans: character error rate per language and variant, pages/s.

Paragraphs come from the development corpora (English Wikipedia summaries, Chinese news; see corpora.py), are drawn
in Noto Sans CJK 11 pt on an A4-wide page (Debian fonts-noto-cjk) and read back through kbqa's own loaders:

* ``png 300``, ``png 150``: the page as a PNG at 300 / 150 dpi;
* ``png 300 skew``: rotated 2.5 degrees, as a sheet fed crooked into a scanner;
* ``png 300 noise``: Gaussian noise (sigma 40 of 255) over the page;
* ``pdf 300``: the 300 dpi pictures in an image-only PDF, rendered again by pdfium at ``ocr.dpi`` = 300 and OCR'd.

CER = Levenshtein distance / reference length, after NFKC (full-width punctuation to ASCII) and with all whitespace
removed (line breaks are layout, not text). Pages/s is wall time per page on this machine, model load excluded.

    python benchmarks/ocr_accuracy.py [--paragraphs 3] [--write]
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
import unicodedata
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
sys.path.append(str(HERE.parent))

import numpy as np  # noqa: E402
from corpora import inews_dev, wiki_dev  # noqa: E402
from PIL import Image, ImageDraw, ImageFont  # noqa: E402
from rapidfuzz.distance import Levenshtein  # noqa: E402
from results_file import replace_section  # noqa: E402

from kbqa.ingest.loaders import load_file  # noqa: E402
from kbqa.ingest.ocr.engine import get_engine  # noqa: E402
from kbqa.ingest.ocr.settings import OCRSettings  # noqa: E402

HEADING = "## OCR accuracy (rendered development paragraphs)"
PARAGRAPH_CHARS = {"en": 600, "zh": 300}
A4_INCHES = (8.27, 11.69)
MARGIN_INCHES = 1.0
FONT_PT = 11


def _font_file() -> str:
    found = subprocess.run(
        ["fc-match", "-f", "%{file}", "Noto Sans CJK SC:style=Regular"], capture_output=True, text=True, check=False
    ).stdout.strip()
    if "CJK" not in found:
        raise SystemExit("needs fonts-noto-cjk (apt-get install fonts-noto-cjk)")
    return found


def paragraphs(count: int) -> dict[str, list[str]]:
    """``count`` paragraphs per language, each cut at a sentence end near its length budget."""
    out: dict[str, list[str]] = {}
    for lang, corpus in (("en", wiki_dev(count, 0)), ("zh", inews_dev(count, 0))):
        texts = []
        for _doc_id, text in corpus.docs:
            text = " ".join(text.split())[: PARAGRAPH_CHARS[lang]]
            end = max(text.rfind(mark) for mark in (". ", "。", "！", "？"))
            texts.append(text[: end + 1] if end > len(text) // 2 else text)
        out[lang] = texts
    return out


def _wrap(text: str, font: ImageFont.FreeTypeFont, width: float) -> list[str]:
    """Greedy wrap: between any characters for text with Chinese in it (a news item with one English word still has
    long runs without spaces), between words otherwise."""
    chinese = any("\u4e00" <= char <= "\u9fff" for char in text)
    units = list(text) if chinese else text.split(" ")
    joiner = "" if chinese else " "
    lines: list[str] = []
    current = ""
    for unit in units:
        candidate = f"{current}{joiner}{unit}" if current else unit
        if current and font.getlength(candidate) > width:
            lines.append(current)
            current = unit
        else:
            current = candidate
    if current:
        lines.append(current)
    return lines


def render_page(text: str, dpi: int, font_file: str) -> Image.Image:
    font = ImageFont.truetype(font_file, round(FONT_PT * dpi / 72))
    width, height = (round(side * dpi) for side in A4_INCHES)
    margin = round(MARGIN_INCHES * dpi)
    page = Image.new("L", (width, height), 255)
    draw = ImageDraw.Draw(page)
    step = round(FONT_PT * dpi / 72 * 1.6)
    for index, line in enumerate(_wrap(text, font, width - 2 * margin)):
        draw.text((margin, margin + index * step), line, font=font, fill=0)
    return page


def skewed(page: Image.Image) -> Image.Image:
    return page.rotate(2.5, resample=Image.Resampling.BICUBIC, expand=True, fillcolor=255)


def noisy(page: Image.Image, seed: int) -> Image.Image:
    pixels = np.asarray(page, dtype=np.float32)
    pixels = pixels + np.random.default_rng(seed).normal(0, 40, pixels.shape)
    return Image.fromarray(np.clip(pixels, 0, 255).astype(np.uint8))


def _normalise(text: str) -> str:
    return "".join(unicodedata.normalize("NFKC", text).split())


def cer(reference: str, hypothesis: str) -> float:
    ref, hyp = _normalise(reference), _normalise(hypothesis)
    return Levenshtein.distance(ref, hyp) / max(len(ref), 1)


def _image_only_pdf(pages: list[Image.Image], path: Path, dpi: int) -> None:
    from reportlab.lib.utils import ImageReader
    from reportlab.pdfgen import canvas

    pdf = canvas.Canvas(str(path), pagesize=(A4_INCHES[0] * 72, A4_INCHES[1] * 72))
    for page in pages:
        pdf.drawImage(ImageReader(page), 0, 0, page.width * 72 / dpi, page.height * 72 / dpi)
        pdf.showPage()
    pdf.save()


def run(count: int) -> list[tuple[str, str, float, float, int]]:
    """(lang, variant, mean CER, pages/s, pages) rows."""
    font_file = _font_file()
    settings = OCRSettings(dpi=300)
    get_engine(settings)  # the model load is not part of the per-page time
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        for lang, texts in paragraphs(count).items():
            clean300 = [render_page(text, 300, font_file) for text in texts]
            variants = {
                "png 300": clean300,
                "png 150": [render_page(text, 150, font_file) for text in texts],
                "png 300 skew 2.5°": [skewed(page) for page in clean300],
                "png 300 noise": [noisy(page, index) for index, page in enumerate(clean300)],
            }
            for variant, pages in variants.items():
                errors = []
                started = time.perf_counter()
                for index, (text, page) in enumerate(zip(texts, pages, strict=True)):
                    path = folder / f"{lang}-{index}.png"
                    page.save(path)
                    read = "\n".join(doc.text for doc in load_file(path, settings))
                    errors.append(cer(text, read))
                elapsed = time.perf_counter() - started
                rows.append((lang, variant, sum(errors) / len(errors), len(pages) / elapsed, len(pages)))
                print(rows[-1], flush=True)
            pdf = folder / f"{lang}.pdf"
            _image_only_pdf(clean300, pdf, 300)
            started = time.perf_counter()
            docs = load_file(pdf, settings)
            elapsed = time.perf_counter() - started
            by_page = {doc.metadata["page"]: doc.text for doc in docs}
            errors = [cer(text, by_page.get(number, "")) for number, text in enumerate(texts, start=1)]
            rows.append((lang, "pdf 300 (pdfium render)", sum(errors) / len(errors), len(texts) / elapsed, len(texts)))
            print(rows[-1], flush=True)
    return rows


def section(rows: list[tuple[str, str, float, float, int]], count: int) -> str:
    cores = os.cpu_count()
    lines = [
        HEADING,
        "",
        f"`python benchmarks/ocr_accuracy.py --paragraphs {count} --write`: {count} development paragraphs per "
        "language (English Wikipedia summaries up to 600 characters, Chinese news up to 300), drawn in Noto Sans CJK "
        "11 pt on an A4-wide page and read back through kbqa's loaders (RapidOCR 1.4.4, PP-OCRv4, onnxruntime CPU, "
        f"{cores} cores shared with other work). CER after NFKC with whitespace removed; pages/s exclude the model "
        "load.",
        "",
        "| language | variant | pages | CER | pages/s |",
        "|---|---|---|---|---|",
    ]
    for lang, variant, error, speed, pages in rows:
        lines.append(f"| {lang} | {variant} | {pages} | {error:.2%} | {speed:.2f} |")
    lines += [
        "",
        "English errors are mostly diacritics the 'ch' model does not read (Kumārajīva → Kumarajiva). With RapidOCR's "
        "angle classifier on (its default), upright 300 dpi lines were judged upside down and read as noise: English "
        "png 300 CER was 16.1% on the same pages, so kbqa calls it with `use_cls=False`.",
    ]
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--paragraphs", type=int, default=3, help="paragraphs per language")
    parser.add_argument("--write", action="store_true", help="replace the section in benchmarks/RESULTS.md")
    args = parser.parse_args(argv)
    rows = run(args.paragraphs)
    text = section(rows, args.paragraphs)
    print(text)
    if args.write:
        replace_section(HEADING, text)


if __name__ == "__main__":
    main()
