"""Backup and restore of a knowledge base: export → import on a fresh root answers 20 queries exactly as the original;
altered, truncated and unsafe archives are refused before anything is written; a name clash is a KBExists unless
another name or overwrite is given; embeddings of a model this server does not run are refused unless re-embedded;
a kill -9 during an import leaves no knowledge base (and an overwritten one as it was)."""

from __future__ import annotations

import hashlib
import io
import json
import os
import shutil
import signal
import subprocess
import sys
import tarfile
import textwrap
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
import yaml
from sqlalchemy import select

from kbqa.chat.retrieval import make_searcher
from kbqa.db import repository as repo
from kbqa.db.models import KnowledgeBase
from kbqa.embeddings.pool import EmbedderPool
from kbqa.errors import BackupModelMismatch, InvalidBackup, KBExists, KBNotFound
from kbqa.knowledge import backup
from kbqa.knowledge.service import KnowledgeBaseService
from tests.conftest import REPO_ROOT, make_settings

TOPICS = [
    ("ports.md", "# Ports\n\nThe API server listens on port 7861. The web UI listens on port 8501."),
    ("llm.md", "# LLM\n\nThe OpenAI-compatible server answers on port 8000; the controller on 21001."),
    ("zh/部署.md", "# 部署\n\n知识库问答系统可以完全离线运行。嵌入模型随安装包提供，不需要下载。"),
    ("zh/检索.txt", "检索同时使用向量索引和关键词索引（BM25），然后融合两种排名。中文用结巴分词。"),
    ("backup.txt", "Back up a knowledge base with kbqa kb export; restore it with kbqa kb import."),
    ("faq/keys.md", "# Keys\n\nA read key may search and chat. A write key may upload files. Admin keys do all."),
    ("faq/limits.md", "# Limits\n\nUploads are limited by api.max_upload_mb and kb.max_file_mb per file."),
    ("notes.csv", "name,role\nalice,operator\nbob,developer\ncarol,translator\n"),
]
QUERIES = [
    "Which port does the API server use?",
    "web UI port",
    "OpenAI compatible server port",
    "controller address",
    "离线运行",
    "嵌入模型需要下载吗",
    "关键词索引",
    "结巴分词",
    "how to back up a knowledge base",
    "restore an archive",
    "what may a read key do",
    "upload files permission",
    "admin",
    "upload size limit",
    "max_file_mb",
    "who is the translator",
    "bob",
    "BM25 fusion",
    "向量索引",
    "port 21001",
]


def _service(root: Path, embedders: EmbedderPool) -> KnowledgeBaseService:
    svc = KnowledgeBaseService(make_settings(root), embedders=embedders)
    svc.create_tables()
    return svc


@pytest.fixture(scope="module")
def source(tmp_path_factory: pytest.TempPathFactory, embedders: EmbedderPool) -> Iterator[KnowledgeBaseService]:
    svc = _service(tmp_path_factory.mktemp("source"), embedders)
    svc.create_kb("docs", info="team docs")
    for rel, text in TOPICS:
        path = svc.folder("docs").content / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text * 3, encoding="utf-8")
    report = svc.ingest("docs")
    assert not report.failed and report.chunks >= len(TOPICS)
    yield svc
    svc.close()


@pytest.fixture(scope="module")
def archive(source: KnowledgeBaseService, tmp_path_factory: pytest.TempPathFactory) -> Path:
    target = tmp_path_factory.mktemp("archives") / "docs.kbqa.tar"
    report = backup.export_kb(source, "docs", target)
    assert report.files == len(TOPICS) and report.chunks == source.get_kb("docs").chunk_count
    assert report.bytes == target.stat().st_size > 0
    return target


@pytest.fixture(scope="module")
def expected(source: KnowledgeBaseService) -> list[list[tuple[str, int, str, float]]]:
    """The original's answers to QUERIES, asked once (a query embedding is slow on a busy 2-core box)."""
    found = _results(source, "docs")
    assert sum(map(len, found)) >= 40  # the queries find things: the comparisons mean something
    return found


