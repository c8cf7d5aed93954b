from __future__ import annotations

import csv
import json
import re
from pathlib import Path

from kbqa.ingest.document import Document
from kbqa.ingest.loaders import load_file
from kbqa.ingest.records import Field, json_record, key_fields, split_record
from kbqa.ingest.small_chunks import merge_small_chunks
from kbqa.ingest.splitters import SplitConfig, is_possible_title, split_documents, zh_title_enhance

ZH = (
    "知识库问答系统把文档切分成小块。每一块都会被向量化！然后存入索引？"
    "用户提问时，系统检索最相关的块；再交给大模型生成答案。"
)


def test_chinese_text_splits_at_sentence_punctuation_within_size() -> None:
    chunks = split_documents([Document(ZH * 5, {"page": 2})], SplitConfig(chunk_size=60, chunk_overlap=10))
    assert len(chunks) > 3
    assert all(len(c.text) <= 60 for c in chunks)
    # every chunk but possibly the last ends on a sentence or clause mark, never mid-word
    assert all(c.text[-1] in "。！？；，" for c in chunks[:-1])
    assert all(c.metadata == {"page": 2} for c in chunks)


def test_english_text_splits_at_sentences_with_overlap() -> None:
    text = " ".join(f"Sentence number {i} talks about topic {i}." for i in range(40))
    chunks = split_documents([Document(text)], SplitConfig(chunk_size=120, chunk_overlap=40))
    assert all(len(c.text) <= 120 for c in chunks)
    assert all(c.text.endswith(".") for c in chunks)
    # overlap: consecutive chunks share a sentence
    assert any(chunks[i].text.split(". ")[-1] in chunks[i + 1].text for i in range(len(chunks) - 1))


def test_short_document_is_one_chunk_and_blank_runs_collapse() -> None:
    chunks = split_documents([Document("a\n\n\n\n\nb")], SplitConfig())
    assert [c.text for c in chunks] == ["a\n\nb"]


def test_markdown_mode_keeps_heading_path() -> None:
    md = "# Guide\nIntro.\n## Install\nRun the installer.\n### Linux\nUse bash.\n## Use\nAsk questions."
    # These sections are shorter than the default minimum chunk length; merging is tested below.
    chunks = split_documents([Document(md)], SplitConfig(mode="markdown_header", min_chunk_chars=0), ".md")
    headings = [c.metadata.get("heading") for c in chunks]
    assert headings == ["Guide", "Guide > Install", "Guide > Install > Linux", "Guide > Use"]
    # the same text in a .txt file is not split at headings
    assert len(split_documents([Document(md)], SplitConfig(mode="markdown_header"), ".txt")) == 1


def test_chunk_length_is_in_characters_not_tokens() -> None:
    chunks = split_documents([Document("字" * 1000)], SplitConfig(chunk_size=250, chunk_overlap=0))
    assert [len(c.text) for c in chunks] == [250, 250, 250, 250]


def test_zh_title_enhance_marks_titles_and_prefixes_followers() -> None:
    assert is_possible_title("1.2 安装步骤")
    assert not is_possible_title("安装步骤。")
    assert not is_possible_title("这是很长的句子没有编号所以不是标题")
    out = zh_title_enhance([Document("1.2 安装步骤"), Document("首先运行安装脚本。")])
    assert out[0].metadata["category"] == "cn_Title"
    assert out[1].text == "下文与(1.2 安装步骤)有关。首先运行安装脚本。"
    enhanced = split_documents(
        [Document("第1章 简介"), Document("kbqa 是一个问答系统。")], SplitConfig(zh_title_enhance=True)
    )
    assert enhanced[1].text.startswith("下文与(第1章 简介)有关。")


# --- small fragments -----------------------------------------------------------------------------------------------

LONG_SENTENCE = "The retriever ranks every chunk of the knowledge base against the question."


