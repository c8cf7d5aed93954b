from __future__ import annotations

from kbqa.ingest.document import Document
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
    chunks = split_documents([Document(md)], SplitConfig(mode="markdown_header"), ".md")
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
