"""Time from ``python startup.py -a`` to "ready" (every service answering its readiness check), cold and warm.

- cold: a fresh project root (no database, samples knowledge base not indexed yet) and an empty model cache, so the
  bundled GGUF chat model is converted once and the samples are indexed during start-up — a user's first run;
- warm: the same root started again (database, index and converted model in place), ``--warm-runs`` times.

Every run uses free ports and its own settings file; the launcher's own "ready in" figure and each service's are
parsed from its output. The OS page cache is not dropped between runs (that needs privileges CI does not have), so
"cold" is cold for kbqa's files and caches, not for the Python libraries on disk.

    python benchmarks/startup_time.py [--warm-runs 3] [--write-results]
"""

from __future__ import annotations

import argparse
import os
import platform
import re
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import yaml

sys.path.insert(0, str(Path(__file__).resolve().parent))

from results_file import replace_section

REPO = Path(__file__).resolve().parent.parent
SECTION = "## Start-up time"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def make_root(tmp: Path) -> Path:
    (tmp / "configs").mkdir(parents=True)
    shutil.copy(REPO / "configs" / "prompts.yaml", tmp / "configs" / "prompts.yaml")
    shutil.copytree(REPO / "knowledge_base" / "samples" / "content", tmp / "knowledge_base" / "samples" / "content")
    config = {
        "llm": {
            "controller": {"port": free_port()},
            "worker": {"port": free_port(), "model_cache_dir": str(tmp / "model-cache")},
            "openai_server": {"port": free_port()},
        },
        "api": {"port": free_port()},
        "webui": {"port": free_port()},
    }
    (tmp / "configs" / "settings.yaml").write_text(yaml.safe_dump(config))
    return tmp / "configs" / "settings.yaml"


def start_once(config: Path) -> dict[str, float]:
    """Launch, wait for the ready summary, stop with SIGINT; returns the launcher's and each service's seconds."""
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1"}
    t0 = time.monotonic()
    proc = subprocess.Popen(
        [sys.executable, str(REPO / "startup.py"), "-a", "--config", str(config)],
        cwd=config.parent.parent,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        env=env,
    )
    assert proc.stdout is not None
    figures: dict[str, float] = {}
    lines: list[str] = []
    for line in proc.stdout:
        lines.append(line)
        if m := re.match(r"\s+(\w+)\s+ready in\s+([\d.]+) s", line):
            figures[m.group(1)] = float(m.group(2))
        if m := re.match(r"kbqa: ready in ([\d.]+) s", line):
            figures["launcher"] = float(m.group(1))
            figures["wall"] = time.monotonic() - t0
            break
    else:
        raise SystemExit("startup.py exited before it was ready:\n" + "".join(lines))
    proc.send_signal(signal.SIGINT)
    t_stop = time.monotonic()
    proc.communicate(timeout=120)
    figures["stop"] = time.monotonic() - t_stop
    return figures


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--warm-runs", type=int, default=3)
    parser.add_argument("--write-results", action="store_true", help=f"replace the '{SECTION}' section of RESULTS.md")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="kbqa-startup-") as tmp:
        config = make_root(Path(tmp))
        cold = start_once(config)
        print(f"cold: {cold}", flush=True)
        warm_runs = []
        for i in range(args.warm_runs):
            warm_runs.append(start_once(config))
            print(f"warm {i + 1}: {warm_runs[-1]}", flush=True)
    warm = {k: statistics.median(r[k] for r in warm_runs) for k in warm_runs[0]}
    machine = f"{platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}"
    services = [k for k in ("controller", "model_worker", "openai_api", "api", "webui") if k in cold]
    print(f"\n{'':14}{'cold':>8}{'warm':>8}")
    for key in ("wall", "launcher", *services, "stop"):
        print(f"{key:14}{cold[key]:8.1f}{warm[key]:8.1f}")
    print(f"targets: cold <= 60 s ({cold['wall']:.1f}), warm <= 20 s ({warm['wall']:.1f})")
    if args.write_results:
        write_results(cold, warm, services, args.warm_runs, machine)


def write_results(cold: dict[str, float], warm: dict[str, float], services: list[str], runs: int, machine: str) -> None:
    rows = "\n".join(f"| {k} ready | {cold[k]:.1f} | {warm[k]:.1f} |" for k in services)
    section = f"""{SECTION}

`python benchmarks/startup_time.py --warm-runs {runs} --write-results` — `python startup.py -a` on the bundled models
until every service answers its readiness check ({machine}, CPU only). Cold: fresh project root and model cache
(GGUF converted, 12 sample documents indexed during start-up); warm: median of {runs} restarts of the same root.
Per-service figures count from each service's own start (the controller first, then the rest in parallel).

| seconds | cold | warm |
|---|---:|---:|
| **command to ready (wall)** | **{cold["wall"]:.1f}** | **{warm["wall"]:.1f}** |
{rows}
| Ctrl-C to every process gone | {cold["stop"]:.1f} | {warm["stop"]:.1f} |

Targets: cold <= 60 s, warm <= 20 s. The OS page cache was not dropped between runs.
"""
    replace_section(SECTION, section)


if __name__ == "__main__":
    main()
