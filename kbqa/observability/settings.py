"""Settings of the ``metrics:`` and ``logging:`` sections, read by every server (API, OpenAI, controller, worker)."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, SecretStr


class MetricsSettings(BaseModel):
    model_config = ConfigDict(extra="forbid")

    enabled: bool = Field(
        True,
        description="Serve Prometheus metrics at GET /metrics on the API server, the OpenAI server, the controller "
        "and each worker. false: no /metrics route and no per-request counting.",
    )
    api_key: SecretStr | None = Field(
        None,
        description="Bearer key a scraper sends to /metrics ('Authorization: Bearer <key>'); with it set, /metrics "
        "takes this key only. Empty: /metrics is guarded like the server's other routes (the API server's and "
        "OpenAI server's keys when set; open on the controller and workers).",
    )


class LoggingSettings(BaseModel):
    model_config = ConfigDict(extra="forbid")

    format: Literal["text", "json"] = Field(
        "text",
        description="text: readable lines; json: one JSON object per line (for log shippers). Applies to every log "
        "line of the servers, the per-request lines included.",
    )
    requests: bool = Field(
        True,
        description="Write one line per HTTP request (method, route, status, duration, request id) on the API "
        "server, the OpenAI server, the controller and each worker.",
    )
