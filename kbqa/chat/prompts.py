"""Prompt templates from configs/prompts.yaml (Jinja2, Chatchat's names), re-read when the file changes."""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Any

import yaml
from jinja2 import StrictUndefined
from jinja2.sandbox import SandboxedEnvironment

from kbqa.errors import ConfigError, KBQAError

# Used when the file lacks a template, so a trimmed prompts.yaml never breaks a route.
BUILTIN: dict[str, dict[str, str]] = {
    "llm_chat": {"default": "{{ input }}", "with_history": "{{ history }}\nHuman: {{ input }}\nAI:"},
    "knowledge_base_chat": {
        "default": "<指令>根据已知信息，简洁和专业的来回答问题。只能使用已知信息作答；如果无法从中得到答案，"
        "请说 “根据已知信息无法回答该问题”，不允许在答案中添加编造成分。</指令>\n"
        "<已知信息>{{ context }}</已知信息>\n<问题>{{ question }}</问题>\n",
        "text": "<指令>根据已知信息，简洁和专业的来回答问题。</指令>\n<已知信息>{{ context }}</已知信息>\n"
        "<问题>{{ question }}</问题>\n",
        "empty": "请你回答我的问题:\n{{ question }}\n\n",
    },
}


class PromptNotFound(KBQAError):
    status_code = 404


class PromptTemplates:
    def __init__(self, path: Path) -> None:
        self.path = path
        # Sandboxed: a template edited by an operator still cannot reach Python internals.
        self._env = SandboxedEnvironment(undefined=StrictUndefined, autoescape=False, keep_trailing_newline=True)
        self._lock = threading.Lock()
        self._mtime: float | None = None
        self._templates: dict[str, dict[str, str]] = {}

    def _current(self) -> dict[str, dict[str, str]]:
        try:
            mtime = self.path.stat().st_mtime
        except FileNotFoundError:
            return BUILTIN
        with self._lock:
            if mtime != self._mtime:
                try:
                    data = yaml.safe_load(self.path.read_text(encoding="utf-8")) or {}
                except yaml.YAMLError as exc:
                    raise ConfigError(f"cannot parse {self.path.name}: {exc}") from exc
                if not isinstance(data, dict):
                    raise ConfigError(f"{self.path.name} must hold a mapping of template types")
                self._templates = {str(k): {str(n): str(t) for n, t in (v or {}).items()} for k, v in data.items()}
                self._mtime = mtime
            return self._templates

    def all(self) -> dict[str, dict[str, str]]:
        merged = {kind: dict(names) for kind, names in BUILTIN.items()}
        for kind, names in self._current().items():
            merged.setdefault(kind, {}).update(names)
        return merged

    def get(self, kind: str, name: str) -> str | None:
        return self.all().get(kind, {}).get(name)

    def render(self, kind: str, name: str, **variables: Any) -> str:
        template = self.get(kind, name)
        if template is None:
            raise PromptNotFound(f"no prompt template {name!r} of type {kind!r}")
        return self._env.from_string(template).render(**variables)