def _results(svc: KnowledgeBaseService, kb: str) -> list[list[tuple[str, int, str, float]]]:
    search = make_searcher(svc, svc.settings)
    return [[(h.path, h.ordinal, h.text, round(h.cosine, 6)) for h in search(kb, q, 5, 2.0)] for q in QUERIES]


def _nothing_written(svc: KnowledgeBaseService, name: str = "docs") -> None:
    assert not svc.exists(name)
    with svc.db.read() as s:
        assert not list(s.scalars(select(KnowledgeBase.name)))  # no KB, no staging KB
    assert not (svc.kb_root / name).exists()
    assert not list(svc.kb_root.glob(".import.*"))


def test_export_then_import_on_a_fresh_root_searches_the_same(
    source: KnowledgeBaseService,
    archive: Path,
    expected: list[list[tuple[str, int, str, float]]],
    tmp_path: Path,
    embedders: EmbedderPool,
) -> None:
    svc = _service(tmp_path, embedders)
    report = backup.import_kb(svc, archive)
    assert report.files == len(TOPICS) and report.reembedded == 0
    before, after = source.get_kb("docs"), svc.get_kb("docs")
    assert (after.info, after.embed_model, after.embed_dim, after.file_count, after.chunk_count) == (
        before.info,
        before.embed_model,
        before.embed_dim,
        before.file_count,
        before.chunk_count,
    )
    assert _results(svc, "docs") == expected
    for rel, _ in TOPICS:  # the files themselves, byte for byte
        assert (svc.folder("docs").content / rel).read_bytes() == (source.folder("docs").content / rel).read_bytes()
    assert {f.path: f.sha256 for f in svc.list_files("docs")} == {f.path: f.sha256 for f in source.list_files("docs")}
    svc.close()
    # a fresh process opens it from disk (saved index, keyword data) and answers the same
    reopened = _service(tmp_path, embedders)
    assert _results(reopened, "docs") == expected
    assert reopened.ingest("docs").skipped  # the rows match the files: nothing to re-index
    reopened.close()


def test_name_clash_is_refused_unless_another_name_or_overwrite(
    archive: Path, expected: list[list[tuple[str, int, str, float]]], tmp_path: Path, embedders: EmbedderPool
) -> None:
    svc = _service(tmp_path, embedders)
    svc.create_kb("docs", info="someone else's")
    (svc.folder("docs").content / "mine.txt").write_text("my own file about port numbers", encoding="utf-8")
    svc.ingest("docs")
    with pytest.raises(KBExists):
        backup.import_kb(svc, archive)
    assert svc.file_names("docs") == ["mine.txt"] and svc.get_kb("docs").info == "someone else's"
    backup.import_kb(svc, archive, new_name="docs_copy")
    assert _results(svc, "docs_copy") == expected
    backup.import_kb(svc, archive, overwrite=True)
    assert svc.get_kb("docs").info == "team docs" and "mine.txt" not in svc.file_names("docs")
    assert not (svc.folder("docs").content / "mine.txt").exists()
    assert _results(svc, "docs") == expected
    assert not list(svc.kb_root.glob(".import.*"))
    svc.close()


# --- hostile archives ----------------------------------------------------------------------------------------------
Edit = Callable[[dict[str, bytes]], None]


def _members(path: Path) -> dict[str, bytes]:
    with tarfile.open(path) as tar:
        return {m.name: tar.extractfile(m).read() for m in tar.getmembers()}  # type: ignore[union-attr]


def _write(path: Path, members: dict[str, bytes], extra: Callable[[tarfile.TarFile], None] | None = None) -> Path:
    with tarfile.open(path, "w") as tar:
        for name, data in members.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
        if extra is not None:
            extra(tar)
    return path


def _resealed(members: dict[str, bytes]) -> dict[str, bytes]:
    """The members with a manifest recomputed for them: what a careful forger would produce."""
    manifest = json.loads(members["manifest.json"])
    body = {k: v for k, v in members.items() if k != "manifest.json"}
    manifest["members"] = {k: {"sha256": hashlib.sha256(v).hexdigest(), "size": len(v)} for k, v in body.items()}
    return {**body, "manifest.json": json.dumps(manifest).encode()}


