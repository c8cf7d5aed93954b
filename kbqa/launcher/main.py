"""``python startup.py``: start kbqa's services as child processes, wait until they are ready, stop them cleanly.

Flags follow Langchain-Chatchat 0.2's startup.py. Every service logs to ``<log_dir>/<service>.log``; a service that
exits or misses the readiness deadline is named with its log file, and everything started so far is stopped.
Ctrl-C or SIGTERM stops the services in reverse start order, each with a grace period, then kills what is left.
"""

from __future__ import annotations

import argparse
import os
import signal
import sys
import time
from collections.abc import Sequence
from types import FrameType

from kbqa.errors import KBQAError
from kbqa.launcher.first_run import init_argv, prepare_database
from kbqa.launcher.services import ALL_SERVICES, LLM_SERVICES, Selection, check_worker_model, plan
from kbqa.launcher.supervisor import LaunchError, Running, Supervisor
from kbqa.settings import Settings, find_config_file, load_settings


class _Stop(Exception):
    """SIGINT or SIGTERM, turned into an exception so every stop runs the same clean-up path."""


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="startup.py", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    g = p.add_argument_group("what to start (Chatchat's flags; several may be combined)")
    g.add_argument("-a", "--all-webui", action="store_true", help="everything: LLM services, API server, web UI")
    g.add_argument("--all-api", action="store_true", help="everything but the web UI")
    g.add_argument("--llm-api", action="store_true", help="controller + model worker + OpenAI-compatible server")
    g.add_argument("-c", "--controller", action="store_true", help="the LLM controller (21001)")
    g.add_argument("-o", "--openai-api", action="store_true", help="the OpenAI-compatible server (8000)")
    g.add_argument("-m", "--model-worker", action="store_true", help="the model worker (21002)")
    g.add_argument("--api", action="store_true", help="the knowledge-base API server (7861)")
    g.add_argument("-w", "--webui", action="store_true", help="the Streamlit web UI (8501)")
    m = p.add_argument_group("model")
    m.add_argument("-n", "--model-name", help="name the worker serves its model under, and the model the API asks for")
    m.add_argument(
        "--model-path",
        help="catalog model name (kbqa models list) or local Hugging Face folder or .gguf file "
        "(default: the bundled SmolLM2-135M)",
    )
    m.add_argument("--device", choices=["auto", "cpu", "cuda"], help="where the model worker runs its model")
    m.add_argument(
        "--openai-api-base",
        metavar="URL",
        help="use this external OpenAI-compatible endpoint (vLLM, Ollama, a cloud API: e.g. http://host:8000/v1) "
        "instead of the local controller, worker and OpenAI server",
    )
    m.add_argument("--openai-api-key", help="bearer key for --openai-api-base")
    p.add_argument("--config", help="settings YAML (default: $KBQA_CONFIG or ./configs/settings.yaml)")
    p.add_argument(
        "--ready-timeout", type=float, help="seconds to wait for readiness (default launcher.ready_timeout_s)"
    )
    p.add_argument("-q", "--quiet", action="store_true", help="print only the ready summary and errors")
    return p


def selection_from(args: argparse.Namespace) -> Selection:
    chosen: set[str] = set()
    if args.all_webui:
        chosen.update(ALL_SERVICES)
    if args.all_api:
        chosen.update((*LLM_SERVICES, "api"))
    if args.llm_api:
        chosen.update(LLM_SERVICES)
    for flag, name in (
        ("controller", "controller"),
        ("openai_api", "openai_api"),
        ("model_worker", "model_worker"),
        ("api", "api"),
        ("webui", "webui"),
    ):
        if getattr(args, flag):
            chosen.add(name)
    if args.openai_api_base:
        chosen.difference_update(LLM_SERVICES)
    return Selection(
        services=frozenset(chosen),
        model_name=args.model_name,
        model_path=args.model_path,
        device=args.device,
        openai_api_base=args.openai_api_base,
        openai_api_key=args.openai_api_key,
    )