def test_small_fragment_joins_the_chunk_before_it() -> None:
    meta = {"page": 1}
    merged = merge_small_chunks([Document(LONG_SENTENCE, meta), Document("See p. 4.", meta)], min_chars=20)
    assert [c.text for c in merged] == [f"{LONG_SENTENCE}\nSee p. 4."]
    assert merged[0].metadata == meta


def test_leading_fragment_and_new_section_fragment_join_the_chunk_after() -> None:
    chunks = [
        Document("# Intro", {"heading": "Intro"}),
        Document(LONG_SENTENCE, {"heading": "Intro"}),
        Document("## Setup", {"heading": "Intro > Setup"}),
        Document("Run the installer, then start the API server.", {"heading": "Intro > Setup"}),
    ]
    merged = merge_small_chunks(chunks, min_chars=20)
    assert [(c.text, c.metadata["heading"]) for c in merged] == [
        (f"# Intro\n{LONG_SENTENCE}", "Intro"),
        ("## Setup\nRun the installer, then start the API server.", "Intro > Setup"),
    ]


def test_fragment_already_inside_its_neighbour_is_dropped_and_fragments_chain() -> None:
    merged = merge_small_chunks([Document(LONG_SENTENCE), Document("the question.")], min_chars=20)
    assert [c.text for c in merged] == [LONG_SENTENCE]
    # two scraps in a row end up in one chunk that is long enough
    merged = merge_small_chunks([Document("a b c"), Document("d e f"), Document("g h i j k l m")], min_chars=20)
    assert [c.text for c in merged] == ["a b c\nd e f\ng h i j k l m"]


def test_short_whole_document_is_kept_and_zero_turns_merging_off() -> None:
    assert [c.text for c in merge_small_chunks([Document("id: 1")], 20)] == ["id: 1"]
    chunks = [Document(LONG_SENTENCE), Document("Ok.")]
    assert merge_small_chunks(chunks, 0) == chunks


def test_splitter_leaves_no_scrap_below_the_minimum() -> None:
    text = f"{LONG_SENTENCE} Ok."
    scraps = split_documents([Document(text)], SplitConfig(chunk_size=76, chunk_overlap=0, min_chunk_chars=0))
    assert [c.text for c in scraps] == [LONG_SENTENCE, "Ok."]  # what the cut alone leaves
    chunks = split_documents([Document(text)], SplitConfig(chunk_size=76, chunk_overlap=0))
    assert [c.text for c in chunks] == [f"{LONG_SENTENCE}\nOk."]


def test_short_markdown_sections_merge_forward_with_their_headings() -> None:
    md = "# Guide\nIntro.\n## Install\nRun the installer from the release page, then start the server with startup.py."
    unmerged = split_documents([Document(md)], SplitConfig(mode="markdown_header", min_chunk_chars=0), ".md")
    assert [c.metadata["heading"] for c in unmerged] == ["Guide", "Guide > Install"]
    chunks = split_documents([Document(md)], SplitConfig(mode="markdown_header"), ".md")
    assert len(chunks) == 1
    assert chunks[0].text.startswith("# Guide") and "Intro.\n## Install\nRun the installer" in chunks[0].text
    assert chunks[0].metadata["heading"] == "Guide > Install"


# --- records: table rows and JSON objects --------------------------------------------------------------------------

DETAIL = (
    "按照 README 安装以后运行 startup.py 报错，提示找不到模型文件。模型已经放在 models 目录下，路径里没有空格。\n\n"
    "After upgrading to the new release the server starts, but every answer says the knowledge base is empty. "
    "Re-creating the vector store did not help either.\n\n"
    "日志里只有一行警告：embedding dimension mismatch (384 vs 768)。请问需要重新导入所有文件吗？"
)


def _record_chunks(path: Path, size: int = 250) -> list[str]:
    return [c.text for c in split_documents(load_file(path), SplitConfig(chunk_size=size), path.suffix)]


