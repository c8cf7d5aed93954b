"""A throw-away kbqa checkout for launcher tests: its own settings file with free ports, the prompts, and a copy of
the samples knowledge base's content (no database yet, as on a fresh clone)."""

from __future__ import annotations

import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import yaml

REPO = Path(__file__).resolve().parents[2]
STARTUP = REPO / "startup.py"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class LaunchRoot:
    root: Path
    config: Path
    ports: dict[str, int]

    @property
    def api_url(self) -> str:
        return f"http://127.0.0.1:{self.ports['api']}"

    def start(self, *flags: str, sigint_ignored: bool = False) -> subprocess.Popen[str]:
        """``sigint_ignored``: started as a shell starts a background job (`startup.py -a &`), SIGINT ignored."""
        env = {**os.environ, "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1"}
        env.pop("KBQA_CONFIG", None)
        return subprocess.Popen(
            [sys.executable, str(STARTUP), "--config", str(self.config), *flags],
            cwd=self.root,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            env=env,
            preexec_fn=(lambda: signal.signal(signal.SIGINT, signal.SIG_IGN)) if sigint_ignored else None,
        )


def make_root(tmp: Path, samples: bool = True) -> LaunchRoot:
    (tmp / "configs").mkdir(parents=True)
    shutil.copy(REPO / "configs" / "prompts.yaml", tmp / "configs" / "prompts.yaml")
    if samples:
        shutil.copytree(REPO / "knowledge_base" / "samples" / "content", tmp / "knowledge_base" / "samples" / "content")
    ports = {name: free_port() for name in ("controller", "worker", "openai", "api", "webui")}
    config = {
        "llm": {
            "controller": {"port": ports["controller"]},
            "worker": {"port": ports["worker"], "max_batch_size": 4},
            "openai_server": {"port": ports["openai"]},
            # Tiny answers: the bundled 135M model decodes ~10 tokens/s on a CI core.
            "client": {"max_tokens": 16, "max_retries": 0},
        },
        "api": {"port": ports["api"], "separate_query_embedder": False},
        "webui": {"port": ports["webui"]},
        "launcher": {"ready_timeout_s": 240, "stop_grace_s": 10},
    }
    path = tmp / "configs" / "settings.yaml"
    path.write_text(yaml.safe_dump(config))
    return LaunchRoot(tmp, path, ports)


def read_until(proc: subprocess.Popen[str], pattern: str, timeout: float) -> str:
    """Launcher output up to the first line matching ``pattern``; fails with everything read if it exits first."""
    assert proc.stdout is not None
    seen: list[str] = []
    deadline = time.monotonic() + timeout
    os.set_blocking(proc.stdout.fileno(), False)
    while time.monotonic() < deadline:
        line = proc.stdout.readline()
        if line:
            seen.append(line)
            if re.search(pattern, line):
                return "".join(seen)
            continue
        if proc.poll() is not None:
            break
        time.sleep(0.1)
    raise AssertionError(f"launcher never printed {pattern!r}; output:\n{''.join(seen)}")


def children_of(pid: int) -> set[int]:
    """Every live descendant of ``pid`` (read from /proc: Linux only, like the launcher's PDEATHSIG)."""
    parents: dict[int, int] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                stat = (entry / "stat").read_text()
            except OSError:
                continue
            # The command name may hold spaces and parentheses; the fields after its last ')' are fixed.
            fields = stat[stat.rindex(")") + 2 :].split()
            parents[int(entry.name)] = int(fields[1])
    found: set[int] = set()
    frontier = [pid]
    while frontier:
        p = frontier.pop()
        kids = [c for c, pp in parents.items() if pp == p]
        found.update(kids)
        frontier.extend(kids)
    return found


def alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"


def port_free(port: int) -> bool:
    with socket.socket() as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def stop(proc: subprocess.Popen[str], sig: int = signal.SIGINT, timeout: float = 60) -> str:
    proc.send_signal(sig)
    try:
        out, _ = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        out, _ = proc.communicate()
        raise AssertionError(f"launcher did not exit within {timeout} s after signal {sig}:\n{out}") from None
    return out or ""