def test_a_tampered_archive_is_refused_before_anything_is_written(
    archive: Path, tmp_path: Path, embedders: EmbedderPool
) -> None:
    svc = _service(tmp_path / "root", embedders)
    members = _members(archive)
    altered = dict(members)
    altered["content/ports.md"] = altered["content/ports.md"].replace(b"7861", b"6666")
    with pytest.raises(InvalidBackup, match=r"checksum mismatch for 'content/ports\.md'"):
        backup.import_kb(svc, _write(tmp_path / "altered.tar", altered))
    vectors = dict(members)
    vectors["embeddings.f32"] = bytes(len(vectors["embeddings.f32"]))
    with pytest.raises(InvalidBackup, match=r"checksum mismatch for 'embeddings\.f32'"):
        backup.import_kb(svc, _write(tmp_path / "vectors.tar", vectors))
    dropped = {k: v for k, v in members.items() if k != "content/llm.md"}
    with pytest.raises(InvalidBackup, match=r"missing: content/llm\.md"):
        backup.import_kb(svc, _write(tmp_path / "dropped.tar", dropped))
    added = {**members, "content/extra.md": b"smuggled"}
    with pytest.raises(InvalidBackup, match=r"not in the manifest: content/extra\.md"):
        backup.import_kb(svc, _write(tmp_path / "added.tar", added))
    with pytest.raises(InvalidBackup, match="is not a readable tar archive"):
        backup.import_kb(svc, _write_bytes(tmp_path / "junk.tar", b"not a tar at all" * 100))
    _nothing_written(svc)
    svc.close()


def _write_bytes(path: Path, data: bytes) -> Path:
    path.write_bytes(data)
    return path


@pytest.mark.parametrize(
    ("member", "at"), [("embeddings.f32", 0.5), ("content/llm.md", 0.5), ("manifest.json", 0.0), ("manifest.json", 0.9)]
)
def test_a_truncated_archive_is_refused(
    archive: Path, tmp_path: Path, embedders: EmbedderPool, member: str, at: float
) -> None:
    svc = _service(tmp_path / "root", embedders)
    with tarfile.open(archive) as tar:
        info = tar.getmember(member)
    cut_at = info.offset_data + int(info.size * at) if at else info.offset  # inside the member, or before it
    cut = _write_bytes(tmp_path / "cut.tar", archive.read_bytes()[:cut_at])
    with pytest.raises(InvalidBackup, match=r"truncated|no manifest\.json"):
        backup.import_kb(svc, cut)
    _nothing_written(svc)
    svc.close()


def _symlink(tar: tarfile.TarFile) -> None:
    info = tarfile.TarInfo("content/link.md")
    info.type, info.linkname = tarfile.SYMTYPE, "/etc/passwd"
    tar.addfile(info)


def _hardlink(tar: tarfile.TarFile) -> None:
    info = tarfile.TarInfo("content/hard.md")
    info.type, info.linkname = tarfile.LNKTYPE, "kb.json"
    tar.addfile(info)


@pytest.mark.parametrize(
    ("name", "extra", "message"),
    [
        ("content/../../escape.md", None, "not a safe path"),
        ("/etc/cron.d/evil", None, "not part of a kbqa"),
        ("content//etc/passwd", None, "not a safe path"),
        ("../outside.md", None, "not part of a kbqa"),
        (None, _symlink, "is a link"),
        (None, _hardlink, "is a link"),
    ],
)
def test_paths_that_leave_the_folder_and_links_are_refused(
    archive: Path,
    tmp_path: Path,
    embedders: EmbedderPool,
    name: str | None,
    extra: Callable[[tarfile.TarFile], None] | None,
    message: str,
) -> None:
    svc = _service(tmp_path / "root", embedders)
    members = _members(archive)
    if name is not None:
        members = _resealed({**members, name: b"payload"})  # even with a manifest that vouches for it
    with pytest.raises(InvalidBackup, match=message):
        backup.import_kb(svc, _write(tmp_path / "hostile.tar", members, extra))
    _nothing_written(svc)
    assert not (tmp_path / "escape.md").exists() and not (tmp_path / "root" / "escape.md").exists()
    svc.close()