def child_env() -> dict[str, str]:
    env = dict(os.environ)
    # Logs reach the files as they happen, not when a buffer fills; tokenizers' own threads would fight the
    # services' thread pools on a small machine.
    env.setdefault("PYTHONUNBUFFERED", "1")
    env.setdefault("TOKENIZERS_PARALLELISM", "false")
    return env


def run(settings: Settings, selection: Selection, config_file: str | None, timeout_s: float, quiet: bool) -> int:
    say = (lambda _msg: None) if quiet else print
    specs = plan(settings, selection, config_file)
    sup = Supervisor(settings.log_dir, child_env(), say=say)
    t0 = time.monotonic()
    try:
        sup.check_ports(specs)
        check_worker_model(settings, selection)
        say(f"kbqa: starting {', '.join(s.name for s in specs)} (logs in {settings.log_dir})")
        init = None
        if "api" in selection.services:
            first = prepare_database(settings, settings.launcher.init_samples)
            if first.migrated is not None:
                print(f"  {first.migrated}", flush=True)
            if first.to_index:
                kbs = "knowledge base" if len(first.to_index) == 1 else "knowledge bases"
                say(f"  first run: indexing the {', '.join(first.to_index)} {kbs} (logs/init.log)")
                init = sup.start_task("init", init_argv(config_file, first.to_index))
        by_name = {s.name: s for s in specs}
        started: list[Running] = []
        if "controller" in by_name:
            # Workers register at start-up, so the controller has to be listening first.
            started.append(sup.start(by_name.pop("controller")))
            sup.wait_ready(started[-1:], timeout_s)
        for name in ("model_worker", "openai_api"):
            if name in by_name:
                started.append(sup.start(by_name.pop(name)))
        if init is not None:
            sup.finish_task(init, timeout_s)
        started += [sup.start(s) for s in by_name.values()]
        sup.wait_ready([r for r in started if r.spec.name != "controller"], timeout_s)
        print(_summary(sup.running, time.monotonic() - t0), flush=True)
        while True:
            gone = sup.first_exited()
            if gone is not None:
                raise LaunchError(f"{gone.spec.name} exited with code {gone.proc.returncode}; see {gone.log}")
            time.sleep(0.5)
    except (KeyboardInterrupt, _Stop):
        print("kbqa: stopping...", flush=True)
        return 0
    except KBQAError as exc:
        print(f"kbqa: error: {exc.message}", file=sys.stderr, flush=True)
        return 1
    finally:
        # Further Ctrl-Cs must not interrupt the orderly stop and leave children behind.
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        sup.stop_all(settings.launcher.stop_grace_s)
        say("kbqa: all services stopped")


def _summary(running: list[Running], elapsed: float) -> str:
    lines = [f"kbqa: ready in {elapsed:.1f} s"]
    labels = {
        "controller": "LLM controller",
        "model_worker": "model worker",
        "openai_api": "OpenAI API",
        "api": "API server (docs at /docs)",
        "webui": "web UI",
    }
    lines += [f"  {labels.get(r.spec.name, r.spec.name):<27} {r.spec.url}" for r in running]
    lines.append("Press Ctrl-C to stop.")
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    selection = selection_from(args)
    if not selection.services:
        parser.error("nothing to start: use -a (everything), --all-api, --llm-api, --api, -w ... (see --help)")

    def on_term(_signo: int, _frame: FrameType | None) -> None:
        raise _Stop

    # SIGINT too: a shell starts background jobs with SIGINT ignored, and Python then installs no handler of its own.
    signal.signal(signal.SIGTERM, on_term)
    signal.signal(signal.SIGINT, on_term)
    try:
        settings = load_settings(args.config)
    except KBQAError as exc:
        print(f"kbqa: error: {exc.message}", file=sys.stderr)
        return 1
    found = find_config_file(args.config)
    config_file = str(found.resolve()) if found is not None else None
    timeout_s = args.ready_timeout or settings.launcher.ready_timeout_s
    return run(settings, selection, config_file, timeout_s, args.quiet)
