"""``kbqa chat``'s loop, commands, input and saved conversations with a scripted terminal and a fake backend (no
model, no pty), and the one-line failures of ``kbqa chat`` / ``kbqa test-message`` when nothing is running."""

from __future__ import annotations

import io
import json
from collections.abc import Generator, Iterable
from pathlib import Path

import pytest

from kbqa.cli import main
from kbqa.errors import KBQAError
from kbqa.terminal.backends import ChatBackend, Delta, Message
from kbqa.terminal.chat import STOPPED, ChatSession, parse_conversation
from kbqa.terminal.chat_io import Answer, SimpleChatIO, source_line
from tests.llm.llm_topology import free_port


class ScriptedIO(SimpleChatIO):
    """Lines typed by a pretend user; EOF (Ctrl-D) when they run out."""

    def __init__(self, lines: Iterable[str | type[BaseException]]) -> None:
        super().__init__(io.StringIO())
        self.lines = list(lines)

    def read_line(self, prompt: str) -> str:
        if not self.lines:
            raise EOFError
        line = self.lines.pop(0)
        if isinstance(line, type):
            raise line()
        return line

    @property
    def text(self) -> str:
        return self.out.getvalue()  # type: ignore[attr-defined]


class FakeBackend(ChatBackend):
    label = "fake"

    def __init__(self, *, interrupt_after: int | None = None, fail: bool = False) -> None:
        self.seen: list[list[Message]] = []
        self.closed_streams = 0
        self.interrupt_after = interrupt_after
        self.fail = fail

    def stream(self, messages: list[Message]) -> Generator[Delta, None, None]:
        self.seen.append([dict(m) for m in messages])
        try:
            for i, word in enumerate(["Hello", " there", " friend"]):
                if self.interrupt_after is not None and i == self.interrupt_after:
                    raise KeyboardInterrupt  # what Ctrl-C looks like from inside a blocking read
                if self.fail and i == 1:
                    raise KBQAError("the server went away")
                yield Delta(word)
            yield Delta(sources=[{"index": 1, "file": "a.md", "page": 2, "relevance": 0.876}])
        finally:
            self.closed_streams += 1


def run(lines: list[str | type[BaseException]], backend: FakeBackend | None = None) -> tuple[ChatSession, ScriptedIO]:
    session = ChatSession(backend or FakeBackend(), ScriptedIO(lines))
    assert session.run() == 0
    return session, session.io  # type: ignore[return-value]


def test_a_question_streams_an_answer_with_sources_then_exit() -> None:
    session, out = run(["Hi", "!!exit"])
    assert "assistant: Hello there friend\nsources:\n  [1] a.md (page 2)  relevance 0.88\n" in out.text
    assert session.messages == [
        {"role": "user", "content": "Hi"},
        {"role": "assistant", "content": "Hello there friend"},
    ]


def test_reset_remove_regen_and_help() -> None:
    backend = FakeBackend()
    session, out = run(["one", "two", "!!remove", "!!regen", "!!reset", "three", "!!help", "!!nope"], backend)
    assert "removed the last question and its answer" in out.text and "new conversation" in out.text
    # !!regen asked "one" again with no answer attached; after !!reset only "three" is left.
    assert backend.seen[2] == [{"role": "user", "content": "one"}]
    assert session.messages == [
        {"role": "user", "content": "three"},
        {"role": "assistant", "content": "Hello there friend"},
    ]
    assert "!!save FILE" in out.text and "error: unknown command !!nope" in out.text


def test_ctrl_c_keeps_the_shown_part_and_closes_the_stream() -> None:
    backend = FakeBackend(interrupt_after=2)
    session, out = run(["story", "!!exit"], backend)
    assert STOPPED in out.text
    assert session.messages[-1] == {"role": "assistant", "content": "Hello there"}
    assert backend.closed_streams == 1


def test_ctrl_c_before_any_text_takes_the_question_back() -> None:
    session, out = run(["story"], FakeBackend(interrupt_after=0))
    assert STOPPED in out.text and session.messages == []


