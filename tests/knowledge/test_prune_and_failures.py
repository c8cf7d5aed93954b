"""--prune-folder and delete-from-disk never lose what kbqa cannot index; failed files keep their reason and time and
are not retried while unchanged (real service, real files, the real CLI in-process)."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from kbqa.cli import init_database_main, main
from kbqa.knowledge.content import KBFolder
from kbqa.knowledge.service import KnowledgeBaseService
from kbqa.settings import Settings
from tests.conftest import REPO_ROOT

GIF = b"GIF89a" + b"\x00" * 32  # images kbqa does not read (it OCRs png, jpg, tiff, ...)
NOTE = "# Backups\n\nThe knowledge base is backed up nightly at 02:00.\n\n![diagram](img/flow.gif)\n"


def _config(settings: Settings, tmp_path: Path) -> str:
    """A settings file for the CLI pointing at the fixture's knowledge-base root."""
    config = yaml.safe_load((REPO_ROOT / "configs" / "settings.yaml").read_text(encoding="utf-8"))
    config.setdefault("paths", {})["kb_root"] = str(settings.kb_root)
    path = tmp_path / "configs" / "settings.yaml"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(yaml.safe_dump(config, allow_unicode=True), encoding="utf-8")
    return str(path)


def _write(content: Path, files: dict[str, bytes | str]) -> None:
    for rel, data in files.items():
        target = content / rel
        target.parent.mkdir(parents=True, exist_ok=True)
        if isinstance(data, str):
            target.write_text(data, encoding="utf-8")
        else:
            target.write_bytes(data)


@pytest.fixture
def notes(service: KnowledgeBaseService) -> Path:
    """KB ``notes``: notes.md indexed; beside it, unknown to the DB, an indexable orphan and two images."""
    service.create_kb("notes")
    content = service.folder("notes").content
    _write(content, {"notes.md": NOTE})
    service.ingest("notes", ["notes.md"])
    _write(content, {"orphan.txt": "left over", "img/flow.gif": GIF, "img/logo.gif": GIF})
    # Outside content/: never a candidate.
    _write(service.folder("notes").root, {"stray.md": "not content"})
    return content


