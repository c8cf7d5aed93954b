"""Prompt templates from configs/prompts.yaml (Jinja2, Chatchat's names), re-read when the file changes.

Every template is compiled and its variables checked when the file is read, so a typo is reported by name (at
startup for the templates the server uses by itself, as a 400 for a template a request chose) instead of surfacing
as a 500 in the middle of a chat.
"""

from __future__ import annotations

import logging
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml
from jinja2 import StrictUndefined, Template, TemplateSyntaxError, meta
from jinja2.sandbox import SandboxedEnvironment

from kbqa.errors import ConfigError, KBQAError

log = logging.getLogger(__name__)

_KB_USER_EN_ZH = (
    '{% if language == "zh" %}资料：{% else %}Sources:{% endif %}\n{{ context }}\n\n'
    '{% if language == "zh" %}问题：{% else %}Question: {% endif %}{{ question }}\n'
)
_KB_SYSTEM = (
    '{% if language == "zh" %}你是知识库问答助手。只能根据用户消息中带编号的资料回答问题，用中文简洁作答。'
    "在所依据的内容后用 [n] 标注资料编号，例如 [1]。INSTEAD_ZH"
    "{% else %}You answer questions using only the numbered sources in the user's message. Answer briefly, in "
    "English. Cite the source of each statement as [n], for example [1]. INSTEAD_EN{% endif %}"
)

_ANSWERABILITY = (
    '{% if language == "zh" -%}\n资料：\n{{ context }}\n\n问题：{{ question }}\n\n'
    "上面的资料中有没有这个问题的答案？只回答“是”或“否”。\n{%- else -%}\nSources:\n{{ context }}\n\n"
    "Question: {{ question }}\n\nDo the sources above contain the answer to the question? Answer only yes or no."
    "\n{%- endif %}"
)

# Used when the file lacks a template, so a trimmed prompts.yaml never breaks a route. Kept in step with
# configs/prompts.yaml (a test compares them).
BUILTIN: dict[str, dict[str, str]] = {
    "llm_chat": {"default": "{{ input }}", "with_history": "{{ history }}\nHuman: {{ input }}\nAI:"},
    "knowledge_base_chat": {"default": _KB_USER_EN_ZH, "text": _KB_USER_EN_ZH, "empty": "{{ question }}\n"},
    "knowledge_base_system": {
        "default": _KB_SYSTEM.replace(
            "INSTEAD_ZH", "如果资料中没有答案，只回答：{{ refusal }} 不允许编造任何内容。"
        ).replace(
            "INSTEAD_EN", "If the sources do not contain the answer, reply only: {{ refusal }} Do not make anything up."
        ),
        "text": _KB_SYSTEM.replace("INSTEAD_ZH", "如果无法从资料中得到答案，请说：{{ refusal }}").replace(
            "INSTEAD_EN", "If the sources do not contain the answer, say: {{ refusal }}"
        ),
    },
    "answerability_check": {"default": _ANSWERABILITY},
}

# What each type may use; other types (Chatchat's search_engine_chat, agent_chat) are never rendered here and are
# only checked for syntax.
VARIABLES: dict[str, frozenset[str]] = {
    "llm_chat": frozenset({"input", "history"}),
    "knowledge_base_chat": frozenset({"context", "question", "sources", "language"}),
    "knowledge_base_system": frozenset({"language", "refusal", "sources"}),
    "answerability_check": frozenset({"context", "question", "language"}),
}

# Rendered without the client naming them (Chatchat's clients send prompt_name "default" on every request): a broken
# one is the operator's error, and the server refuses to start with it.
SERVER_USED: frozenset[tuple[str, str]] = frozenset(
    {
        ("llm_chat", "default"),
        ("llm_chat", "with_history"),
        ("knowledge_base_chat", "default"),
        ("knowledge_base_chat", "empty"),
        ("knowledge_base_system", "default"),
        ("answerability_check", "default"),
    }
)


class PromptNotFound(KBQAError):
    status_code = 404


class InvalidPrompt(KBQAError):
    """A template a request chose cannot be used (broken Jinja, an unknown variable)."""

    status_code = 400


@dataclass
class _Entry:
    source: str
    template: Template | None = None
    variables: frozenset[str] = field(default_factory=frozenset)
    problem: str | None = None


