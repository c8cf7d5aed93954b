"""``kbqa chat`` driven through a pseudo-terminal, and ``kbqa test-message``, against the real LLM services
(controller + SmolLM2 worker + OpenAI server as subprocesses) and a real API server with a ``samples`` KB.

Answers are kept to a few tokens: the 135M model decodes ~10 tokens/s on a CI core."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pexpect
import pytest

from kbqa.embeddings.pool import EmbedderPool
from tests.api.conftest import LiveServer
from tests.conftest import make_settings
from tests.llm.llm_topology import API_KEY, CHAT_MODEL, Service, Stack, chat_stack, free_port

pytestmark = pytest.mark.slow

KBQA = str(Path(sys.executable).with_name("kbqa"))
PROMPT = "user: "
DOC = (
    "# Ports\n\nThe kbqa API server listens on port 7861. The OpenAI-compatible server listens on port 8000.\n"
    "The web UI uses port 8501.\n"
)


@pytest.fixture(scope="module")
def llm(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Service]]:
    with chat_stack(tmp_path_factory.mktemp("terminal-llm"), api_key=API_KEY) as services:
        yield services


@pytest.fixture(scope="module")
def api_server(
    tmp_path_factory: pytest.TempPathFactory, embedders: EmbedderPool, llm: dict[str, Service]
) -> Iterator[LiveServer]:
    """An API server with a ``samples`` KB holding one small file, answering through the LLM stack above."""
    client = {"base_url": f"{llm['openai'].url}/v1", "api_key": API_KEY, "max_retries": 0, "timeout_s": 120}
    # Short KB answers by the server's own default: the --kb test sends no length, so that default is what applies.
    settings = make_settings(
        tmp_path_factory.mktemp("terminal-api"), llm={"client": client}, api={"kb_chat_max_tokens": 12}
    )
    srv = LiveServer(settings, embedders)
    srv.start()
    try:
        with srv.client() as c:
            r = c.post("/knowledge_base/create_knowledge_base", json={"knowledge_base_name": "samples"})
            assert r.status_code == 200, r.text
            files = [("files", ("guide/ports.md", DOC.encode(), "text/markdown"))]
            r = c.post("/knowledge_base/upload_docs", data={"knowledge_base_name": "samples"}, files=files)
            assert r.json()["data"]["failed_files"] == {}
        yield srv
    finally:
        srv.stop()


def chat_env(tmp_path: Path) -> dict[str, str]:
    config = tmp_path / "settings.yaml"
    config.write_text("{}\n", encoding="utf-8")
    # COLUMNS: rich sizes its output to the pty; KBQA_CONFIG: the repository's settings must not matter here.
    return {**os.environ, "HF_HUB_OFFLINE": "1", "KBQA_CONFIG": str(config), "TERM": "xterm", "COLUMNS": "160"}


def spawn_chat(tmp_path: Path, *args: str) -> pexpect.spawn:
    child = pexpect.spawn(
        KBQA, ["chat", *args], env=chat_env(tmp_path), encoding="utf-8", timeout=90, dimensions=(50, 160)
    )
    child.logfile_read = (tmp_path / "chat.log").open("a", encoding="utf-8")
    return child


def read_answer(child: pexpect.spawn, timeout: float = 90) -> tuple[str, int]:
    """Everything up to the next prompt, and in how many separate reads it arrived (more than one: streamed)."""
    buffer, reads = "", 0
    deadline = time.monotonic() + timeout
    while PROMPT not in buffer:
        assert time.monotonic() < deadline, f"no prompt after the answer: {buffer!r}"
        try:
            piece = child.read_nonblocking(4096, timeout=5)
        except pexpect.TIMEOUT:
            continue
        if piece.strip():
            reads += 1
        buffer += piece
    return buffer[: buffer.index(PROMPT)], reads


def wait_idle(worker: Service, timeout: float = 10) -> None:
    """The worker's queue empties: a stopped answer stopped generating too, not only printing."""
    deadline = time.monotonic() + timeout
    while httpx.get(f"{worker.url}/health", timeout=5).json()["detail"]["queue_length"]:
        assert time.monotonic() < deadline, "the worker kept generating after the answer was stopped"
        time.sleep(0.2)


def test_chat_over_the_openai_server_streams_resets_and_exits(llm: dict[str, Service], tmp_path: Path) -> None:
    child = spawn_chat(
        tmp_path, "--api-base", f"{llm['openai'].url}/v1", "--api-key", API_KEY, "--max-new-tokens", "16"
    )
    child.expect(f"kbqa chat: {CHAT_MODEL} at {llm['openai'].url}/v1")
    child.expect(PROMPT)
    child.sendline("What is the capital of France?")
    child.expect("assistant: ")
    answer, reads = read_answer(child)
    assert answer.strip(), "empty answer"
    assert reads >= 2, f"the answer arrived in one piece, not streamed: {answer!r}"
    child.sendline("!!reset")
    child.expect("new conversation")
    child.expect(PROMPT)
    child.sendline("!!exit")
    child.expect(pexpect.EOF)
    child.close()
    assert child.exitstatus == 0


