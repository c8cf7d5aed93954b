"""``kbqa chat`` (FastChat's ``python -m fastchat.serve.cli``): a conversation in the terminal.

Three sources of answers (see :mod:`kbqa.terminal.backends`): a model loaded in this process (``--model-path``, the
bundled SmolLM2 by default), a running OpenAI-compatible server (``--api-base``), or a knowledge base through the API
server (``--kb``), whose answers end with their numbered sources.

Ctrl-C while an answer streams stops that answer and returns to the prompt; at the prompt, Ctrl-C or Ctrl-D quits.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
from pathlib import Path
from typing import Any

from kbqa.atomic_file import atomic_write_bytes
from kbqa.errors import KBQAError
from kbqa.terminal.backends import (
    ChatBackend,
    GenerationOptions,
    InProcessBackend,
    KnowledgeBaseBackend,
    Message,
    OpenAIBackend,
)
from kbqa.terminal.chat_io import Answer, ChatIO, make_chat_io

COMMANDS = {
    "!!exit": "quit (Ctrl-D, or Ctrl-C at the prompt, too)",
    "!!reset": "start a new conversation",
    "!!remove": "take back the last question and its answer",
    "!!regen": "answer the last question again",
    "!!save FILE": "save the conversation as JSON",
    "!!load FILE": "continue a saved conversation (kbqa's or FastChat's format)",
    "!!help": "this list",
}
SAVE_FORMAT = "kbqa-chat"
DEFAULT_MAX_NEW_TOKENS = 512
DEFAULT_TEMPERATURE = 0.7
STOPPED = "[answer stopped]"
ROLES = ("system", "user", "assistant")


def parse_conversation(data: Any) -> list[Message]:
    """Messages from a saved conversation: ours (``{"messages": [{"role", "content"}]}``), a bare list of such
    messages, or FastChat's ``conv.dict()`` (``roles`` plus ``[role, text]`` pairs from ``offset`` on)."""
    raw = data.get("messages") if isinstance(data, dict) else data
    if not isinstance(raw, list):
        raise KBQAError("not a saved conversation: no list of messages")
    messages: list[Message] = []
    if isinstance(data, dict) and isinstance(data.get("roles"), list) and len(data["roles"]) >= 2:
        roles = {data["roles"][0]: "user", data["roles"][1]: "assistant"}
        if data.get("system_message"):
            messages.append({"role": "system", "content": str(data["system_message"])})
        for pair in raw[int(data.get("offset") or 0) :]:
            if not (isinstance(pair, list | tuple) and len(pair) == 2 and pair[0] in roles):
                raise KBQAError(f"unexpected FastChat message {str(pair)[:80]}")
            if pair[1] is not None:  # FastChat leaves the last answer None while it is being generated
                messages.append({"role": roles[pair[0]], "content": str(pair[1])})
        return messages
    for item in raw:
        if not (isinstance(item, dict) and item.get("role") in ROLES and isinstance(item.get("content"), str)):
            raise KBQAError(f"unexpected message {str(item)[:80]}: want {{'role': user|assistant|system, 'content'}}")
        messages.append({"role": item["role"], "content": item["content"]})
    return messages


class ChatSession:
    def __init__(self, backend: ChatBackend, io: ChatIO) -> None:
        self.backend = backend
        self.io = io
        self.messages: list[Message] = []

    def run(self) -> int:
        self.io.info(
            f"kbqa chat: {self.backend.label}\n"
            "!!help lists the commands; Ctrl-C stops an answer; Ctrl-D or !!exit quits."
        )
        while True:
            try:
                text = self.io.read_message()
            except (EOFError, KeyboardInterrupt):
                self.io.info("")
                return 0
            if not text.strip():
                continue
            if text.strip().startswith("!!"):
                if not self.command(text.strip()):
                    return 0
                continue
            self.messages.append({"role": "user", "content": text})
            self.answer()

    def answer(self) -> None:
        """Answer the last user message, streaming; on Ctrl-C keep what was shown, on an error take the question
        back so the conversation stays a valid alternation."""
        answer = Answer()
        deltas = self.backend.stream(self.messages)
        try:
            self.io.stream_answer(deltas, answer)
        except KeyboardInterrupt:
            self.io.info(STOPPED)
        except KBQAError as exc:
            self.io.error(exc.message)
            answer.text = ""
        finally:
            # Stops generation at its source: the in-process sequence is cancelled, an HTTP response closed.
            deltas.close()
        if answer.text:
            self.messages.append({"role": "assistant", "content": answer.text})
        else:
            self.messages.pop()

    def command(self, line: str) -> bool:
        """Run a ``!!`` command; False means quit."""
        name, _, arg = line.partition(" ")
        arg = arg.strip()
        if name == "!!exit":
            return False
        if name == "!!reset":
            self.messages = []
            self.io.info("new conversation")
        elif name == "!!remove":
            self._drop_last_turn()
        elif name == "!!regen":
            if self._drop_last_turn(keep_question=True):
                self.answer()
        elif name in ("!!save", "!!load"):
            if not arg:
                self.io.error(f"usage: {name} FILE")
            else:
                try:
                    if name == "!!save":
                        self._save(Path(arg))
                    else:
                        self._load(Path(arg))
                except (OSError, ValueError, KBQAError) as exc:
                    self.io.error(exc.message if isinstance(exc, KBQAError) else f"{arg}: {exc}")
        elif name == "!!help":
            self.io.info("\n".join(f"{cmd:<14}{what}" for cmd, what in COMMANDS.items()))
        else:
            self.io.error(f"unknown command {name}; !!help lists them")
        return True

    def _drop_last_turn(self, keep_question: bool = False) -> bool:
        last_user = next((i for i in range(len(self.messages) - 1, -1, -1) if self.messages[i]["role"] == "user"), None)
        if last_user is None:
            self.io.error("nothing to take back yet")
            return False
        self.messages = self.messages[: last_user + 1 if keep_question else last_user]
        if not keep_question:
            self.io.info("removed the last question and its answer")
        return True

    def _save(self, path: Path) -> None:
        data = {"format": SAVE_FORMAT, "version": 1, "source": self.backend.label, "messages": self.messages}
        atomic_write_bytes(path, json.dumps(data, ensure_ascii=False, indent=2).encode("utf-8"))
        self.io.info(f"saved {len(self.messages)} messages to {path}")

    def _load(self, path: Path) -> None:
        self.messages = parse_conversation(json.loads(path.read_text(encoding="utf-8")))
        self.io.info(f"loaded {len(self.messages)} messages from {path}")
        for message in self.messages:
            first_line = message["content"].splitlines()[0] if message["content"] else ""
            self.io.info(f"  {message['role']}: {first_line[:100]}")


