"""What the three LLM entry points share: common flags, settings loading, and running uvicorn."""

from __future__ import annotations

import argparse
import logging
from pathlib import Path

import uvicorn
from fastapi import FastAPI

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


def configure_logging(log_level: str) -> None:
    logging.basicConfig(level=log_level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s")


def run_app(app: FastAPI, host: str, port: int, log_level: str) -> None:
    configure_logging(log_level)
    # timeout_graceful_shutdown: streams in flight get a moment to finish, then the process exits anyway.
    uvicorn.run(app, host=host, port=port, log_level=log_level, timeout_graceful_shutdown=5)
