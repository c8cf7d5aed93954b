"""SIGKILL an ingesting process at different moments; every KB must be consistent after the next open."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import numpy as np
import pytest
from sqlalchemy import func, select, text

from kbqa.db import fulltext
from kbqa.db.models import Chunk, KnowledgeBase, KnowledgeFile
from kbqa.embeddings.pool import EmbedderPool
from kbqa.knowledge.service import KnowledgeBaseService
from tests.conftest import REPO_ROOT, make_settings

WORKER = textwrap.dedent(
    """
    import sys
    from pathlib import Path
    from kbqa.knowledge.service import KnowledgeBaseService
    from tests.conftest import make_settings

    root = Path(sys.argv[1])
    only = sys.argv[2:] or None
    svc = KnowledgeBaseService(make_settings(root, kb={"commit_every": 1, "parse_workers": 1}))
    svc.create_tables()
    if not svc.exists("crash"):
        try:
            svc.create_kb("crash")
        except Exception:  # the other writer created it first
            pass
    def progress(event):
        print("COMMITTED", event["file"], flush=True)
    svc.ingest("crash", only, progress=progress)
    print("DONE", flush=True)
    """
)


def _write_corpus(content: Path, n: int) -> None:
    content.mkdir(parents=True, exist_ok=True)
    for i in range(n):
        body = f"Document {i} is about topic number {i}. " * 8 + f"第{i}号文档讨论第{i}个主题。" * 6
        (content / f"doc{i:03d}.txt").write_text(body, encoding="utf-8")


def _check_consistent(root: Path, embedders: EmbedderPool, committed: list[str]) -> int:
    svc = KnowledgeBaseService(make_settings(root), embedders=embedders)
    svc.create_tables()
    if not svc.exists("crash"):  # killed before the KB was even created
        assert not committed
        return 0
    with svc.db.read() as s:
        files = {f.path: f for f in s.scalars(select(KnowledgeFile))}
        per_file = dict(s.execute(select(Chunk.file_id, func.count()).group_by(Chunk.file_id)).all())
        chunk_ids = set(s.scalars(select(Chunk.id)))
    for path in committed:  # nothing committed before the kill is lost
        assert path in files, f"{path} was committed but is gone"
    for f in files.values():  # every file is whole: its rows match its count
        assert f.status == "ready"
        assert per_file.get(f.id, 0) == f.chunk_count > 0
    assert set(per_file) <= {f.id for f in files.values()}
    with svc.db.read() as s:  # the keyword index holds exactly the committed chunks too
        kb_id = s.scalars(select(KnowledgeBase.id).where(KnowledgeBase.name == "crash")).one()
        fts_ids = (
            set(s.scalars(text(f"SELECT rowid FROM {fulltext.table(kb_id)}"))) if fulltext.count(s, kb_id) else set()
        )
    assert fts_ids == chunk_ids
    state = svc.indexes.get("crash", svc._index_folder)
    ids = state.store.search(np.ones((1, state.dim), np.float32), max(1, len(chunk_ids)))[1][0]
    assert set(int(i) for i in ids if i >= 0) == chunk_ids  # the index holds exactly the committed chunks
    assert state.keywords is not None and len(state.keywords) == len(chunk_ids)  # and so does the BM25 snapshot
    found = state.keywords.search(["document", "topic", "文档", "主题"], len(chunk_ids) + 1)
    assert {i for i, _ in found} <= chunk_ids and bool(found) == bool(chunk_ids)
    svc.close()
    return len(files)


@pytest.mark.slow
@pytest.mark.parametrize("kill_after_commits", [0, 1, 6])
def test_sigkill_mid_ingest_leaves_kb_consistent(
    tmp_path: Path, embedders: EmbedderPool, kill_after_commits: int
) -> None:
    content = tmp_path / "kb" / "crash" / "content"
    _write_corpus(content, 30)
    env = {**os.environ, "PYTHONPATH": str(REPO_ROOT)}
    errors = (tmp_path / "worker.err").open("w")
    proc = subprocess.Popen(
        [sys.executable, "-c", WORKER, str(tmp_path)],
        stdout=subprocess.PIPE,
        stderr=errors,
        text=True,
        env=env,
        cwd=REPO_ROOT,
    )
    committed: list[str] = []
    assert proc.stdout is not None
    if kill_after_commits == 0:  # during start-up, model load or the first embedding batch
        time.sleep(2.0)
        os.kill(proc.pid, signal.SIGKILL)
    deadline = time.monotonic() + 300  # generous: CI boxes can be slow
    while time.monotonic() < deadline:
        line = proc.stdout.readline()
        if not line:
            break
        if line.startswith("COMMITTED"):
            committed.append(line.split()[1])
            if len(committed) >= kill_after_commits > 0:
                break
    if proc.poll() is None:
        os.kill(proc.pid, signal.SIGKILL)
    proc.wait(timeout=30)
    errors.close()
    log = (tmp_path / "worker.err").read_text()
    assert proc.returncode == -signal.SIGKILL, f"worker ended by itself ({proc.returncode}): {log[-2000:]}"
    assert len(committed) >= kill_after_commits, f"only {committed} committed in time: {log[-2000:]}"
    present = _check_consistent(tmp_path, embedders, committed)
    assert present >= len(committed)

    # the next run completes the job; unchanged files already in are skipped, not redone
    svc = KnowledgeBaseService(make_settings(tmp_path), embedders=embedders)
    if not svc.exists("crash"):
        svc.create_kb("crash")
    report = svc.ingest("crash")
    assert len(report.skipped) == present and not report.failed
    svc.close()
    assert _check_consistent(tmp_path, embedders, committed) == 30


@pytest.mark.slow
def test_two_writer_processes_on_one_kb_stay_consistent(tmp_path: Path, embedders: EmbedderPool) -> None:
    content = tmp_path / "kb" / "crash" / "content"
    _write_corpus(content, 16)
    names = sorted(p.name for p in content.iterdir())
    env = {**os.environ, "PYTHONPATH": str(REPO_ROOT)}
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", WORKER, str(tmp_path), *part],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env=env,
            cwd=REPO_ROOT,
        )
        for part in (names[::2], names[1::2])
    ]
    for proc in procs:
        out, err = proc.communicate(timeout=300)
        assert proc.returncode == 0 and "DONE" in out, err[-2000:]
    assert _check_consistent(tmp_path, embedders, names) == 16


RECREATE_WORKER = textwrap.dedent(
    """
    import sys
    from pathlib import Path
    from kbqa.ingest.splitters import SplitConfig
    from kbqa.knowledge.service import KnowledgeBaseService
    from tests.conftest import make_settings

    svc = KnowledgeBaseService(make_settings(Path(sys.argv[1]), kb={"commit_every": 1, "parse_workers": 1}))
    svc.create_tables()
    def progress(event):
        print("COMMITTED", event["file"], flush=True)
    svc.recreate("crash", split=SplitConfig(120, 10), progress=progress)
    print("DONE", flush=True)
    """
)


@pytest.mark.slow
@pytest.mark.parametrize("kill_after_commits", [1, 12, 30])
def test_sigkill_mid_recreate_keeps_the_old_or_the_new_kb(
    tmp_path: Path, embedders: EmbedderPool, kill_after_commits: int
) -> None:
    """A recreate killed at any point: the KB holds every file, with either all old or all new chunks."""
    _write_corpus(tmp_path / "kb" / "crash" / "content", 30)
    svc = KnowledgeBaseService(make_settings(tmp_path), embedders=embedders)
    svc.create_tables()
    svc.create_kb("crash")
    svc.ingest("crash")
    with svc.db.read() as s:
        old_chunks = set(s.scalars(select(Chunk.id)))
    svc.close()
    env = {**os.environ, "PYTHONPATH": str(REPO_ROOT)}
    proc = subprocess.Popen(
        [sys.executable, "-c", RECREATE_WORKER, str(tmp_path)],
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
        env=env,
        cwd=REPO_ROOT,
    )
    assert proc.stdout is not None
    committed = 0
    deadline = time.monotonic() + 300
    while time.monotonic() < deadline and committed < kill_after_commits:
        line = proc.stdout.readline()
        if not line:
            break
        committed += line.startswith("COMMITTED")
    # 30 commits means the last file is in: the kill then lands around the swap, the index publish or the save
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait(timeout=30)
    assert committed >= kill_after_commits
    names = [f"doc{i:03d}.txt" for i in range(30)]
    assert _check_consistent(tmp_path, embedders, names) == 30  # never fewer files; staging rows dropped
    svc = KnowledgeBaseService(make_settings(tmp_path), embedders=embedders)
    with svc.db.read() as s:
        chunks = set(s.scalars(select(Chunk.id)))
        sizes = set(s.scalars(select(KnowledgeFile.chunk_size)))
    svc.close()
    if chunks == old_chunks:
        assert sizes == {250}
    else:  # wholly the new KB: no old chunk left, every file split the new way
        assert not chunks & old_chunks and sizes == {120}
