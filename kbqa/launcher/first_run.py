"""The first start of a fresh checkout: create the database and index the ``samples`` knowledge base."""

from __future__ import annotations

import sys

from kbqa.settings import Settings

SAMPLES_KB = "samples"


def samples_missing(settings: Settings) -> bool:
    """True when ``knowledge_base/samples/content`` ships files but no knowledge base of that name is registered."""
    content = settings.kb_root / SAMPLES_KB / "content"
    if not content.is_dir() or not any(content.iterdir()):
        return False
    # Imported here: the launcher itself should not pay for the service's imports when there is nothing to do.
    from kbqa.knowledge.service import KnowledgeBaseService

    service = KnowledgeBaseService(settings)
    try:
        service.create_tables()
        return not service.exists(SAMPLES_KB)
    finally:
        service.close()


def init_samples_argv(config_file: str | None) -> list[str]:
    common = ["--config", config_file] if config_file else []
    return [sys.executable, "-m", "kbqa.cli", *common, "init-db", "--increment", "--kb-name", SAMPLES_KB]
