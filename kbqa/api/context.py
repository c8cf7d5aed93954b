"""Everything the routes share, built once per app from the settings the entry point loaded."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Annotated

from fastapi import Depends, Request
from prometheus_client import CollectorRegistry

from kbqa.api.metrics import APIMetrics
from kbqa.chat.file_chat import TempKBStore
from kbqa.chat.kb_chat import KBChat
from kbqa.chat.llm_chat import LLMChat
from kbqa.chat.prompts import PromptTemplates
from kbqa.chat.records import ChatRecords
from kbqa.chat.retrieval import Searcher, make_searcher
from kbqa.embeddings.pool import EmbedderPool
from kbqa.errors import InvalidOption
from kbqa.ingest.splitters import SplitConfig
from kbqa.jobs.manager import JobManager
from kbqa.jobs.store import JobStore
from kbqa.knowledge.service import KnowledgeBaseService
from kbqa.llm.client import AsyncLLMClient, LLMClient
from kbqa.settings import Settings

log = logging.getLogger(__name__)


@dataclass
class AppContext:
    settings: Settings
    service: KnowledgeBaseService
    jobs: JobManager
    searcher: Searcher
    prompts: PromptTemplates
    records: ChatRecords
    kb_chat: KBChat
    llm_chat: LLMChat
    temp_kbs: TempKBStore
    llm: AsyncLLMClient
    llm_sync: LLMClient
    query_embedders: EmbedderPool  # interactive embedding (queries, /other/embed_texts), apart from ingestion
    metrics: APIMetrics

    @classmethod
    def build(cls, settings: Settings, service: KnowledgeBaseService | None = None) -> AppContext:
        service = service or KnowledgeBaseService(settings)
        # A foreign or newer database raises here, before the app exists: the server refuses to start.
        migrated = service.create_tables()
        if migrated is not None:
            log.warning("%s Index the moved files with `python init_database.py -i`.", migrated.line())
        api = settings.api
        prompts = PromptTemplates(settings.resolve(api.prompts_file))
        prompts.check()  # a broken template the server uses by itself stops it here, named
        records = ChatRecords(service.db)
        # Queries get their own model instances so they never wait behind an ingestion batch (see _QueryView).
        query_embedders = EmbedderPool(settings.embedding) if api.separate_query_embedder else service.embedders
        metrics = APIMetrics(CollectorRegistry())
        searcher = metrics.timed_searcher(make_searcher(service, settings, query_embedders))
        llm = AsyncLLMClient(settings.llm.client)
        llm_sync = LLMClient(settings.llm.client)
        temp_root = settings.resolve(api.temp_dir) if api.temp_dir else settings.kb_root / ".kbqa-temp"
        temp_kbs = TempKBStore(
            temp_root,
            api.temp_kb_cache,
            query_embedders,
            settings.embedding.model,
            int(settings.kb.max_file_mb * (1 << 20)),
            settings.ocr,
        )
        temp_kbs.clean()
        jobs = JobManager(
            api.ingest_workers, api.max_queued_jobs, api.job_history, JobStore(service.db), metrics.job_event
        )
        metrics.watch_jobs(jobs)
        return cls(
            settings=settings,
            service=service,
            jobs=jobs,
            searcher=searcher,
            prompts=prompts,
            records=records,
            kb_chat=KBChat(api, prompts, searcher, llm, llm_sync),
            llm_chat=LLMChat(prompts, records, llm),
            temp_kbs=temp_kbs,
            llm=llm,
            llm_sync=llm_sync,
            query_embedders=query_embedders,
            metrics=metrics,
        )

    def split(
        self, chunk_size: int | None = None, chunk_overlap: int | None = None, zh_title_enhance: bool | None = None
    ) -> SplitConfig:
        """The split settings of a request, its empty values filled from the settings. Checked here, before any
        file is saved or any row touched: an overlap the splitter cannot use is the client's 400."""
        kb = self.settings.kb
        size = chunk_size or kb.chunk_size
        overlap = kb.chunk_overlap if chunk_overlap is None else chunk_overlap
        if overlap >= size:
            given = "chunk_overlap" if chunk_overlap is not None else "chunk_size"
            raise InvalidOption(
                f"chunk_overlap ({overlap}) must be smaller than chunk_size ({size}); {given} came from the request, "
                "the other from the server's settings"
            )
        return SplitConfig(
            size,
            overlap,
            kb.text_splitter,
            kb.zh_title_enhance if zh_title_enhance is None else zh_title_enhance,
            kb.min_chunk_chars,
            kb.table_header_repeat,
        )

    def public_url(self, request: Request) -> str:
        return (self.settings.api.base_url or str(request.base_url)).rstrip("/") + "/"

    async def aclose(self) -> None:
        self.jobs.shutdown()
        await self.llm.aclose()
        self.llm_sync.close()


def get_context(request: Request) -> AppContext:
    return request.app.state.ctx


Ctx = Annotated[AppContext, Depends(get_context)]