def test_embeddings_of_an_unknown_model_are_refused_unless_reembedded(
    source: KnowledgeBaseService,
    archive: Path,
    expected: list[list[tuple[str, int, str, float]]],
    tmp_path: Path,
    embedders: EmbedderPool,
) -> None:
    svc = _service(tmp_path / "root", embedders)
    members = _members(archive)
    doc = json.loads(members["kb.json"])
    doc["kb"]["embed_model"] = "bge-large-zh-v1.5"
    manifest = json.loads(members["manifest.json"])
    manifest["embed_model"] = "bge-large-zh-v1.5"
    foreign = _resealed(
        {**members, "kb.json": json.dumps(doc).encode(), "manifest.json": json.dumps(manifest).encode()}
    )
    path = _write(tmp_path / "foreign.tar", foreign)
    with pytest.raises(BackupModelMismatch, match=r"bge-large-zh-v1.5 \(dimension 384\), which this server does not"):
        backup.import_kb(svc, path)
    _nothing_written(svc)
    report = backup.import_kb(svc, path, reembed=True)
    assert report.reembedded == source.get_kb("docs").chunk_count and report.embed_model == "multilingual-e5-small"
    assert svc.get_kb("docs").embed_model == "multilingual-e5-small"
    # embedded again with the same model as the original: the same best answers (the int8 index is built afresh,
    # so hits with equal scores may come in another order)
    assert [hits[0] for hits in _results(svc, "docs")] == [hits[0] for hits in expected]
    svc.close()


def test_export_is_atomic_and_refuses_an_unknown_kb(source: KnowledgeBaseService, tmp_path: Path) -> None:
    with pytest.raises(KBNotFound):
        backup.export_kb(source, "nope", tmp_path / "nope.tar")
    assert not list(tmp_path.iterdir())  # no partial file, no temp file
    cancel = threading.Event()
    cancel.set()
    report = backup.export_kb(source, "docs", tmp_path / "cancelled.tar", cancel=cancel)
    assert report.cancelled and not list(tmp_path.iterdir())
    gz = backup.export_kb(source, "docs", tmp_path / "docs.tar.gz")
    plain = backup.export_kb(source, "docs", tmp_path / "docs.tar")
    assert 0 < gz.bytes < plain.bytes
    assert backup.check_archive(tmp_path / "docs.tar.gz").manifest.kb == "docs"


# --- kill -9 -------------------------------------------------------------------------------------------------------
IMPORTER = textwrap.dedent(
    """
    import sys, time
    from pathlib import Path
    from kbqa.knowledge import backup
    from kbqa.knowledge.service import KnowledgeBaseService
    from tests.conftest import make_settings

    svc = KnowledgeBaseService(make_settings(Path(sys.argv[1])))
    svc.create_tables()
    def progress(event):
        print("UNPACKED", event["file"], flush=True)
        time.sleep(0.2)  # the parent kills while the import is inside this step
    backup.import_kb(svc, Path(sys.argv[2]), overwrite=sys.argv[3] == "1", progress=progress)
    print("DONE", flush=True)
    """
)


