"""What every page gets from the entry point: the settings (loaded once) and a client for the API server the user
chose in the sidebar. The entry point stores it in the session; page scripts read it with :func:`current`."""

from __future__ import annotations

from dataclasses import dataclass

import streamlit as st

from kbqa.settings import Settings
from kbqa.webui.api_client import ApiClientError, KBQAClient
from kbqa.webui.i18n import t
from kbqa.webui.models import KeyRights, ServerConfig

_KEY = "kbqa_context"


@dataclass
class UIContext:
    settings: Settings
    client: KBQAClient
    error: str | None = None  # why the API server cannot be used right now (down, wrong key, ...)

    def require_server(self) -> None:
        """Stop the page with a plain message when the API server cannot be used: no stack trace, no half page."""
        if self.error:
            st.error(self.error, icon=":material/cloud_off:")
            st.stop()

    def rights(self) -> KeyRights:
        """The key's scope, asked once per session, address and key (the sidebar can change either)."""
        key = f"kbqa_rights::{self.client.base_url}::{self.client.key_id}"
        if key not in st.session_state:
            try:
                st.session_state[key] = self.client.rights()
            except ApiClientError:
                return KeyRights(scope="read")  # unknown: show the least; the page shows the real error elsewhere
        return st.session_state[key]

    def server_config(self) -> ServerConfig:
        """The server's defaults (top_k, threshold, embedding models, ...), asked once per session and address."""
        key = f"kbqa_server_config::{self.client.base_url}"
        if key not in st.session_state:
            try:
                st.session_state[key] = self.client.server_config()
            except ApiClientError:
                return ServerConfig()  # the server's usual defaults; the page shows the real error elsewhere
        return st.session_state[key]


def store(ctx: UIContext) -> None:
    st.session_state[_KEY] = ctx


def current() -> UIContext:
    ctx = st.session_state.get(_KEY)
    if ctx is None:  # a page script run on its own instead of through webui.py
        st.error(t("open_entry_point"))
        st.stop()
    return ctx
