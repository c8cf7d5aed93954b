"""Real pictures of text for the OCR tests: lines drawn with a Noto font (Debian fonts-noto-cjk), saved by Pillow."""

from __future__ import annotations

import struct
import subprocess
import zlib
from functools import cache
from pathlib import Path

import pytest


@cache
def cjk_font_path() -> str:
    """The Noto Sans CJK font file; the OCR tests are skipped with the install command when it is missing."""
    try:
        found = subprocess.run(
            ["fc-match", "-f", "%{file}", "Noto Sans CJK SC:style=Regular"], capture_output=True, text=True, check=False
        ).stdout.strip()
    except FileNotFoundError:
        found = ""
    if not found or "CJK" not in found:
        pytest.skip("needs fonts-noto-cjk (apt-get install fonts-noto-cjk; scripts/install.sh --dev installs it)")
    return found


def render_lines(lines: list[str], size: int = 30, width: int = 720, margin: int = 24) -> object:
    """A white image with ``lines`` in black, one under the other; returns the PIL image."""
    from PIL import Image, ImageDraw, ImageFont

    font = ImageFont.truetype(cjk_font_path(), size)
    step = int(size * 1.8)
    image = Image.new("RGB", (width, margin * 2 + step * len(lines)), "white")
    draw = ImageDraw.Draw(image)
    for index, line in enumerate(lines):
        draw.text((margin, margin + index * step), line, font=font, fill="black")
    return image


def save_lines(path: Path, lines: list[str], **kwargs: int) -> Path:
    image = render_lines(lines, **kwargs)
    image.save(path)  # type: ignore[attr-defined]
    return path


def scanned_pdf(path: Path, pages: list[list[str] | str]) -> Path:
    """A PDF whose pages are either a picture of lines (a list: no text layer) or real text (a str)."""
    from reportlab.lib.utils import ImageReader
    from reportlab.pdfgen import canvas

    pdf = canvas.Canvas(str(path))
    for page in pages:
        if isinstance(page, str):
            pdf.setFont("Helvetica", 12)
            pdf.drawString(72, 720, page)
        else:
            image = render_lines(page)
            width, height = image.size  # type: ignore[attr-defined]
            # 30 px text drawn 0.6 pt per px: about 13 pt on paper, like a scanned letter.
            pdf.drawImage(ImageReader(image), 60, 780 - height * 0.6, width=width * 0.6, height=height * 0.6)
        pdf.showPage()
    pdf.save()
    return path


def decompression_bomb_png(path: Path, side: int = 30_000) -> Path:
    """A valid 1-bit PNG of side x side white pixels: ~100 KB on disk, 900 million pixels decoded."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    row = b"\x00" + b"\xff" * ((side + 7) // 8)
    packer = zlib.compressobj(9)
    body = b"".join(packer.compress(row) for _ in range(side)) + packer.flush()
    header = struct.pack(">IIBBBBB", side, side, 1, 0, 0, 0, 0)
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", body) + chunk(b"IEND", b""))
    return path
