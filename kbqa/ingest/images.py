"""Pictures as documents: size-checked, decoded with Pillow, read by the OCR engine.

The pixel count is checked from the header, before anything is decoded, so a decompression bomb (a few KB of PNG
that inflates to gigabytes) is refused without touching memory. The text keeps one OCR line per line, in reading
order; ``line_boxes`` holds each line's box so a citation can point at the place on the image.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from kbqa.errors import DocumentParseError
from kbqa.ingest.document import Document
from kbqa.ingest.ocr.engine import OCRLine, read_lines
from kbqa.ingest.ocr.settings import OCRSettings

IMAGE_EXTENSIONS = frozenset({".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff", ".webp"})


def lines_document(lines: list[OCRLine], metadata: dict[str, Any], scale: float = 1.0) -> Document:
    """One Document whose text is the lines joined by newlines; boxes divided by ``scale`` and rounded."""
    boxes = [[round(v / scale, 1) for v in line.box] for line in lines]
    return Document("\n".join(line.text for line in lines), {**metadata, "ocr": True, "line_boxes": boxes})


def _too_big(path: Path, what: str, max_pixels: int) -> DocumentParseError:
    return DocumentParseError(f"{path.name}: {what}, above ocr.max_image_pixels ({max_pixels})")


def open_rgb(path: Path, max_pixels: int) -> np.ndarray:
    """The first frame of an image file as RGB ``uint8``; refuses images above ``max_pixels``."""
    from PIL import Image, ImageOps

    try:
        image = Image.open(path)
    except Image.DecompressionBombError as exc:  # Pillow's own guard, for images far above any sane limit
        raise _too_big(path, str(exc), max_pixels) from exc
    with image:
        width, height = image.size
        if width * height > max_pixels:
            raise _too_big(path, f"the image is {width} x {height} pixels", max_pixels)
        # Phone photos store their rotation in EXIF instead of rotating the pixels.
        upright = ImageOps.exif_transpose(image)
        rgba = upright.convert("RGBA")
    # Transparent regions (a logo on nothing) would read as black; put them on white paper.
    paper = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
    return np.asarray(Image.alpha_composite(paper, rgba).convert("RGB"))


def load_image(path: Path, settings: OCRSettings) -> list[Document]:
    if not settings.enabled:
        raise DocumentParseError(f"{path.name}: images need OCR, which is turned off (ocr.enabled)")
    lines = read_lines(open_rgb(path, settings.max_image_pixels), settings)
    return [lines_document(lines, {})] if lines else []
