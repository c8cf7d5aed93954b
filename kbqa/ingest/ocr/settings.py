"""The ``ocr`` settings section (kept beside the OCR code so the ingest layer never imports kbqa.settings)."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field


class OCRSettings(BaseModel):
    model_config = ConfigDict(extra="forbid")

    enabled: bool = Field(
        True,
        description="Read images (.png .jpg .jpeg .bmp .tif .tiff .webp) and the scanned pages of PDFs with the "
        "bundled offline OCR. false: images are refused and a PDF page without a text layer gives no text.",
    )
    engine: Literal["rapidocr"] = Field(
        "rapidocr",
        description="OCR engine: rapidocr = RapidOCR on onnxruntime with the PP-OCRv4 models inside its wheel "
        "(CPU; CUDA when onnxruntime has it).",
    )
    languages: list[Literal["ch", "en"]] = Field(
        default_factory=lambda: ["ch", "en"],
        min_length=1,
        description="Languages expected in scans. The bundled PP-OCRv4 'ch' model reads Chinese and English "
        "(with digits and punctuation) in one pass; other languages have no bundled model and are refused here.",
    )
    dpi: int = Field(
        200,
        ge=72,
        le=600,
        description="Resolution a scanned PDF page is rendered at before OCR. Higher reads small print better "
        "and costs time and memory in proportion to the pixel count.",
    )
    min_text_chars_per_page: int = Field(
        20,
        ge=0,
        description="A PDF page whose text layer has fewer non-space characters than this is treated as scanned "
        "and OCR'd (a scan often carries only a page number or a stamp as text). 0: never OCR PDF pages.",
    )
    embedded_images: bool = Field(
        False,
        description="Also OCR the pictures embedded in PDF pages that do have a text layer (screenshots, pasted "
        "scans); their text is appended to the page. Off by default: slow, and mostly logos.",
    )
    max_image_pixels: int = Field(
        40_000_000,
        ge=10_000,
        description="Largest image OCR will take, in pixels (width x height). A bigger image file is refused "
        "before it is decoded (a decompression bomb never reaches memory); a bigger PDF page is rendered at a "
        "lower dpi so that it fits.",
    )
