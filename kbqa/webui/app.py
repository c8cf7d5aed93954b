"""The Streamlit entry point: settings, the API connection in the sidebar, and page navigation. The pages
themselves live in chat_page.py and kb_page.py."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path

import streamlit as st
from pydantic import ValidationError

from kbqa.errors import ConfigError
from kbqa.settings import Settings, load_settings
from kbqa.webui.api_client import ApiClientError, KBQAClient
from kbqa.webui.context import UIContext, store
from kbqa.webui.i18n import language_selector, t
from kbqa.webui.settings import default_api_url

PAGES = Path(__file__).resolve().parent / "page_scripts"
URL_KEY, API_KEY_KEY = "kbqa_api_url", "kbqa_api_key"


def parse_args(argv: Sequence[str]) -> argparse.Namespace:
    """The script's own options (given after ``--`` to ``streamlit run``). Unknown ones are ignored, so the script
    also runs where argv belongs to someone else (Streamlit's AppTest under pytest)."""
    parser = argparse.ArgumentParser(prog="webui.py", add_help=False, allow_abbrev=False)
    parser.add_argument("--config", help="settings YAML (default $KBQA_CONFIG or ./configs/settings.yaml)")
    parser.add_argument("--api-url", help="API server address (default webui.api_url, else api.host:api.port)")
    args, _ = parser.parse_known_args(list(argv))
    return args


@st.cache_resource(show_spinner=False)
def _load_settings(config: str | None) -> Settings:
    # Once per process and config file: settings are read at the entry point only, never at import time.
    return load_settings(config)


@st.cache_resource(show_spinner=False, max_entries=16)
def _client(url: str, key: str, timeout_s: float, stream_timeout_s: float) -> KBQAClient:
    # Shared by the sessions that use the same server and key: one connection pool, not one per rerun.
    return KBQAClient(url, key or None, timeout_s=timeout_s, stream_timeout_s=stream_timeout_s)


def _connection(settings: Settings, default_url: str) -> UIContext:
    ui = settings.webui
    st.session_state.setdefault(URL_KEY, default_url)
    st.session_state.setdefault(API_KEY_KEY, ui.api_key.get_secret_value() if ui.api_key else "")
    url = str(st.session_state[URL_KEY]).strip().rstrip("/") or default_url
    client = _client(url, str(st.session_state[API_KEY_KEY]), ui.timeout_s, ui.stream_timeout_s)
    error = None
    try:
        client.health()
    except ApiClientError as exc:
        error = exc.message
    with st.sidebar.expander(t("api_server"), expanded=error is not None, icon=":material/dns:"):
        st.text_input(t("api_address"), key=URL_KEY, help=t("api_address_help"))
        st.text_input(t("api_key"), key=API_KEY_KEY, type="password", help=t("api_key_help"))
        st.caption(t("not_connected") if error else t("connected", url=url))
    return UIContext(settings, client, error)


def main(argv: Sequence[str] | None = None) -> None:
    # An emoji, not a Material icon: Streamlit fetches a Material favicon from fonts.gstatic.com.
    st.set_page_config(page_title="kbqa", page_icon="📚", layout="wide")
    args = parse_args(sys.argv[1:] if argv is None else argv)
    try:
        settings = _load_settings(args.config)
    except (ConfigError, ValidationError) as exc:
        st.error(t("settings_error", error=exc))
        st.stop()
    # First in the sidebar and before any page text: everything below is drawn in the chosen language.
    language_selector(settings.webui.language)
    ctx = _connection(settings, (args.api_url or default_api_url(settings)).rstrip("/"))
    store(ctx)
    # File pages (not callables) so that each has its own URL and Streamlit's AppTest can switch to it.
    nav = st.navigation(
        [
            st.Page(PAGES / "chat.py", title=t("page_chat"), icon=":material/chat:", url_path="chat", default=True),
            st.Page(PAGES / "knowledge_base.py", title=t("page_kb"), icon=":material/library_books:"),
        ]
    )
    nav.run()