def test_prune_folder_lists_first_and_never_deletes_what_kbqa_cannot_index(
    service: KnowledgeBaseService, settings: Settings, notes: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert service.prunable_files("notes") == ["orphan.txt"]
    config = _config(settings, tmp_path)

    assert init_database_main(["--config", config, "--prune-folder", "-n", "notes"]) == 0
    out = capsys.readouterr().out
    assert "notes: would delete content/orphan.txt" in out and "--yes" in out
    assert ".gif" not in out
    assert (notes / "orphan.txt").is_file()

    assert init_database_main(["--config", config, "--prune-folder", "--yes", "-n", "notes"]) == 0
    out = capsys.readouterr().out
    assert "notes: deleted content/orphan.txt" in out and "deleted 1 file(s)" in out
    assert not (notes / "orphan.txt").exists()
    for kept in ("notes.md", "img/flow.gif", "img/logo.gif"):
        assert (notes / kept).is_file(), kept
    assert (service.folder("notes").root / "stray.md").is_file()


def test_delete_from_disk_keeps_files_kbqa_cannot_index(service: KnowledgeBaseService, notes: Path) -> None:
    failed = service.delete_files("notes", ["img/flow.gif", "orphan.txt"], delete_content=True)
    assert set(failed) == {"img/flow.gif"}
    assert "not deleted" in failed["img/flow.gif"] and "cannot index" in failed["img/flow.gif"]
    assert (notes / "img/flow.gif").is_file()
    assert not (notes / "orphan.txt").exists()
    # A known file of an indexable type still goes, row and file.
    assert service.delete_files("notes", ["notes.md"], delete_content=True) == {}
    assert not (notes / "notes.md").exists() and service.file_names("notes") == []


def test_failures_keep_their_reason_and_time_and_are_not_new_while_unchanged(service: KnowledgeBaseService) -> None:
    service.create_kb("docs")
    content = service.folder("docs").content
    _write(content, {"notes.md": NOTE, "img/flow.gif": GIF, "broken.pdf": b"%PDF-1.4 this is not a pdf"})

    first = service.ingest("docs")
    assert first.added == ["notes.md"]
    assert set(first.new_failures) == {"img/flow.gif", "broken.pdf"}
    files = {f.path: f for f in service.list_files("docs")}
    for rel in ("img/flow.gif", "broken.pdf"):
        assert files[rel].status == "error" and files[rel].error == first.failed[rel]
        assert files[rel].failed_at is not None
    assert "not supported" in files["img/flow.gif"].error
    assert files["notes.md"].failed_at is None

    second = service.ingest("docs")
    assert set(second.failed) == {"img/flow.gif", "broken.pdf"}
    assert sorted(second.failed_before) == ["broken.pdf", "img/flow.gif"]
    assert second.new_failures == {}
    again = {f.path: f for f in service.list_files("docs")}
    for rel in ("img/flow.gif", "broken.pdf"):
        assert (again[rel].failed_at, again[rel].version) == (files[rel].failed_at, files[rel].version)

    # A changed file that fails is a new failure.
    _write(content, {"broken.pdf": b"%PDF-1.4 still not a pdf, but other bytes"})
    third = service.ingest("docs")
    assert set(third.new_failures) == {"broken.pdf"}


def test_increment_records_unsupported_files_once_then_reports_nothing_new(
    service: KnowledgeBaseService, settings: Settings, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # A folder-only KB, as copied from Chatchat: content/ and no database row yet.
    content = settings.kb_root / "copied" / "content"
    _write(content, {"notes.md": NOTE, "img/flow.gif": GIF})
    config = _config(settings, tmp_path)

    assert init_database_main(["--config", config, "-i", "-n", "copied"]) == 3
    captured = capsys.readouterr()
    assert "1 added" in captured.out and "1 failed" in captured.out
    assert "img/flow.gif" in captured.err

    assert init_database_main(["--config", config, "-i", "-n", "copied"]) == 0
    captured = capsys.readouterr()
    assert "0 added" in captured.out and "0 failed" in captured.out and "failed:" not in captured.err

    # Recreating re-reads everything; the image failing as before is still not new.
    assert init_database_main(["--config", config, "--recreate-vs", "-n", "copied"]) == 0
    assert "1 failed before (unchanged)" in capsys.readouterr().out

    assert main(["--config", config, "kb", "files", "copied"]) == 0
    listed = {line.split("\t")[0]: line for line in capsys.readouterr().out.splitlines()}
    assert "\terror\t" in listed["img/flow.gif"] and "not supported" in listed["img/flow.gif"]
    assert "(failed " in listed["img/flow.gif"]
    assert "\tready\t" in listed["notes.md"]


def test_kbqa_index_removal_keeps_chatchat_indexes_until_asked(tmp_path: Path) -> None:
    folder = KBFolder.of(tmp_path, "kb")
    stores = folder.root / "vector_store"
    _write(
        stores,
        {
            "bge-large-zh-v1.5/index.faiss": b"x",
            "bge-large-zh-v1.5/index.pkl": b"x",
            "multilingual-e5-small/CURRENT": "index-3.faiss",
            "multilingual-e5-small/index-3.faiss": b"x",
            # a model name both used: kbqa's files beside Chatchat's
            "bge-m3/CURRENT": "index-1.faiss",
            "bge-m3/index-1.faiss": b"x",
            "bge-m3/index.faiss": b"x",
            "bge-m3/index.pkl": b"x",
        },
    )
    chatchat = [
        stores / "bge-large-zh-v1.5",
        stores / "bge-m3" / "index.faiss",
        stores / "bge-m3" / "index.pkl",
    ]
    assert sorted(folder.chatchat_vector_stores()) == sorted(chatchat)
    folder.remove_indexes()
    left = sorted(p.relative_to(stores).as_posix() for p in stores.rglob("*") if p.is_file())
    assert left == [
        "bge-large-zh-v1.5/index.faiss",
        "bge-large-zh-v1.5/index.pkl",
        "bge-m3/index.faiss",
        "bge-m3/index.pkl",
    ]
    # Only Chatchat's files are left in bge-m3 now: the whole folder is Chatchat's.
    assert sorted(folder.remove_chatchat_vector_stores()) == [stores / "bge-large-zh-v1.5", stores / "bge-m3"]
    assert not any(p.is_file() for p in stores.rglob("*"))

    # Asked while kbqa's index shares the folder: only Chatchat's two files go.
    _write(stores, {"bge-m3/CURRENT": "index-1.faiss", "bge-m3/index-1.faiss": b"x", "bge-m3/index.pkl": b"x"})
    assert folder.remove_chatchat_vector_stores() == [stores / "bge-m3" / "index.pkl"]
    assert sorted(p.name for p in (stores / "bge-m3").iterdir()) == ["CURRENT", "index-1.faiss"]
