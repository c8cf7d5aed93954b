"""Settings of the web UI (the ``webui:`` section of configs/settings.yaml)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Literal

from pydantic import BaseModel, ConfigDict, Field, SecretStr

if TYPE_CHECKING:
    from kbqa.settings import Settings


class WebUISettings(BaseModel):
    model_config = ConfigDict(extra="forbid")

    host: str = Field(
        "127.0.0.1",
        description="Interface the Streamlit server binds. An explicit address also keeps Streamlit from asking a "
        "public service for this machine's external IP when it starts.",
    )
    port: int = Field(8501, ge=1, le=65535, description="Port of the web UI (Chatchat's WEBUI_SERVER port).")
    api_url: str | None = Field(
        None,
        description="API server the UI talks to. Empty: http://<api.host>:<api.port> (a wildcard host becomes "
        "127.0.0.1). Can be changed in the sidebar for one browser session.",
    )
    api_key: SecretStr | None = Field(
        None,
        description="Key sent as 'Authorization: Bearer <key>' when the API server sets api.api_keys. Better set "
        "through the environment: KBQA_WEBUI__API_KEY. Can be typed in the sidebar instead.",
    )
    timeout_s: float = Field(
        30.0, gt=0, description="Timeout of ordinary API requests (lists, search, uploads, feedback)."
    )
    stream_timeout_s: float = Field(
        600.0,
        gt=0,
        description="Longest wait for the next event of a streamed answer or rebuild (a slow CPU model may take "
        "long for its first token).",
    )
    poll_interval_s: float = Field(
        0.5, gt=0, description="How often the progress of a background upload or re-index is asked for."
    )
    history_len: int = Field(
        3, ge=0, le=20, description="Past question/answer pairs sent with a question by default (HISTORY_LEN)."
    )
    max_tokens: int | None = Field(
        None, gt=0, description="Longest answer, in tokens. Empty: the API server's llm.client.max_tokens."
    )
    language: Literal["en", "zh"] = Field(
        "en",
        description="Language of the UI's own text: en (English) or zh (简体中文). Each browser session can switch "
        "it in the sidebar; messages from the API server are shown as they come.",
    )


def default_api_url(settings: Settings) -> str:
    """``webui.api_url``, or the API server's own address from the ``api:`` section."""
    if settings.webui.api_url:
        return settings.webui.api_url.rstrip("/")
    host = settings.api.host
    if host in ("0.0.0.0", "", "::"):  # a wildcard bind is reached on loopback
        host = "127.0.0.1"
    if ":" in host:
        host = f"[{host}]"
    return f"http://{host}:{settings.api.port}"
