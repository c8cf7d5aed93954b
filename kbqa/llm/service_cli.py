"""What the three LLM entry points share: common flags, settings loading, and running uvicorn."""

from __future__ import annotations

import argparse
from pathlib import Path

import uvicorn
from fastapi import FastAPI

from kbqa.observability.log_format import configure_logging as configure_log_format
from kbqa.observability.settings import LoggingSettings
from kbqa.settings import Settings, load_settings


def base_parser(description: str) -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument(
        "--config",
        type=Path,
        default=None,
        help="settings YAML (default: $KBQA_CONFIG, else ./configs/settings.yaml); KBQA_LLM__* env vars override it",
    )
    parser.add_argument("--host", default=None, help="interface to bind (default from settings: 127.0.0.1)")
    parser.add_argument("--port", type=int, default=None, help="port to listen on (default from settings)")
    parser.add_argument("--log-level", default="info", choices=["debug", "info", "warning", "error"])
    return parser


def settings_from(args: argparse.Namespace) -> Settings:
    return load_settings(args.config)


def configure_logging(log_level: str, settings: LoggingSettings | None = None) -> None:
    configure_log_format(log_level, settings)


def run_app(app: FastAPI, host: str, port: int, log_level: str, log_settings: LoggingSettings | None = None) -> None:
    configure_logging(log_level, log_settings)
    # timeout_graceful_shutdown: streams in flight get a moment to finish, then the process exits anyway.
    # log_config=None keeps the handler configured above; the app writes its own line per request.
    uvicorn.run(
        app,
        host=host,
        port=port,
        log_level=log_level,
        timeout_graceful_shutdown=5,
        log_config=None,
        access_log=False,
    )
