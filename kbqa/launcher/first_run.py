"""The first start of a fresh checkout (create the database and index the ``samples`` knowledge base) or of a
Langchain-Chatchat 0.2 folder (migrate its database, then index the moved files)."""

from __future__ import annotations

import sys
from dataclasses import dataclass, field

from kbqa.settings import Settings

SAMPLES_KB = "samples"


@dataclass(slots=True)
class FirstRun:
    migrated: str | None = None  # the migration's summary line, when one ran now
    to_index: list[str] = field(default_factory=list)  # knowledge bases the init task indexes


def prepare_database(settings: Settings, init_samples: bool) -> FirstRun:
    """Check the database (a foreign or newer one raises, unchanged), migrate a Chatchat one, and name the knowledge
    bases with files to index: the samples on a fresh checkout, and those with files moved from Chatchat."""
    # Imported here: the launcher itself should not pay for the service's imports when there is nothing to do.
    from kbqa.knowledge.service import KnowledgeBaseService

    service = KnowledgeBaseService(settings)
    try:
        migrated = service.create_tables()
        result = FirstRun(migrated.line() if migrated is not None else None)
        content = settings.kb_root / SAMPLES_KB / "content"
        if init_samples and content.is_dir() and any(content.iterdir()) and not service.exists(SAMPLES_KB):
            result.to_index.append(SAMPLES_KB)
        if migrated is not None:
            result.to_index += [kb for kb in migrated.kbs if kb not in result.to_index and service.files_to_index(kb)]
        return result
    finally:
        service.close()


def init_argv(config_file: str | None, kbs: list[str]) -> list[str]:
    common = ["--config", config_file] if config_file else []
    return [sys.executable, "-m", "kbqa.cli", *common, "init-db", "--increment", "--kb-name", *kbs]
