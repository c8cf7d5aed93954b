"""Issue-tracker tables (CSV, JSONL, XLSX) through the real ingest: no scrap chunks, every piece names its row."""

from __future__ import annotations

import json
import re

from kbqa.knowledge.service import KnowledgeBaseService
from tests.ingest import fixtures

# A chunk with no letters or digits outside JSON punctuation and one short "key": value, e.g. `{` or `"id": 9\n}`.
BARE_JSON = re.compile(r'[\s{}\[\],]*("[^"]{0,20}"\s*:\s*[^\s,{}]{0,12})?[\s{}\[\],]*')


def test_issue_tables_ingest_without_scraps_and_every_piece_keeps_its_keys(service: KnowledgeBaseService) -> None:
    service.create_kb("issues")
    paths = fixtures.make_issue_tables(service.folder("issues").content, rows=6)
    report = service.ingest("issues")
    assert not report.failed
    assert sorted(report.added) == sorted(p.name for p in paths)
    for path in paths:
        texts = [c.text for c in service.file_chunks("issues", path.name)]
        assert len(texts) > 6, path.name  # long rows were cut into several chunks
        assert min(len(t) for t in texts) >= 20, path.name
        assert not [t for t in texts if BARE_JSON.fullmatch(t)], path.name
        for text in texts:
            if path.suffix == ".jsonl":
                record = json.loads(text)  # never cut inside JSON syntax
                row_id, has_title = record["id"], "title" in record
            else:
                assert text.startswith("column 1: ") and "; id: " in text, text
                row_id, has_title = int(text.rsplit("; id: ", 1)[1]), "title: " in text
            # Row 4's title is too long to repeat (it is cut as text itself); every other piece carries its title.
            assert has_title or row_id == 4, text
    # A question about the end of a long detail finds a piece that also says which issue it belongs to.
    hits = service.search("issues", "embedding dimension mismatch 384 and 768 after restart", top_k=3)
    assert hits and "dimension mismatch" in hits[0].text
    assert "Support for Excel files with several sheets" in hits[0].text


def test_bare_json_pattern_matches_the_scraps_it_is_meant_to_catch() -> None:
    assert all(BARE_JSON.fullmatch(t) for t in ["{", '"id": 9\n}', "}", '  "id": 12,', "[]"])
    assert not any(BARE_JSON.fullmatch(t) for t in ['{"title": "启动报错", "id": 9}', "id: 9; title: 启动报错"])
