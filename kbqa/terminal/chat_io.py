"""The terminal side of ``kbqa chat``: reading (multi-line) messages and showing streamed answers, in two styles.

``simple`` writes plain text as it comes (works in any terminal, a pipe, or a test's pseudo-terminal); ``rich``
renders the answer as Markdown with the ``rich`` library, re-rendered live while it streams.

Multi-line input: end a line with ``\\`` to continue on the next one, or type ``\"\"\"`` alone on a line to start a
block and again to end it (Ctrl-D ends a block too).
"""

from __future__ import annotations

import sys
from abc import ABC, abstractmethod
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any, TextIO

from kbqa.terminal.backends import Delta

USER = "user"
ASSISTANT = "assistant"
CONTINUE = "... "
BLOCK = '"""'


@dataclass
class Answer:
    """What has been shown so far; filled while streaming, so an interrupted answer keeps its part."""

    text: str = ""
    sources: list[dict[str, Any]] = field(default_factory=list)


def source_line(source: dict[str, Any]) -> str:
    """``[1] guide/ports.md (page 2, Ports)  relevance 0.89``: file, where in it, how relevant."""
    where = [f"page {source['page']}" if source.get("page") is not None else "", source.get("heading") or ""]
    place = ", ".join(w for w in where if w)
    line = f"[{source.get('index', '?')}] {source.get('file', '?')}" + (f" ({place})" if place else "")
    relevance = source.get("relevance")
    return line + (f"  relevance {relevance:.2f}" if isinstance(relevance, int | float) else "")


class ChatIO(ABC):
    @abstractmethod
    def read_line(self, prompt: str) -> str:
        """One line from the user; raises EOFError (Ctrl-D) or KeyboardInterrupt (Ctrl-C)."""

    @abstractmethod
    def stream_answer(self, deltas: Iterable[Delta], answer: Answer) -> None:
        """Show ``deltas`` as they come, recording them in ``answer``."""

    @abstractmethod
    def info(self, text: str) -> None: ...

    @abstractmethod
    def error(self, text: str) -> None: ...

    def read_message(self) -> str:
        """A message, possibly of several lines (see the module docstring)."""
        first = self.read_line(f"{USER}: ")
        if first.strip() == BLOCK:
            lines: list[str] = []
            while True:
                try:
                    line = self.read_line(CONTINUE)
                except EOFError:
                    break
                if line.strip() == BLOCK:
                    break
                lines.append(line)
            return "\n".join(lines)
        lines = [first]
        while lines[-1].endswith("\\"):
            lines[-1] = lines[-1][:-1]
            lines.append(self.read_line(CONTINUE))
        return "\n".join(lines)


class SimpleChatIO(ChatIO):
    def __init__(self, out: TextIO | None = None) -> None:
        self.out = out or sys.stdout

    def read_line(self, prompt: str) -> str:
        return input(prompt)

    def stream_answer(self, deltas: Iterable[Delta], answer: Answer) -> None:
        self.out.write(f"{ASSISTANT}: ")
        self.out.flush()
        try:
            for delta in deltas:
                if delta.text:
                    # An answer opening with spaces or a newline would leave the label alone on its line.
                    text = delta.text.lstrip() if not answer.text else delta.text
                    answer.text += text
                    self.out.write(text)
                    self.out.flush()
                answer.sources.extend(delta.sources)
        finally:
            self.out.write("\n")
            self.out.flush()
        if answer.sources:
            self.out.write("sources:\n" + "".join(f"  {source_line(s)}\n" for s in answer.sources))
            self.out.flush()

    def info(self, text: str) -> None:
        print(text, file=self.out, flush=True)

    def error(self, text: str) -> None:
        print(f"error: {text}", file=self.out, flush=True)


class RichChatIO(ChatIO):
    def __init__(self) -> None:
        from rich.console import Console

        self.console = Console()

    def read_line(self, prompt: str) -> str:
        from rich.markup import escape

        label = f"[bold cyan]{escape(prompt)}[/]" if prompt != CONTINUE else prompt
        return self.console.input(label)

    def stream_answer(self, deltas: Iterable[Delta], answer: Answer) -> None:
        from rich.live import Live
        from rich.markdown import Markdown

        self.console.print(f"[bold green]{ASSISTANT}:[/]")
        # vertical_overflow="visible": a long answer scrolls like plain output instead of being cut at the screen.
        live = Live(console=self.console, refresh_per_second=8, vertical_overflow="visible")
        # Not `with Live(...)`: a Ctrl-C landing inside start() would skip __exit__ and leave the refresh thread
        # redrawing over the next prompt forever. stop() is safe whether or not start() got far.
        try:
            live.start()
            for delta in deltas:
                if delta.text:
                    answer.text += delta.text.lstrip() if not answer.text else delta.text
                    live.update(Markdown(answer.text))
                answer.sources.extend(delta.sources)
        finally:
            live.stop()
        if answer.sources:
            from rich.markup import escape

            self.console.print("[dim]sources:[/]")
            for source in answer.sources:
                self.console.print(f"  [dim]{escape(source_line(source))}[/]", highlight=False)

    def info(self, text: str) -> None:
        from rich.markup import escape

        # highlight=False: rich would colour brackets and numbers inside our messages one by one.
        self.console.print(f"[dim]{escape(text)}[/]", highlight=False)

    def error(self, text: str) -> None:
        from rich.markup import escape

        self.console.print(f"[bold red]error:[/] {escape(text)}", highlight=False)


def make_chat_io(style: str) -> ChatIO:
    return RichChatIO() if style == "rich" else SimpleChatIO()
