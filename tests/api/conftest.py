"""Fixtures for the API tests: the real app on a real uvicorn server on a free loopback port, real models, and (for
the chat tests) the real LLM stack from kbqa.llm as subprocesses."""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import pytest
import uvicorn

from kbqa.api.app import create_app
from kbqa.embeddings.pool import EmbedderPool
from kbqa.knowledge.service import KnowledgeBaseService
from kbqa.settings import Settings
from tests.conftest import make_settings
from tests.llm.llm_topology import chat_stack, free_port

os.environ.setdefault("HF_HUB_OFFLINE", "1")


class LiveServer:
    """A uvicorn server running ``create_app(settings)`` in a thread of this process."""

    def __init__(self, settings: Settings, embedders: EmbedderPool, port: int | None = None) -> None:
        self.settings = settings
        self.service = KnowledgeBaseService(settings, embedders=embedders)
        self.app = create_app(settings, self.service)
        self.port = port or free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        config = uvicorn.Config(self.app, host="127.0.0.1", port=self.port, log_level="warning", lifespan="on")
        self.server = uvicorn.Server(config)
        self.thread = threading.Thread(target=self.server.run, daemon=True)

    def start(self) -> LiveServer:
        self.thread.start()
        deadline = time.monotonic() + 30
        while not self.server.started:
            if time.monotonic() > deadline or not self.thread.is_alive():
                raise RuntimeError("API server did not start")
            time.sleep(0.05)
        return self

    def client(self, **kwargs: object) -> httpx.Client:
        return httpx.Client(base_url=self.url, timeout=300, **kwargs)  # type: ignore[arg-type]

    def stop(self) -> None:
        self.server.should_exit = True
        self.thread.join(30)
        self.service.close()


ServerFactory = Callable[..., LiveServer]


@pytest.fixture(scope="module")
def server_factory(tmp_path_factory: pytest.TempPathFactory, embedders: EmbedderPool) -> Iterator[ServerFactory]:
    started: list[LiveServer] = []

    def make(root: Path | None = None, port: int | None = None, **overrides: object) -> LiveServer:
        root = root or tmp_path_factory.mktemp("api")
        server = LiveServer(make_settings(root, **overrides), embedders, port).start()
        started.append(server)
        return server

    yield make
    for server in reversed(started):
        server.stop()


@pytest.fixture(scope="module")
def llm_stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """Controller + the bundled SmolLM2 worker + the OpenAI-compatible server; yields the client base URL.
    Module-scoped: only the chat module needs it, and the model's memory is given back when that module ends."""
    with chat_stack(tmp_path_factory.mktemp("llm-stack"), max_batch_size=8) as services:
        yield f"{services['openai'].url}/v1"


def llm_overrides(base_url: str) -> dict[str, object]:
    # Tiny answers: the 135M model decodes ~8 tokens/s on a CI core.
    return {
        "llm": {"client": {"base_url": base_url, "max_tokens": 12, "max_retries": 0, "timeout_s": 120}},
        "api": {"kb_chat_max_tokens": 12},
    }
