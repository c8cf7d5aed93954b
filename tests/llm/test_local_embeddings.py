"""The OpenAI server embeds with the knowledge bases' own model in-process: /v1/embeddings answers in the default
stack, where no embedding worker runs."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import httpx
import numpy as np
import pytest
from llm_topology import Service, Stack, free_port

from kbqa.embeddings.pool import EmbedderPool
from kbqa.settings import EmbeddingSettings

MODEL = "multilingual-e5-small"
TEXTS = ["The web UI listens on port 8501.", "知识库的元数据保存在 SQLite 数据库里。"]


@pytest.fixture(scope="module")
def servers(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Service]]:
    """A controller with no worker at all, our server with the default settings, and one with in-process
    embedding turned off."""
    st = Stack(tmp_path_factory.mktemp("local-embed"))
    try:
        controller = st.controller()
        st.wait_http(controller)
        default = st.openai_server(controller)
        off = st.start(
            "openai-off",
            "kbqa.llm.openai_server",
            free_port(),
            "--controller-address",
            controller.url,
            "--embedding-models",
            "",
        )
        st.wait_http(default)
        st.wait_http(off)
        yield {"default": default, "off": off}
    finally:
        st.stop_all()


def test_default_server_lists_and_serves_the_kb_embedder(servers: dict[str, Service]) -> None:
    url = servers["default"].url
    ids = {m["id"] for m in httpx.get(f"{url}/v1/models", timeout=10).json()["data"]}
    assert MODEL in ids
    r = httpx.post(f"{url}/v1/embeddings", json={"model": MODEL, "input": TEXTS}, timeout=60)
    assert r.status_code == 200, r.text
    body = r.json()
    got = np.array([d["embedding"] for d in body["data"]], dtype=np.float32)
    embedder = EmbedderPool(EmbeddingSettings()).get(MODEL)
    want = embedder.embed_documents(TEXTS)
    assert got.shape == (2, embedder.dim)
    assert np.allclose(got, want, atol=1e-5)  # the vectors the knowledge bases are indexed with
    assert body["usage"]["prompt_tokens"] == embedder.token_count(TEXTS) > len(TEXTS)


def test_turned_off_it_is_neither_listed_nor_served(servers: dict[str, Service]) -> None:
    url = servers["off"].url
    assert MODEL not in {m["id"] for m in httpx.get(f"{url}/v1/models", timeout=10).json()["data"]}
    r = httpx.post(f"{url}/v1/embeddings", json={"model": MODEL, "input": ["x"]}, timeout=30)
    assert r.status_code == 404 and r.json()["error"]["param"] == "model"


def test_a_name_not_in_the_embedding_models_is_refused_at_start(tmp_path: Path) -> None:
    (tmp_path / "none.yaml").write_text("{}\n")
    proc = subprocess.run(
        [sys.executable, "-m", "kbqa.llm.openai_server", "--embedding-models", "/etc"],
        capture_output=True,
        text=True,
        timeout=60,
        env={"KBQA_CONFIG": str(tmp_path / "none.yaml"), "PATH": "/usr/bin:/bin", "HF_HUB_OFFLINE": "1"},
    )
    assert proc.returncode == 2
    assert "not in embedding.models" in proc.stderr and "Traceback" not in proc.stderr
