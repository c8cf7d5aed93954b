"""The LLM services started as real subprocesses on loopback, for the acceptance tests."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import httpx

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

CHAT_MODEL = "SmolLM2-135M-Instruct"
EMBED_MODEL = "all-MiniLM-L6-v2"
API_KEY = "test-key-123"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class Service:
    name: str
    proc: subprocess.Popen[bytes]
    url: str
    log: Path

    def kill(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGKILL)
            self.proc.wait(10)

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(15)
            except subprocess.TimeoutExpired:
                self.kill()


@dataclass
class Stack:
    """Processes started for a test module; everything is stopped at teardown."""

    tmp: Path
    services: list[Service] = field(default_factory=list)

    def start(self, name: str, module: str, port: int, *args: str) -> Service:
        log = self.tmp / f"{name}.log"
        env = {**os.environ, "KBQA_CONFIG": str(self.tmp / "none.yaml")}
        (self.tmp / "none.yaml").write_text("{}\n")
        proc = subprocess.Popen(
            [sys.executable, "-m", module, "--port", str(port), *args],
            stdout=log.open("wb"),
            stderr=subprocess.STDOUT,
            env=env,
        )
        service = Service(name, proc, f"http://127.0.0.1:{port}", log)
        self.services.append(service)
        return service

    def controller(self, *args: str) -> Service:
        return self.start("controller", "kbqa.llm.controller", free_port(), *args)

    def worker(self, name: str, controller: Service, *args: str) -> Service:
        return self.start(name, "kbqa.llm.worker", free_port(), "--controller-address", controller.url, *args)

    def openai_server(self, controller: Service, *args: str) -> Service:
        return self.start(
            "openai", "kbqa.llm.openai_server", free_port(), "--controller-address", controller.url, *args
        )

    def wait_for_models(self, controller: Service, models: set[str], workers: int, timeout: float = 180) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            for s in self.services:
                if s.proc.poll() is not None:
                    raise RuntimeError(f"{s.name} exited early:\n{s.log.read_text()[-3000:]}")
            try:
                data = httpx.get(f"{controller.url}/list_workers", timeout=2).json()
                names = {m for w in data["workers"] for m in w["model_names"]}
                if models <= names and len(data["workers"]) >= workers:
                    return
            except httpx.HTTPError:
                pass
            time.sleep(0.3)
        raise TimeoutError("services did not come up:\n" + "\n".join(s.log.read_text()[-2000:] for s in self.services))

    def wait_http(
        self, service: Service, path: str = "/health", timeout: float = 60, headers: dict | None = None
    ) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if service.proc.poll() is not None:
                raise RuntimeError(f"{service.name} exited early:\n{service.log.read_text()[-3000:]}")
            try:
                if httpx.get(service.url + path, timeout=2, headers=headers).status_code < 500:
                    return
            except httpx.HTTPError:
                pass
            time.sleep(0.2)
        raise TimeoutError(f"{service.name} did not answer:\n{service.log.read_text()[-3000:]}")

    def stop_all(self) -> None:
        for s in reversed(self.services):
            s.stop()


@contextmanager
def chat_stack(
    tmp: Path, *openai_args: str, api_key: str | None = None, max_batch_size: int = 4
) -> Iterator[dict[str, Service]]:
    """Controller + the bundled chat model's worker + the OpenAI server (with ``api_key`` when given), ready."""
    stack = Stack(tmp)
    try:
        controller = stack.controller()
        stack.wait_http(controller)
        worker = stack.worker("chat-worker", controller, "--max-batch-size", str(max_batch_size))
        openai = stack.openai_server(controller, *(["--api-keys", api_key] if api_key else []), *openai_args)
        stack.wait_for_models(controller, {CHAT_MODEL}, workers=1)
        stack.wait_http(openai, headers={"Authorization": f"Bearer {api_key}"} if api_key else None)
        yield {"controller": controller, "worker": worker, "openai": openai}
    finally:
        stack.stop_all()
