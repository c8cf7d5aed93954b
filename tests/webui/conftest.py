"""Fixtures for the web UI tests: Streamlit's AppTest running the real entry point (webui.py) against a real API
server on loopback (and, for chat, the real LLM stack), shared with the API tests."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

import pytest
import streamlit as st
from streamlit.testing.v1 import AppTest

from tests.api.conftest import llm_stack, server_factory  # noqa: F401  (fixtures shared with the API tests)

REPO = Path(__file__).resolve().parents[2]
KB_PAGE = "kbqa/webui/page_scripts/knowledge_base.py"

OpenUI = Callable[..., AppTest]


@pytest.fixture
def open_ui(monkeypatch: pytest.MonkeyPatch) -> OpenUI:
    """``open_ui(api_url, page=None, **env)``: the UI as a user opens it, pointed at ``api_url`` the way an operator
    would (KBQA_WEBUI__API_URL), after its first run."""

    def make(api_url: str, page: str | None = None, **env: str) -> AppTest:
        # Settings and clients are cached per process, as in a real server; each test starts from its own.
        st.cache_resource.clear()
        st.cache_data.clear()
        monkeypatch.setenv("KBQA_WEBUI__API_URL", api_url)
        for name, value in env.items():
            monkeypatch.setenv(name, value)
        at = AppTest.from_file(str(REPO / "webui.py"), default_timeout=180).run()
        if page:
            at.switch_page(page).run()
        assert not at.exception, [e.value for e in at.exception]
        return at

    return make


def by_label(elements: Iterable[Any], label: str) -> Any:
    """The one element with this label (AppTest looks widgets up by key; most of ours have none)."""
    found = [e for e in elements if getattr(e, "label", None) == label]
    assert len(found) == 1, f"{len(found)} elements labelled {label!r}"
    return found[0]


def texts(elements: Iterable[Any]) -> list[str]:
    """Element values with Markdown's backslash escapes removed (the UI escapes file names and chunk text)."""
    return [str(e.value).replace("\\", "") for e in elements]