@pytest.mark.slow
@pytest.mark.parametrize(("kill_after", "overwrite"), [(1, False), (len(TOPICS), False), (len(TOPICS), True)])
def test_sigkill_during_import_leaves_no_kb(
    archive: Path,
    expected: list[list[tuple[str, int, str, float]]],
    tmp_path: Path,
    embedders: EmbedderPool,
    kill_after: int,
    overwrite: bool,
) -> None:
    if overwrite:  # an older KB of that name is there: it must come out of the kill as it was
        svc = _service(tmp_path, embedders)
        svc.create_kb("docs", info="the old one")
        (svc.folder("docs").content / "old.txt").write_text("the old knowledge base's only file", encoding="utf-8")
        svc.ingest("docs")
        old = svc.search("docs", "old knowledge base", 3)
        svc.close()
    env = {**os.environ, "PYTHONPATH": str(REPO_ROOT)}
    proc = subprocess.Popen(
        [sys.executable, "-c", IMPORTER, str(tmp_path), str(archive), "1" if overwrite else "0"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
        cwd=REPO_ROOT,
    )
    assert proc.stdout is not None
    seen = 0
    deadline = time.monotonic() + 240
    while time.monotonic() < deadline and seen < kill_after:
        line = proc.stdout.readline()
        if not line:
            break
        seen += line.startswith("UNPACKED")
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait(timeout=30)
    assert seen == kill_after and proc.returncode == -signal.SIGKILL, proc.stderr.read()[-2000:]  # type: ignore[union-attr]
    assert list(tmp_path.glob("kb/.import.*"))  # the kill did land inside the import

    svc = _service(tmp_path, embedders)  # the next start cleans up what the kill left
    assert not list(svc.kb_root.glob(".import.*"))
    with svc.db.read() as s:
        assert not repo.staging_names(s)
    if overwrite:
        assert svc.get_kb("docs").info == "the old one" and svc.file_names("docs") == ["old.txt"]
        assert sorted(p.name for p in svc.folder("docs").content.iterdir()) == ["old.txt"]
        assert [(h.chunk_id, h.text) for h in svc.search("docs", "old knowledge base", 3)] == [
            (h.chunk_id, h.text) for h in old
        ]
    else:
        _nothing_written(svc)
    backup.import_kb(svc, archive, overwrite=True)  # and the import can simply be run again
    assert _results(svc, "docs") == expected
    svc.close()


def test_cli_export_and_import(source: KnowledgeBaseService, tmp_path: Path) -> None:
    """`kbqa kb export` / `kbqa kb import` as an operator runs them: two projects, two processes."""
    config = yaml.safe_load((REPO_ROOT / "configs" / "settings.yaml").read_text(encoding="utf-8"))
    config["paths"]["kb_root"] = str(source.kb_root)
    (tmp_path / "a.yaml").write_text(yaml.safe_dump(config), encoding="utf-8")
    config["paths"]["kb_root"] = str(tmp_path / "other")
    (tmp_path / "b.yaml").write_text(yaml.safe_dump(config), encoding="utf-8")
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "PYTHONPATH": str(REPO_ROOT)}

    def kbqa(config_file: str, *args: str) -> subprocess.CompletedProcess[str]:
        argv = [sys.executable, "-m", "kbqa.cli", "--config", str(tmp_path / config_file), *args]
        return subprocess.run(argv, env=env, capture_output=True, text=True, timeout=300, check=False)

    out = kbqa("a.yaml", "kb", "export", "docs", str(tmp_path / "docs.tar.gz"))
    assert out.returncode == 0 and "exported docs: 8 files" in out.stdout, out.stderr
    done = kbqa("b.yaml", "kb", "import", str(tmp_path / "docs.tar.gz"), "--as", "restored")
    assert done.returncode == 0 and "imported restored: 8 files" in done.stdout, done.stderr
    again = kbqa("b.yaml", "kb", "import", str(tmp_path / "docs.tar.gz"), "--as", "restored")
    assert again.returncode == 1 and "already exists" in again.stderr
    listed = kbqa("b.yaml", "kb", "list")
    assert listed.stdout.startswith("restored\t8 files")
    shutil.rmtree(tmp_path / "other")


def test_files_of_no_kb_under_the_name_are_not_overwritten(
    archive: Path, tmp_path: Path, embedders: EmbedderPool
) -> None:
    """A folder someone put there by hand (Chatchat's way of starting a KB) is nobody's to replace."""
    svc = _service(tmp_path, embedders)
    hand_made = svc.kb_root / "docs" / "content" / "draft.md"
    hand_made.parent.mkdir(parents=True)
    hand_made.write_text("my draft", encoding="utf-8")
    with pytest.raises(KBExists, match="holds files of no knowledge base"):
        backup.import_kb(svc, archive)
    assert hand_made.read_text(encoding="utf-8") == "my draft" and not svc.exists("docs")
    assert not list(svc.kb_root.glob(".import.*"))
    svc.close()