# -- command line --------------------------------------------------------------------------------------------------
def add_chat_arguments(parser: argparse.ArgumentParser) -> None:
    source = parser.add_argument_group("where answers come from (default: the bundled model, in this process)")
    modes = source.add_mutually_exclusive_group()
    modes.add_argument(
        "--model-path",
        help="catalog model name (kbqa models list), Hugging Face folder or .gguf file loaded in this process "
        "(default: the bundled SmolLM2-135M-Instruct)",
    )
    modes.add_argument(
        "--api-base",
        nargs="?",
        const="",
        metavar="URL",
        help="a running OpenAI-compatible server, e.g. http://127.0.0.1:8000/v1 (alone: llm.client.base_url)",
    )
    modes.add_argument("--kb", metavar="NAME", help="answer from this knowledge base through the API server")
    source.add_argument("--device", choices=["auto", "cpu", "cuda"], default="auto", help="for --model-path")
    source.add_argument("--model", help="model name at the server (default: its first model, or the API's default)")
    source.add_argument("--api-url", help="API server for --kb (default: api.host:api.port, http://127.0.0.1:7861)")
    source.add_argument("--api-key", help="key for the server (default: $KBQA_API_KEY)")
    parser.add_argument("--style", choices=["simple", "rich"], default="simple", help="rich: render Markdown")
    parser.add_argument(
        "--max-new-tokens",
        type=int,
        help=f"longest answer, in tokens (default {DEFAULT_MAX_NEW_TOKENS}; with --kb the server's "
        "api.kb_chat_max_tokens)",
    )
    parser.add_argument(
        "--temperature",
        type=float,
        help=f"sampling temperature, 0: greedy (default {DEFAULT_TEMPERATURE}; with --kb the server's "
        "api.kb_chat_temperature)",
    )


def _api_server_url(settings: Any) -> str:
    host = settings.api.host if settings.api.host not in ("0.0.0.0", "::", "") else "127.0.0.1"
    return f"http://{host}:{settings.api.port}"


def make_backend(args: argparse.Namespace) -> ChatBackend:
    from kbqa.settings import load_settings

    if args.max_new_tokens is not None and args.max_new_tokens < 1:
        raise KBQAError("--max-new-tokens must be at least 1")
    api_key = args.api_key or os.environ.get("KBQA_API_KEY") or None
    if args.kb is not None:
        api_url = args.api_url or _api_server_url(load_settings(args.config))
        # Left unset, the server applies its knowledge-base defaults (low temperature, short grounded answers).
        kb_options = GenerationOptions(max_tokens=args.max_new_tokens, temperature=args.temperature)
        return KnowledgeBaseBackend(api_url, api_key, args.kb, args.model, kb_options)
    options = GenerationOptions(
        max_tokens=args.max_new_tokens or DEFAULT_MAX_NEW_TOKENS,
        temperature=DEFAULT_TEMPERATURE if args.temperature is None else args.temperature,
    )
    if args.api_base is not None:
        client = load_settings(args.config).llm.client
        if api_key is None and client.api_key is not None:
            api_key = client.api_key.get_secret_value() or None
        return OpenAIBackend(args.api_base or client.base_url, api_key, args.model, options)
    if args.model:
        raise KBQAError("--model names a model at a server (--api-base or --kb); load a local one with --model-path")
    model_path = None
    if args.model_path is not None:
        from kbqa.llm.model_catalog import resolve

        # Checked before torch is imported: a typo or a model not yet installed should cost a second, not a load.
        path = resolve(args.model_path, load_settings(args.config).llm.worker.models_dir)
        if not path.exists():
            raise KBQAError(f"model path does not exist: {args.model_path} (weights are never downloaded at run time)")
        model_path = str(path)
    print(f"loading {args.model_path or 'the bundled SmolLM2-135M-Instruct'} ...", flush=True)
    return InProcessBackend(model_path, args.device, options)


def run_chat(args: argparse.Namespace) -> int:
    with contextlib.suppress(ImportError):
        # input() gets line editing and history where the platform has readline.
        import readline  # noqa: F401
    backend = make_backend(args)
    try:
        return ChatSession(backend, make_chat_io(args.style)).run()
    finally:
        backend.close()
