"""Start the web UI: the ``streamlit run`` command line (shared with the launcher) and ``python -m kbqa.webui``.

Streamlit's own options go before the script, ours (``--config``, ``--api-url``) after ``--``; the script reads them
with :func:`kbqa.webui.app.parse_args`.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Sequence
from pathlib import Path

# Inside the package, so an installed kbqa (without the repository's top-level webui.py) can run the UI too.
SCRIPT = Path(__file__).resolve().with_name("streamlit_app.py")


def streamlit_argv(
    host: str,
    port: int,
    *,
    api_url: str | None = None,
    extra: Sequence[str] = (),
    python: str = sys.executable,
    script: Path | str = SCRIPT,
) -> list[str]:
    """The command that serves the UI on ``host:port``; ``extra`` goes to the script (e.g. ``--config FILE``)."""
    script_args = [*(["--api-url", api_url] if api_url else []), *extra]
    return [
        python,
        "-m",
        "streamlit",
        "run",
        str(script),
        "--server.address",
        host,
        "--server.port",
        str(port),
        # No browser tab to open on a server, and no e-mail prompt on first run.
        "--server.headless",
        "true",
        # Offline-first: Streamlit's usage statistics would be sent from the browser to Streamlit's servers.
        "--browser.gatherUsageStats",
        "false",
        # A deployed UI does not reload on source changes; polling the package files costs CPU.
        "--server.fileWatcherType",
        "none",
        # Hide the developer menu (its "Deploy" entry points at Streamlit's cloud).
        "--client.toolbarMode",
        "minimal",
        *(["--", *script_args] if script_args else []),
    ]


def main(argv: Sequence[str] | None = None) -> None:
    from kbqa.settings import load_settings

    parser = argparse.ArgumentParser(prog="python -m kbqa.webui", description="Serve the kbqa web UI (Streamlit).")
    parser.add_argument("--config", help="settings YAML (default $KBQA_CONFIG or ./configs/settings.yaml)")
    parser.add_argument("--host", help="interface to bind (default webui.host: 127.0.0.1)")
    parser.add_argument("--port", type=int, help="port (default webui.port: 8501)")
    parser.add_argument("--api-url", help="API server to talk to (default webui.api_url, else api.host:api.port)")
    args = parser.parse_args(argv)
    settings = load_settings(args.config)  # fails here, with a clear message, on a bad settings file
    extra = ["--config", str(Path(args.config).resolve())] if args.config else []
    command = streamlit_argv(
        args.host or settings.webui.host, args.port or settings.webui.port, api_url=args.api_url, extra=extra
    )
    # Become the Streamlit server: signals (Ctrl-C, a supervisor's SIGTERM) then reach it directly.
    os.execv(command[0], command)
