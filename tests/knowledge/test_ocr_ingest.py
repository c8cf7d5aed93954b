"""Scans and pictures in a real ingest: their text is searchable with its page, and each bad file fails alone."""

from __future__ import annotations

import io
from pathlib import Path

from kbqa.knowledge.service import KnowledgeBaseService
from tests.ingest import fixtures, scans


def _upload(service: KnowledgeBaseService, rel: str, data: bytes) -> None:
    service.save_upload("scans", rel, io.BytesIO(data), override=True)


def test_scans_are_searchable_and_bad_files_fail_alone(service: KnowledgeBaseService, tmp_path: Path) -> None:
    service.create_kb("scans")
    scan = scans.scanned_pdf(
        tmp_path / "minutes.pdf",
        ["Meeting minutes, March 3.", ["The boiler in building C is replaced in May."]],
    )
    picture = scans.save_lines(tmp_path / "sign.png", ["Visitors register at the north gate."])
    _upload(service, "minutes.pdf", scan.read_bytes())
    _upload(service, "sign.png", picture.read_bytes())
    _upload(service, "notes.txt", b"The cafeteria closes at three on Fridays.")
    _upload(service, "bomb.png", scans.decompression_bomb_png(tmp_path / "bomb.png").read_bytes())
    _upload(service, "corrupt.jpg", b"\xff\xd8\xff\xe0 not really a jpeg" * 10)
    _upload(service, "empty.png", b"")
    _upload(service, "locked.pdf", fixtures.make_encrypted_pdf(tmp_path / "locked.pdf").read_bytes())
    _upload(service, "truncated.pdf", scan.read_bytes()[:400])

    report = service.ingest("scans")

    assert sorted(report.added) == ["minutes.pdf", "notes.txt", "sign.png"]
    assert set(report.failed) == {"bomb.png", "corrupt.jpg", "empty.png", "locked.pdf", "truncated.pdf"}
    assert "ocr.max_image_pixels" in report.failed["bomb.png"]
    assert "password" in report.failed["locked.pdf"]
    assert all("Traceback" not in reason and "\n" not in reason for reason in report.failed.values())

    [hit] = service.search("scans", "When is the boiler in building C replaced?", top_k=1)
    assert hit.path == "minutes.pdf"
    assert "boiler in building C is replaced in May" in hit.text
    assert hit.metadata["page"] == 2 and hit.metadata["ocr"] is True
    [sign] = service.search("scans", "Where do visitors register?", top_k=1)
    assert sign.path == "sign.png" and sign.metadata["line_boxes"]
