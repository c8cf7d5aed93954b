"""The OCR seam: what an engine returns, and the one engine instance each process shares.

Engines load their models once (about a second, ~100 MB) and are kept for the life of the process; parse threads
share the instance through a lock because an engine call is not documented as thread-safe, and on a small CPU two
concurrent OCR calls would only compete for the same cores.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass
from typing import Protocol

import numpy as np

from kbqa.ingest.ocr.reading_order import in_reading_order
from kbqa.ingest.ocr.settings import OCRSettings

Box = tuple[float, float, float, float]  # x0, y0, x1, y1 from the image's top-left


@dataclass(frozen=True, slots=True)
class OCRLine:
    text: str
    box: Box
    score: float


class OCREngine(Protocol):
    def read(self, image: np.ndarray) -> list[OCRLine]:
        """Text lines found in an RGB ``uint8`` image (H x W x 3), in any order."""
        ...


_engines: dict[str, OCREngine] = {}
_engines_lock = threading.Lock()
_call_lock = threading.Lock()


def _create(settings: OCRSettings) -> OCREngine:
    if settings.engine == "rapidocr":
        from kbqa.ingest.ocr.rapid import RapidOCREngine

        return RapidOCREngine()
    raise ValueError(f"unknown OCR engine {settings.engine!r}")


def get_engine(settings: OCRSettings) -> OCREngine:
    """The process-wide engine named by ``settings``, created on first use."""
    with _engines_lock:
        engine = _engines.get(settings.engine)
        if engine is None:
            engine = _engines[settings.engine] = _create(settings)
        return engine


def read_lines(image: np.ndarray, settings: OCRSettings) -> list[OCRLine]:
    """OCR ``image`` and return its lines in reading order."""
    engine = get_engine(settings)
    with _call_lock:
        lines = engine.read(image)
    return in_reading_order(lines)