def test_long_json_record_is_cut_between_fields_into_valid_objects_with_its_keys(tmp_path: Path) -> None:
    record = {"title": "启动报错", "url": "https://example.org/issues/9", "detail": DETAIL, "id": 9}
    path = tmp_path / "issues.jsonl"
    path.write_text(json.dumps(record, ensure_ascii=False) + "\n", encoding="utf-8")
    chunks = _record_chunks(path)
    assert len(chunks) >= 3
    parsed = [json.loads(c) for c in chunks]  # no cut inside JSON syntax: every chunk is a whole object
    assert all(p["id"] == 9 and p["title"] == "启动报错" for p in parsed)
    assert all(len(c) <= 250 for c in chunks)
    details = [p["detail"] for p in parsed if "detail" in p]
    assert len(details) >= 2 and all(part in DETAIL for part in details)
    assert details[0].startswith("按照 README") and details[-1].endswith("请问需要重新导入所有文件吗？")
    assert any(p.get("url") == record["url"] for p in parsed)


def test_long_csv_row_keeps_its_key_columns_in_every_piece(tmp_path: Path) -> None:
    path = tmp_path / "issues.csv"
    with path.open("w", encoding="utf-8", newline="") as fh:
        writer = csv.writer(fh)
        writer.writerow(["", "title", "url", "detail", "id"])
        writer.writerow([0, "Short row", "https://example.org/issues/1", "同上。", 1])
        writer.writerow([1, "启动报错", "https://example.org/issues/9", DETAIL, 9])
    chunks = _record_chunks(path)
    assert chunks[0] == "column 1: 0; title: Short row; url: https://example.org/issues/1; detail: 同上。; id: 1"
    long_row = chunks[1:]
    assert len(long_row) >= 3
    assert all(c.startswith("column 1: 1; title: 启动报错; ") and c.endswith("; id: 9") for c in long_row)
    assert all(len(c) <= 250 for c in long_row)
    assert "日志里只有一行警告" in long_row[-1]


def test_record_that_fits_a_chunk_stays_whole(tmp_path: Path) -> None:
    record = {"title": "启动报错", "url": "https://example.org/issues/9", "detail": DETAIL[:120], "id": 9}
    path = tmp_path / "one.json"
    path.write_text(json.dumps(record, ensure_ascii=False), encoding="utf-8")
    pretty = json.dumps(record, ensure_ascii=False, indent=2)
    compact = json.dumps(record, ensure_ascii=False)
    size = len(compact) + 5  # only the compact form fits
    assert size < len(pretty)
    assert _record_chunks(path, size=size) == [compact]
    assert _record_chunks(path, size=len(pretty)) == [pretty]


def test_nested_json_is_cut_at_leaf_fields() -> None:
    record = json_record({"id": 3, "meta": {"name": "kbqa", "tags": [{"id": 8}, "b"]}, "body": "x " * 200})
    assert record is not None
    assert [f.name for f in record.fields] == ["id", "meta.name", "meta.tags[0].id", "meta.tags[1]", "body"]
    pieces = split_record(record, 120, lambda text, size: [text[i : i + size] for i in range(0, len(text), size)])
    parsed = [json.loads(p) for p in pieces]
    assert all(p["id"] == 3 and p["meta.name"] == "kbqa" for p in parsed)
    # an element of a nested list names that element, not the record: it is not repeated
    assert sum("meta.tags[0].id" in p for p in parsed) == 1
    assert "".join(p.get("body", "") for p in parsed) == "x " * 200


def test_key_fields_prefer_key_names_then_short_values_within_budget() -> None:
    fields = [
        Field("detail", "a long description " * 5),
        Field("status", "open"),
        Field("issue_id", "42"),
        Field("标题", "安装失败"),
        Field("userId", "u-7"),
        Field("paid", "yes"),
        Field("answer", "Restart it."),  # short, but a sentence: content, not a label
    ]
    assert [fields[i].name for i in key_fields(fields, 200)] == ["status", "issue_id", "标题", "userId", "paid"]
    assert [fields[i].name for i in key_fields(fields, 40)] == ["issue_id", "标题", "userId"]


# --- pipe tables inside text ---------------------------------------------------------------------------------------

