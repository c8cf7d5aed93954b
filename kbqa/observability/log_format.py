"""How the servers' log lines look: readable text by default, one JSON object per line with ``logging.format: json``.
Both carry the request id of the request a line was written for."""

from __future__ import annotations

import json
import logging
from datetime import UTC, datetime
from typing import Any

from kbqa.observability.request_log import RequestIdFilter
from kbqa.observability.settings import LoggingSettings

TEXT_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s%(rid)s"


class TextFormatter(logging.Formatter):
    def __init__(self) -> None:
        super().__init__(TEXT_FORMAT)

    def format(self, record: logging.LogRecord) -> str:
        rid = getattr(record, "request_id", None)
        record.rid = f" [rid={rid}]" if rid else ""
        return super().format(record)


class JSONFormatter(logging.Formatter):
    """{"ts", "level", "logger", "msg", "request_id", ...the request's fields..., "exc"}, one per line."""

    def format(self, record: logging.LogRecord) -> str:
        out: dict[str, Any] = {
            "ts": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname.lower(),
            "logger": record.name,
            "msg": record.getMessage(),
        }
        rid = getattr(record, "request_id", None)
        if rid:
            out["request_id"] = rid
        request = getattr(record, "request", None)
        if isinstance(request, dict):
            out.update(request)
        if record.exc_info:
            out["exc"] = self.formatException(record.exc_info)
        return json.dumps(out, ensure_ascii=False, default=str)


def configure_logging(level: str, settings: LoggingSettings | None = None) -> None:
    """The root logger's one handler (stderr), in the configured format, stamping request ids; uvicorn's own loggers
    go through it too: run uvicorn with ``log_config=None, access_log=False`` (kbqa writes its own request line)."""
    settings = settings or LoggingSettings()
    handler = logging.StreamHandler()
    handler.setFormatter(JSONFormatter() if settings.format == "json" else TextFormatter())
    handler.addFilter(RequestIdFilter())
    root = logging.getLogger()
    for old in list(root.handlers):
        root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(level.upper())
    for name in ("uvicorn", "uvicorn.error", "uvicorn.access"):
        logger = logging.getLogger(name)
        logger.handlers.clear()
        logger.propagate = True
