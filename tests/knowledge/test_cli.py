"""init_database.py and the kbqa command, run as real subprocesses on a copy of the shipped samples KB."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from tests.conftest import REPO_ROOT


def _project(tmp_path: Path) -> Path:
    """A project folder with its own configs/settings.yaml and a copy of the samples KB."""
    (tmp_path / "configs").mkdir()
    config = yaml.safe_load((REPO_ROOT / "configs" / "settings.yaml").read_text(encoding="utf-8"))
    (tmp_path / "configs" / "settings.yaml").write_text(yaml.safe_dump(config, allow_unicode=True), encoding="utf-8")
    shutil.copytree(
        REPO_ROOT / "knowledge_base" / "samples" / "content", tmp_path / "knowledge_base" / "samples" / "content"
    )
    return tmp_path


def _run(project: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "KBQA_CONFIG": str(project / "configs" / "settings.yaml")}
    return subprocess.run(
        [sys.executable, *args], cwd=project, env=env, capture_output=True, text=True, timeout=300, check=False
    )


@pytest.mark.slow
def test_init_database_builds_samples_and_search_cites_sources(tmp_path: Path) -> None:
    project = _project(tmp_path)
    init = str(REPO_ROOT / "init_database.py")
    done = _run(project, init, "--recreate-vs")
    assert done.returncode == 0, done.stderr
    assert "samples:" in done.stdout and "0 failed" in done.stdout
    assert (project / "knowledge_base" / "info.db").is_file()

    found = _run(project, "-m", "kbqa.cli", "search", "samples", "Which port does the API server listen on?", "-k", "3")
    assert found.returncode == 0, found.stderr
    assert "[1]" in found.stdout and "relevance=" in found.stdout
    assert "7861" in found.stdout

    # This sentence exists only as pixels in a scanned page: found through OCR, cited with its page.
    scan = _run(project, "-m", "kbqa.cli", "search", "samples", "Where is the demonstration server of kbqa?", "-k", "3")
    assert scan.returncode == 0, scan.stderr
    assert "[1] reference/scanned_notice.pdf (page 1)" in scan.stdout and "room 314" in scan.stdout
    picture = _run(project, "-m", "kbqa.cli", "search", "samples", "When is the team lunch?", "-k", "3")
    assert "general/whiteboard.png" in picture.stdout and "Thursday at 12:15" in picture.stdout

    zh = _run(project, "-m", "kbqa.cli", "search", "samples", "支持哪些文件格式？", "-k", "3")
    assert zh.returncode == 0 and "[1]" in zh.stdout

    # increment picks up exactly the new file; an unchanged KB does no work
    (project / "knowledge_base" / "samples" / "content" / "new_note.txt").write_text(
        "The backup of the knowledge base runs nightly at 02:00.", encoding="utf-8"
    )
    inc = _run(project, init, "--increment", "-n", "samples")
    assert inc.returncode == 0, inc.stderr
    assert "1 added" in inc.stdout
    upd = _run(project, init, "-u")
    assert "0 added, 0 updated" in upd.stdout

    # prune-db forgets a file deleted from the folder
    (project / "knowledge_base" / "samples" / "content" / "new_note.txt").unlink()
    pruned = _run(project, init, "--prune-db", "-n", "samples")
    assert "forgot 1 file" in pruned.stdout
    files = _run(project, "-m", "kbqa.cli", "kb", "files", "samples")
    assert "new_note.txt" not in files.stdout and "README.md" in files.stdout


def test_cli_errors_are_clear_and_non_zero(tmp_path: Path) -> None:
    project = _project(tmp_path)
    bad = _run(project, "-m", "kbqa.cli", "search", "../etc", "anything")
    assert bad.returncode == 1
    assert "error: knowledge base name" in bad.stderr and "Traceback" not in bad.stderr
    missing = _run(project, "-m", "kbqa.cli", "search", "nope", "anything")
    assert missing.returncode == 1 and "not found" in missing.stderr
    usage = _run(project, "-m", "kbqa.cli", "frobnicate")
    assert usage.returncode == 2