TABLE = "| 模型 | 版本 | 说明 |\n|---|---|---|\n" + "\n".join(f"| model-{i} | 1.{i} | 第{i}个模型 |" for i in range(6))


def test_table_that_fits_is_one_chunk_even_inside_a_long_text() -> None:
    text = f"{LONG_SENTENCE} {LONG_SENTENCE}\n\n{TABLE}\n\n{LONG_SENTENCE} {LONG_SENTENCE}"
    assert len(TABLE) <= 250 < len(text)
    chunks = split_documents([Document(text)], SplitConfig(chunk_size=250, chunk_overlap=50))
    assert TABLE in [c.text for c in chunks]


def test_long_table_is_cut_between_rows_never_inside_one() -> None:
    chunks = split_documents([Document(TABLE)], SplitConfig(chunk_size=100, chunk_overlap=0))
    assert len(chunks) >= 2
    assert all(len(c.text) <= 100 for c in chunks)
    assert "\n".join(c.text for c in chunks) == TABLE  # by default the header row is not repeated


def test_long_table_repeats_its_header_row_when_asked() -> None:
    chunks = split_documents([Document(TABLE)], SplitConfig(chunk_size=100, chunk_overlap=0, table_header_repeat=True))
    assert len(chunks) >= 2
    assert all(len(c.text) <= 100 for c in chunks)
    assert all(re.fullmatch(r"(\|.*\|\n?)+", c.text) for c in chunks)  # whole rows only
    rows = TABLE.split("\n")[2:]
    # Every piece starts with the header row and its --- line; the data rows appear once each, in order.
    assert all(c.text.startswith("| 模型 | 版本 | 说明 |\n|---|---|---|\n") for c in chunks)
    assert [line for c in chunks for line in c.text.split("\n")[2:]] == rows


def test_a_table_without_a_header_line_is_cut_without_repeating_its_first_row() -> None:
    bare = "\n".join(line for line in TABLE.split("\n") if "---" not in line)
    chunks = split_documents([Document(bare)], SplitConfig(chunk_size=100, chunk_overlap=0, table_header_repeat=True))
    assert len(chunks) >= 2
    assert "\n".join(c.text for c in chunks) == bare


def test_a_row_of_a_long_table_never_loses_its_header_even_in_a_long_text() -> None:
    big = "| Service | Port |\n| --- | --- |\n" + "\n".join(f"| service number {i} | {9000 + i} |" for i in range(40))
    text = f"{LONG_SENTENCE}\n\n{big}\n\n{LONG_SENTENCE}"
    chunks = split_documents([Document(text)], SplitConfig(chunk_size=250, chunk_overlap=50, table_header_repeat=True))
    with_rows = [c.text for c in chunks if "| service number" in c.text]
    assert len(with_rows) >= 4
    assert all(t.startswith("| Service | Port |\n| --- | --- |\n") and len(t) <= 250 for t in with_rows)
    assert sum(t.count("| service number") for t in with_rows) == 40


# --- OCR line boxes ------------------------------------------------------------------------------------------------


def test_each_chunk_of_an_ocr_page_keeps_the_boxes_of_its_own_lines() -> None:
    lines = [f"Line {i}: the pump in hall {i} is checked every {i + 2} days." for i in range(12)]
    boxes = [[10.0, 20.0 * i, 400.0, 20.0 * i + 15] for i in range(12)]
    page = Document("\n".join(lines), {"page": 3, "ocr": True, "line_boxes": boxes})
    chunks = split_documents([page], SplitConfig(chunk_size=200, chunk_overlap=40))
    assert len(chunks) >= 3
    for chunk in chunks:
        kept = chunk.metadata["line_boxes"]
        covered = [boxes[i] for i, line in enumerate(lines) if line in chunk.text]
        assert covered and all(box in kept for box in covered)
        assert len(kept) <= len(covered) + 2  # plus at most the lines cut at either end
        assert chunk.metadata["page"] == 3 and chunk.metadata["ocr"] is True
    assert page.metadata["line_boxes"] == boxes  # the source document is left as it was
