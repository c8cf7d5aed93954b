"""Shared fixtures: every test runs offline against real components in a temporary knowledge-base root."""

from __future__ import annotations

import os

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
os.environ.setdefault("UNSTRUCTURED_DISABLE_NOTICE", "1")

from collections.abc import Iterator
from pathlib import Path

import pytest

from kbqa.embeddings.pool import EmbedderPool
from kbqa.knowledge.service import KnowledgeBaseService
from kbqa.settings import EmbeddingSettings, Settings, load_settings

REPO_ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="session")
def embedders() -> EmbedderPool:
    """One pool per test session: the bundled models load once."""
    return EmbedderPool(EmbeddingSettings())


def make_settings(root: Path, **overrides: object) -> Settings:
    kb = {"chunk_size": 250, "chunk_overlap": 50, **overrides.pop("kb", {})}  # type: ignore[dict-item]
    return load_settings(
        REPO_ROOT / "configs" / "settings.yaml", root=str(root), paths={"kb_root": str(root / "kb")}, kb=kb, **overrides
    )


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    return make_settings(tmp_path)


@pytest.fixture
def service(settings: Settings, embedders: EmbedderPool) -> Iterator[KnowledgeBaseService]:
    svc = KnowledgeBaseService(settings, embedders=embedders)
    svc.create_tables()
    yield svc
    svc.close()
