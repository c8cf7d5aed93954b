"""Child processes of the launcher: start with logs, await readiness, stop in reverse order, leave nothing behind."""

from __future__ import annotations

import contextlib
import ctypes
import os
import signal
import socket
import subprocess
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import httpx

from kbqa.errors import KBQAError

# A probe gets a client and the service's base URL and answers True once the service is usable; it may raise httpx
# errors while the service is still coming up.
Probe = Callable[[httpx.Client, str], bool]

_PR_SET_PDEATHSIG = 1


class LaunchError(KBQAError):
    """A service could not be started or did not become ready; the message names it and its log file."""

    status_code = 500


@dataclass
class ServiceSpec:
    name: str
    argv: list[str]
    host: str
    port: int
    probe: Probe
    url: str
    env: dict[str, str] = field(default_factory=dict)


@dataclass
class Running:
    spec: ServiceSpec
    proc: subprocess.Popen[bytes]
    log: Path
    started: float


@dataclass
class Task:
    name: str
    proc: subprocess.Popen[bytes]
    log: Path


def connect_host(host: str) -> str:
    """Where a client reaches a server bound to ``host`` (a wildcard bind is reached on loopback)."""
    return {"0.0.0.0": "127.0.0.1", "": "127.0.0.1", "::": "::1"}.get(host, host)


def port_in_use(host: str, port: int) -> bool:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as s:
        # SO_REUSEADDR as uvicorn sets it: a port in TIME_WAIT after a clean stop is free to the server too.
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind((host, port))
        except OSError:
            return True
    return False


def _die_with_parent() -> None:
    # Runs in the child between fork and exec: if the launcher is killed (even with SIGKILL) the kernel sends the
    # child SIGTERM, so a crashed launcher leaves no orphan holding a port.
    with contextlib.suppress(OSError):
        ctypes.CDLL("libc.so.6", use_errno=True).prctl(_PR_SET_PDEATHSIG, signal.SIGTERM)


class Supervisor:
    def __init__(self, log_dir: Path, base_env: dict[str, str], say: Callable[[str], None] = print) -> None:
        self.log_dir = log_dir
        self.base_env = base_env
        self.say = say
        self.running: list[Running] = []
        self.tasks: list[Task] = []

    # Start ------------------------------------------------------------------------------------------------------
    def check_ports(self, specs: list[ServiceSpec]) -> None:
        busy = [f"{s.name} ({s.host}:{s.port})" for s in specs if port_in_use(s.host, s.port)]
        if busy:
            raise LaunchError(
                "port already in use for " + ", ".join(busy) + ": stop whatever holds it (an earlier kbqa?) "
                "or choose another port in configs/settings.yaml"
            )

    def _spawn(self, name: str, argv: list[str], env: dict[str, str]) -> tuple[subprocess.Popen[bytes], Path]:
        self.log_dir.mkdir(parents=True, exist_ok=True)
        log = self.log_dir / f"{name}.log"
        with log.open("ab") as out:
            out.write(f"\n===== {time.strftime('%Y-%m-%d %H:%M:%S')} {' '.join(argv)}\n".encode())
            out.flush()
            proc = subprocess.Popen(
                argv,
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=subprocess.STDOUT,
                env={**self.base_env, **env},
                # Own session: a Ctrl-C in the terminal reaches only the launcher, which then stops the children
                # in order instead of all of them dying at once mid-request.
                start_new_session=True,
                preexec_fn=_die_with_parent,  # only a prctl call: safe between fork and exec
            )
        return proc, log

    def start(self, spec: ServiceSpec) -> Running:
        proc, log = self._spawn(spec.name, spec.argv, spec.env)
        running = Running(spec, proc, log, time.monotonic())
        self.running.append(running)
        return running

    def start_task(self, name: str, argv: list[str]) -> Task:
        """A one-shot step (database set-up) that runs beside the services' start-up."""
        proc, log = self._spawn(name, argv, {})
        self.tasks.append(Task(name, proc, log))
        return self.tasks[-1]

    def finish_task(self, task: Task, timeout_s: float) -> None:
        try:
            code = task.proc.wait(timeout_s)
        except subprocess.TimeoutExpired as exc:
            raise LaunchError(f"{task.name} did not finish within {timeout_s:.0f} s; see {task.log}") from exc
        finally:
            if task.proc.poll() is not None and task in self.tasks:
                self.tasks.remove(task)
        if code != 0:
            raise LaunchError(f"{task.name} failed with code {code}; see {task.log}:\n{tail(task.log)}")

    def wait_ready(self, services: list[Running], timeout_s: float) -> None:
        """Poll every service's probe until all answer; fail fast when one exits, naming it and its log."""
        pending = list(services)
        deadline = time.monotonic() + timeout_s
        with httpx.Client(timeout=2.0, trust_env=False) as client:
            while pending:
                for r in list(pending):
                    if r.proc.poll() is not None:
                        raise LaunchError(
                            f"{r.spec.name} exited with code {r.proc.returncode} while starting; "
                            f"see {r.log}:\n{tail(r.log)}"
                        )
                    try:
                        ready = r.spec.probe(client, r.spec.url)
                    except (httpx.HTTPError, ValueError, KeyError):
                        ready = False
                    if ready:
                        pending.remove(r)
                        self.say(f"  {r.spec.name:<12} ready in {time.monotonic() - r.started:5.1f} s  {r.spec.url}")
                if pending and time.monotonic() > deadline:
                    names = ", ".join(f"{r.spec.name} (log: {r.log})" for r in pending)
                    raise LaunchError(f"not ready after {timeout_s:.0f} s: {names}")
                if pending:
                    time.sleep(0.2)

    def first_exited(self) -> Running | None:
        return next((r for r in self.running if r.proc.poll() is not None), None)

    # Stop -------------------------------------------------------------------------------------------------------
    def stop_all(self, grace_s: float) -> None:
        """Reverse start order: the UI and API go before the LLM services they call, the controller last."""
        for t in self.tasks:
            self._stop(t.name, t.proc, grace_s)
        for r in reversed(self.running):
            self._stop(r.spec.name, r.proc, grace_s)
        self.running.clear()
        self.tasks.clear()

    def _stop(self, name: str, proc: subprocess.Popen[bytes], grace_s: float) -> None:
        if proc.poll() is None:
            _signal_group(proc, signal.SIGTERM)
            try:
                proc.wait(grace_s)
            except subprocess.TimeoutExpired:
                self.say(f"  {name} did not stop within {grace_s:.0f} s; killing it")
                _signal_group(proc, signal.SIGKILL)
                proc.wait(10)
        # Anything the service itself started lives in its session (its group); none of it may survive.
        _signal_group(proc, signal.SIGKILL)


def _signal_group(proc: subprocess.Popen[bytes], sig: signal.Signals) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(proc.pid, sig)


def tail(path: Path, lines: int = 15) -> str:
    try:
        text = path.read_text(encoding="utf-8", errors="replace")
    except OSError:
        return ""
    return "\n".join("    " + line for line in text.splitlines()[-lines:])