class PromptTemplates:
    def __init__(self, path: Path) -> None:
        self.path = path
        # Sandboxed: a template edited by an operator still cannot reach Python internals.
        self._env = SandboxedEnvironment(undefined=StrictUndefined, autoescape=False, keep_trailing_newline=True)
        self._lock = threading.Lock()
        self._mtime: float | None = None
        self._entries: dict[tuple[str, str], _Entry] = {}
        self._raw: dict[str, dict[str, str]] = {}

    # --- loading ------------------------------------------------------------------------------------------------
    def _read_file(self) -> dict[str, dict[str, str]]:
        try:
            data = yaml.safe_load(self.path.read_text(encoding="utf-8")) or {}
        except FileNotFoundError:
            return {}
        except yaml.YAMLError as exc:
            raise ConfigError(f"cannot parse {self.path.name}: {exc}") from exc
        if not isinstance(data, dict):
            raise ConfigError(f"{self.path.name} must hold a mapping of template types")
        out: dict[str, dict[str, str]] = {}
        for kind, names in data.items():
            if names is None:
                continue
            if not isinstance(names, dict):
                raise ConfigError(f"{self.path.name}: {kind} must map template names to templates")
            out[str(kind)] = {str(n): str(t) for n, t in names.items()}
        return out

    def _compile(self, kind: str, name: str, source: str) -> _Entry:
        where = f"prompt template {kind}.{name}"
        try:
            ast = self._env.parse(source)
            template = self._env.from_string(ast)
        except TemplateSyntaxError as exc:
            return _Entry(source, problem=f"{where} is not valid Jinja2: {exc.message} (line {exc.lineno})")
        variables = frozenset(meta.find_undeclared_variables(ast))
        allowed = VARIABLES.get(kind)
        unknown = sorted(variables - allowed) if allowed is not None else []
        if unknown:
            listed = ", ".join(sorted(allowed or ()))
            return _Entry(source, problem=f"{where} uses unknown variable {', '.join(unknown)} (allowed: {listed})")
        return _Entry(source, template, variables)

    def _current(self) -> dict[tuple[str, str], _Entry]:
        try:
            mtime: float | None = self.path.stat().st_mtime
        except FileNotFoundError:
            mtime = None
        with self._lock:
            if mtime != self._mtime or not self._entries:
                merged = {kind: dict(names) for kind, names in BUILTIN.items()}
                for kind, names in (self._read_file() if mtime is not None else {}).items():
                    merged.setdefault(kind, {}).update(names)
                self._entries = {
                    (kind, name): self._compile(kind, name, source)
                    for kind, names in merged.items()
                    for name, source in names.items()
                }
                self._raw = merged
                self._mtime = mtime
            return self._entries

    def check(self) -> None:
        """At startup: a broken template the server uses by itself stops it with the template's name; any other
        broken one is logged and answered with a 400 when a request chooses it."""
        for (kind, name), entry in self._current().items():
            if entry.problem is None:
                continue
            if (kind, name) in SERVER_USED:
                raise ConfigError(f"{self.path}: {entry.problem}")
            log.warning("%s: %s; requests choosing it get HTTP 400", self.path, entry.problem)

    # --- reading ------------------------------------------------------------------------------------------------
    def all(self) -> dict[str, dict[str, str]]:
        self._current()
        with self._lock:
            return {kind: dict(names) for kind, names in self._raw.items()}

    def get(self, kind: str, name: str) -> str | None:
        entry = self._current().get((kind, name))
        return entry.source if entry is not None else None

    def variables(self, kind: str, name: str) -> frozenset[str]:
        """The variables a template uses (empty for a missing or broken one)."""
        entry = self._current().get((kind, name))
        return entry.variables if entry is not None else frozenset()

    def _fail(self, kind: str, name: str, problem: str) -> KBQAError:
        if (kind, name) in SERVER_USED:
            return ConfigError(f"{problem}; fix it in {self.path.name}")
        return InvalidPrompt(problem)

    def render(self, kind: str, name: str, **variables: Any) -> str:
        entry = self._current().get((kind, name))
        if entry is None:
            raise PromptNotFound(f"no prompt template {name!r} of type {kind!r}")
        if entry.template is None:
            raise self._fail(kind, name, entry.problem or f"prompt template {kind}.{name} is unusable")
        try:
            return entry.template.render(**variables)
        except Exception as exc:  # an operator's template fails on data (a filter on None, 1/0): name it, not a 500
            raise self._fail(kind, name, f"prompt template {kind}.{name} failed: {exc}") from exc
