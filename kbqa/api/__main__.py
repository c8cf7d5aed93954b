"""``python -m kbqa.api [--host H] [--port P] [--config FILE]``: run the API server (default 127.0.0.1:7861)."""

from __future__ import annotations

import argparse
import sys

import uvicorn

from kbqa.api.app import create_app
from kbqa.errors import KBQAError
from kbqa.observability.log_format import configure_logging
from kbqa.settings import load_settings


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m kbqa.api", description=__doc__)
    parser.add_argument("--config", help="settings YAML (default $KBQA_CONFIG or ./configs/settings.yaml)")
    parser.add_argument("--host", help="interface to bind (default api.host: 127.0.0.1)")
    parser.add_argument("--port", type=int, help="port (default api.port: 7861)")
    parser.add_argument("--ssl-keyfile")
    parser.add_argument("--ssl-certfile")
    parser.add_argument("--log-level", default="info", choices=["debug", "info", "warning", "error"])
    args = parser.parse_args(argv)
    configure_logging(args.log_level)
    try:
        settings = load_settings(args.config)
        configure_logging(args.log_level, settings.logging)
        app = create_app(settings)
    except KBQAError as exc:
        # e.g. a foreign or newer database: one sentence, no traceback, nothing served.
        print(f"error: {exc.message}", file=sys.stderr, flush=True)
        raise SystemExit(1) from None
    host = args.host or settings.api.host
    port = args.port or settings.api.port
    uvicorn.run(
        app,
        host=host,
        port=port,
        log_level=args.log_level,
        ssl_keyfile=args.ssl_keyfile,
        ssl_certfile=args.ssl_certfile,
        log_config=None,  # keep the handler configured above (text or JSON, with request ids)
        access_log=False,  # the app writes its own line per request
    )


if __name__ == "__main__":
    main()
