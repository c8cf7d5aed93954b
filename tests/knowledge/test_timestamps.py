"""Timestamps are timezone-aware UTC in Python; rows written by earlier versions (naive UTC) read the same way."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

from sqlalchemy import select, text

from kbqa.db.models import KnowledgeBase
from kbqa.knowledge.service import KnowledgeBaseService


def test_new_rows_are_aware_utc(service: KnowledgeBaseService) -> None:
    before = datetime.now(UTC)
    kb = service.create_kb("times")
    assert kb.created_at.tzinfo is not None and kb.created_at.utcoffset() == timedelta(0)
    assert before - timedelta(seconds=1) <= kb.created_at <= datetime.now(UTC)


def test_rows_of_earlier_versions_read_as_utc(service: KnowledgeBaseService) -> None:
    service.create_kb("old")
    with service.db.session() as s:  # what earlier versions stored: naive UTC text
        s.execute(text("UPDATE knowledge_base SET created_at = '2025-01-02 03:04:05.000000' WHERE name = 'old'"))
    assert service.get_kb("old").created_at == datetime(2025, 1, 2, 3, 4, 5, tzinfo=UTC)


def test_an_aware_value_in_another_zone_is_stored_as_its_utc_instant(service: KnowledgeBaseService) -> None:
    service.create_kb("zoned")
    beijing = timezone(timedelta(hours=8))
    with service.db.session() as s:
        kb = s.scalars(select(KnowledgeBase).where(KnowledgeBase.name == "zoned")).one()
        kb.created_at = datetime(2025, 6, 1, 8, 0, tzinfo=beijing)
    with service.db.read() as s:
        raw = s.execute(text("SELECT created_at FROM knowledge_base WHERE name = 'zoned'")).scalar()
    assert str(raw).startswith("2025-06-01 00:00:00")
    assert service.get_kb("zoned").created_at == datetime(2025, 6, 1, 0, 0, tzinfo=UTC)
