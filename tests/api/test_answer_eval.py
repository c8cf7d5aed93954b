"""`kbqa eval --answers` and the answer-quality runner over a real API server's /chat/knowledge_base_chat.

The knowledge base is empty, so every question gets the configured empty answer without an LLM (api.empty_answer):
the HTTP, SSE parsing, timing and scoring path runs for real in well under a second a question."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from kbqa.cli import main
from kbqa.evaluation.answer_eval import ChatCallError, ChatRequestOptions, evaluate_answers
from kbqa.evaluation.answer_set import AnswerItem
from tests.api.conftest import LiveServer, ServerFactory
from tests.llm.llm_topology import free_port

KB = "answers_kb"
ITEMS = [AnswerItem("a1", "What is the capital of France?", ("Paris",), "fr.txt"), AnswerItem("u1", "Who won?")]


@pytest.fixture(scope="module")
def server(server_factory: ServerFactory) -> LiveServer:
    srv = server_factory()
    with srv.client() as c:
        assert c.post("/knowledge_base/create_knowledge_base", json={"knowledge_base_name": KB}).json()["code"] == 200
    return srv


def test_runner_scores_the_servers_empty_answer_as_a_refusal(server: LiveServer) -> None:
    empty = server.settings.api.empty_answer
    with server.client() as client:
        report = evaluate_answers(client, KB, ITEMS, ChatRequestOptions(), empty)
    assert [a.answer for a in report.answers] == [empty, empty]
    assert report.accuracy == 0.0 and report.cited == 0.0
    assert report.refused == 1.0 and report.false_refusals == 1.0
    assert report.first_token_s_p50 is not None and 0 < report.first_token_s_p50 <= report.total_s_p90


def test_runner_names_the_status_of_a_failed_chat(server: LiveServer) -> None:
    with server.client() as client, pytest.raises(ChatCallError, match="404"):
        evaluate_answers(client, "no_such_kb", ITEMS, ChatRequestOptions(), None)


def test_cli_eval_answers(server: LiveServer, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    golden = tmp_path / "set.jsonl"
    lines = [
        {"id": "a1", "question": "What is the capital of France?", "answers": ["Paris"], "file": "fr.txt"},
        {"id": "u1", "question": "Who won?", "answers": []},
    ]
    golden.write_text("".join(json.dumps(line) + "\n" for line in lines), encoding="utf-8")
    assert main(["eval", KB, str(golden), "--answers", "--api-url", server.url, "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert (report["answerable"], report["unanswerable"], report["refused_count"]) == (1, 1, 1)
    assert report["options"] == {
        "temperature": 0.0,
        "top_k": 3,
        "max_tokens": 48,
        "score_threshold": None,
        "model_name": None,
        "prompt_name": None,
    }


def test_cli_eval_answers_bad_input(server: LiveServer, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"question": "q", "answers": ["a"]}\n', encoding="utf-8")
    assert main(["eval", KB, str(bad), "--answers", "--api-url", server.url]) == 1
    assert "line 1" in capsys.readouterr().err
    assert main(["eval", KB, str(tmp_path / "missing.jsonl"), "--answers", "--api-url", server.url]) == 1
    assert "missing.jsonl" in capsys.readouterr().err
    good = tmp_path / "good.jsonl"
    good.write_text('{"question": "q", "answers": []}\n', encoding="utf-8")
    nobody = f"http://127.0.0.1:{free_port()}"
    assert main(["eval", KB, str(good), "--answers", "--api-url", nobody]) == 1
    assert "cannot reach the API server" in capsys.readouterr().err