def test_ctrl_c_stops_the_answer_not_the_program(llm: dict[str, Service], tmp_path: Path) -> None:
    child = spawn_chat(
        tmp_path, "--api-base", f"{llm['openai'].url}/v1", "--api-key", API_KEY, "--max-new-tokens", "400"
    )
    child.expect(PROMPT)
    child.sendline("Write a long story about a dragon who learns to bake bread.")
    child.expect("assistant: ")
    child.expect(r"\w+")  # the answer has started
    child.sendintr()
    child.expect(re.escape("[answer stopped]"))
    child.expect(PROMPT)
    wait_idle(llm["worker"])
    assert child.isalive()
    child.sendintr()  # Ctrl-C at the prompt quits, cleanly
    child.expect(pexpect.EOF)
    child.close()
    assert child.exitstatus == 0


def test_chat_in_process_with_rich_rendering(tmp_path: Path) -> None:
    """The worker's own backend in the chat process: Ctrl-C cancels its sequence, the next question still works."""
    child = spawn_chat(tmp_path, "--style", "rich", "--device", "cpu", "--max-new-tokens", "300")
    child.expect("in-process, cpu", timeout=120)
    child.expect(PROMPT)
    child.sendline("Tell me a long story about the sea.")
    child.expect("assistant:")
    child.expect(r"[A-Za-z]{3,}")  # words of the answer, not the letters of rich's escape sequences
    child.sendintr()
    child.expect(re.escape("[answer stopped]"))
    child.expect(PROMPT)
    child.sendline("!!save " + str(tmp_path / "conversation.json"))
    child.expect("saved 2 messages")
    child.sendline("!!reset")
    child.expect("new conversation")
    child.expect(PROMPT)  # Ctrl-D must reach the prompt's read, not the gap before it
    child.sendeof()
    child.expect(pexpect.EOF)
    child.close()
    assert child.exitstatus == 0
    assert (tmp_path / "conversation.json").is_file()


def test_chat_with_a_knowledge_base_prints_sources(api_server: LiveServer, tmp_path: Path) -> None:
    # No --max-new-tokens / --temperature: the API server's knowledge-base defaults apply.
    child = spawn_chat(tmp_path, "--kb", "samples", "--api-url", api_server.url)
    child.expect("knowledge base samples at")
    child.expect(PROMPT)
    child.sendline("Which port does the API server listen on?")
    child.expect("assistant: ")
    answer, _ = read_answer(child)
    assert "sources:" in answer, answer
    assert re.search(r"\[1\] guide/ports\.md .*relevance 0\.\d\d", answer), answer
    child.sendline("!!exit")
    child.expect(pexpect.EOF)
    child.close()
    assert child.exitstatus == 0


def test_chat_with_a_knowledge_base_served_as_an_openai_model_prints_sources(
    api_server: LiveServer, tmp_path: Path
) -> None:
    """`--api-base http://host:7861/kb/v1 --model samples`: the API server's OpenAI face of a KB; its sources too."""
    base = f"{api_server.url}/kb/v1"
    child = spawn_chat(tmp_path, "--api-base", base, "--model", "samples", "--max-new-tokens", "12")
    child.expect(f"samples at {base}")
    child.expect(PROMPT)
    child.sendline("Which port does the API server listen on?")
    child.expect("assistant: ")
    answer, _ = read_answer(child)
    assert re.search(r"\[1\] guide/ports\.md .*relevance 0\.\d\d", answer), answer
    child.sendline("!!exit")
    child.expect(pexpect.EOF)
    child.close()
    assert child.exitstatus == 0


def run_test_message(model: str, controller: str, tmp_path: Path, *extra: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [KBQA, "test-message", "--model-name", model, "--controller-address", controller, *extra],
        capture_output=True,
        text=True,
        timeout=180,
        env=chat_env(tmp_path),
    )


def test_test_message_passes_against_the_running_services(llm: dict[str, Service], tmp_path: Path) -> None:
    out = run_test_message(CHAT_MODEL, llm["controller"].url, tmp_path, "--max-new-tokens", "12")
    assert out.returncode == 0, out.stderr
    assert f"worker: {llm['worker'].url}" in out.stdout
    assert re.search(r"assistant: \S", out.stdout), out.stdout
    assert re.search(r"ok: \d+ tokens in [\d.]+ s \(first token after [\d.]+ s, [\d.]+ tokens/s\)", out.stdout)
    workers = httpx.get(f"{llm['controller'].url}/list_workers").json()["workers"]
    assert [w["in_flight"] for w in workers] == [0]  # the pick was released


def test_test_message_fails_clearly_without_a_worker(llm: dict[str, Service], tmp_path: Path) -> None:
    controller = llm["controller"].url
    out = run_test_message("no-such-model", controller, tmp_path)
    assert out.returncode == 1
    assert f"error: no worker serves 'no-such-model'; the controller at {controller} knows {CHAT_MODEL}" in out.stderr
    stack = Stack(tmp_path)
    try:
        empty = stack.controller()
        stack.wait_http(empty)
        out = run_test_message(CHAT_MODEL, empty.url, tmp_path)
        assert out.returncode == 1
        assert "knows nothing (no worker is registered)" in out.stderr and "Traceback" not in out.stderr
    finally:
        stack.stop_all()
    out = run_test_message(CHAT_MODEL, f"http://127.0.0.1:{free_port()}", tmp_path)
    assert out.returncode == 1 and "cannot reach the controller" in out.stderr