def test_a_failing_answer_is_reported_and_the_chat_goes_on() -> None:
    backend = FakeBackend(fail=True)
    session, out = run(["q1", "q2"], backend)
    assert out.text.count("error: the server went away") == 2
    assert session.messages == [] and backend.seen[1] == [{"role": "user", "content": "q2"}]


def test_ctrl_c_or_ctrl_d_at_the_prompt_quits() -> None:
    run([KeyboardInterrupt, "never read"])
    run([EOFError, "never read"])


def test_multi_line_input() -> None:
    backend = FakeBackend()
    run(["first \\", "second", '"""', "a", "", "b", '"""', '"""', "ended by Ctrl-D"], backend)
    assert [s[-1]["content"] for s in backend.seen] == ["first \nsecond", "a\n\nb", "ended by Ctrl-D"]


def test_save_and_load(tmp_path: Path) -> None:
    target = tmp_path / "conv.json"
    session, out = run(["Hi", f"!!save {target}", "!!reset", f"!!load {target}", "!!load", f"!!load {tmp_path}/x"])
    saved = json.loads(target.read_text(encoding="utf-8"))
    assert saved["format"] == "kbqa-chat" and len(saved["messages"]) == 2
    assert session.messages == saved["messages"]
    assert f"loaded 2 messages from {target}" in out.text and "error: usage: !!load FILE" in out.text
    assert "No such file" in out.text  # a missing file is an error line, not the end of the chat


def test_load_reads_fastchat_conversations() -> None:
    fastchat = {
        "template_name": "vicuna_v1.1",
        "system_message": "A chat between a curious user and an assistant.",
        "roles": ["USER", "ASSISTANT"],
        "messages": [["USER", "Hi"], ["ASSISTANT", "Hello!"], ["USER", "Bye"], ["ASSISTANT", None]],
        "offset": 0,
    }
    assert parse_conversation(fastchat) == [
        {"role": "system", "content": "A chat between a curious user and an assistant."},
        {"role": "user", "content": "Hi"},
        {"role": "assistant", "content": "Hello!"},
        {"role": "user", "content": "Bye"},
    ]
    with pytest.raises(KBQAError):
        parse_conversation({"messages": [{"role": "wizard", "content": "x"}]})
    with pytest.raises(KBQAError):
        parse_conversation("nope")


def test_source_line() -> None:
    assert source_line({"index": 2, "file": "g.md", "heading": "Ports", "relevance": 0.5}) == (
        "[2] g.md (Ports)  relevance 0.50"
    )


def test_answer_keeps_its_part_when_streaming_stops() -> None:
    answer = Answer()
    chat_io = SimpleChatIO(io.StringIO())

    def deltas() -> Generator[Delta, None, None]:
        yield Delta("  part")
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        chat_io.stream_answer(deltas(), answer)
    assert answer.text == "part"


# -- the command line, when nothing is there ---------------------------------------------------------------------
def test_wrong_model_path_is_one_line(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["chat", "--model-path", str(tmp_path / "missing")]) == 1
    err = capsys.readouterr().err
    assert err.startswith("error: model path does not exist:") and err.count("\n") == 1


def test_servers_down_are_one_line(capsys: pytest.CaptureFixture[str]) -> None:
    dead = f"http://127.0.0.1:{free_port()}"
    assert main(["chat", "--api-base", f"{dead}/v1"]) == 1
    assert f"cannot reach the OpenAI-compatible server at {dead}/v1" in capsys.readouterr().err
    assert main(["chat", "--kb", "samples", "--api-url", dead]) == 1
    assert f"cannot reach the API server at {dead}" in capsys.readouterr().err
    assert main(["test-message", "--model-name", "m", "--controller-address", dead]) == 1
    assert f"cannot reach the controller at {dead}" in capsys.readouterr().err


def test_conflicting_sources_are_a_usage_error(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_info:
        main(["chat", "--kb", "samples", "--model-path", "x"])
    assert exit_info.value.code == 2
    assert main(["chat", "--model", "m"]) == 1
    assert "--model names a model at a server" in capsys.readouterr().err
