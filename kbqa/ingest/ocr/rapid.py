"""RapidOCR (PP-OCRv4 det + rec + angle classifier, ONNX models inside the ``rapidocr-onnxruntime`` wheel)."""

from __future__ import annotations

from typing import Any

import numpy as np

from kbqa.ingest.ocr.engine import OCRLine

_DET_MAX_SIDE = 1280


class RapidOCREngine:
    def __init__(self) -> None:
        import onnxruntime
        from rapidocr_onnxruntime import RapidOCR

        # The PyPI onnxruntime is CPU-only; onnxruntime-gpu, when someone installs it, lists CUDA here.
        cuda = "CUDAExecutionProvider" in onnxruntime.get_available_providers()
        self._ocr: Any = RapidOCR(
            det_use_cuda=cuda,
            cls_use_cuda=cuda,
            rec_use_cuda=cuda,
            # The wheel's default ("min", 736) upscales every small image until its short side is 736 px: a
            # 700 x 160 screenshot became 3220 x 736 and took seconds. Detection only needs to find the lines;
            # recognition reads them from the full-resolution image either way.
            det_limit_type="max",
            det_limit_side_len=_DET_MAX_SIDE,
        )

    def read(self, image: np.ndarray) -> list[OCRLine]:
        # RapidOCR takes OpenCV's BGR channel order.
        # No angle classifier: on 300 dpi pages it judged whole, upright lines to be upside down and the flipped
        # crops read as noise ("b      s" for a 90-character line); scans with lines upside down are rare.
        result, _elapsed = self._ocr(np.ascontiguousarray(image[:, :, ::-1]), use_cls=False)
        lines = []
        for points, text, score in result or []:
            xs = [float(p[0]) for p in points]
            ys = [float(p[1]) for p in points]
            if text.strip():
                lines.append(OCRLine(text.strip(), (min(xs), min(ys), max(xs), max(ys)), float(score)))
        return lines
