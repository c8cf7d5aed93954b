"""Coming from Langchain-Chatchat 0.2: its info.db and knowledge_base folder opened by kbqa's entry points (real
subprocesses for init_database.py and the API server, the real app for the API checks)."""

from __future__ import annotations

import hashlib
import os
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from kbqa.chat.records import ChatRecords
from tests import chatchat_db
from tests.api.conftest import ServerFactory
from tests.conftest import REPO_ROOT
from tests.llm.llm_topology import free_port

SUMMARY = "Migrated the Langchain-Chatchat 0.2 database"
HISTORY = ("conversation", "message")


def _project(root: Path) -> Path:
    """A project folder whose settings put kb_root at ``kb`` (where the API fixtures put it too)."""
    (root / "configs").mkdir(parents=True)
    config = yaml.safe_load((REPO_ROOT / "configs" / "settings.yaml").read_text(encoding="utf-8"))
    config.setdefault("paths", {})["kb_root"] = "kb"
    (root / "configs" / "settings.yaml").write_text(yaml.safe_dump(config, allow_unicode=True), encoding="utf-8")
    return root


def _run(project: Path, *args: str, timeout: int = 300) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "KBQA_CONFIG": str(project / "configs" / "settings.yaml")}
    env["PYTHONPATH"] = os.pathsep.join([str(REPO_ROOT), env.get("PYTHONPATH", "")])
    return subprocess.run(
        [sys.executable, *args], cwd=project, env=env, capture_output=True, text=True, timeout=timeout, check=False
    )


def _init(project: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return _run(project, str(REPO_ROOT / "init_database.py"), *args)


def _backups(kb_root: Path) -> list[Path]:
    return sorted(kb_root.glob("info.chatchat-backup-*.db"))


def _sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


@pytest.mark.slow
def test_init_database_migrates_a_chatchat_database_and_a_second_run_changes_nothing(
    tmp_path: Path, server_factory: ServerFactory
) -> None:
    project = _project(tmp_path / "project")
    kb_root = project / "kb"
    marker = tmp_path / "index.pkl-was-unpickled"
    chatchat_db.build(kb_root, marker)
    original = chatchat_db.dump(kb_root / "info.db", "knowledge_base", "knowledge_file", *HISTORY)

    first = _init(project, "--recreate-vs")
    assert first.returncode == 0, first.stderr
    assert "Traceback" not in first.stderr
    summaries = [line for line in first.stdout.splitlines() if line.startswith(SUMMARY)]
    assert len(summaries) == 1, first.stdout
    summary = summaries[0]
    assert "1 knowledge base(s) (notes)" in summary and "2 file(s) to index" in summary
    assert "1 conversation(s)" in summary and "2 message(s), 1 with feedback" in summary
    assert f"embedding model {chatchat_db.CHATCHAT_MODEL} is not available in kbqa" in summary
    assert "1 old Chatchat index folder(s) kept" in summary
    [backup] = _backups(kb_root)
    assert str(backup) in summary
    # The backup is Chatchat's database as it was.
    assert chatchat_db.dump(backup, "knowledge_base", "knowledge_file", *HISTORY) == original
    assert "notes: 2 added" in first.stdout and "0 failed" in first.stdout

    # Chatchat's FAISS index is kept and was never unpickled.
    old_index = kb_root / "notes" / "vector_store" / chatchat_db.CHATCHAT_MODEL
    assert (old_index / "index.pkl").is_file() and (old_index / "index.faiss").is_file()
    assert not marker.exists()

    history = chatchat_db.dump(kb_root / "info.db", *HISTORY)
    messages = {row[0]: row for row in history["message"]}
    for mid, query, response, score, reason in chatchat_db.MESSAGES:
        row = messages[mid]
        assert (row[1], row[3], row[4], row[6], row[7]) == (chatchat_db.CONVERSATION, query, response, score, reason)
    assert [row[:3] for row in history["conversation"]] == [(chatchat_db.CONVERSATION, "ops", "knowledge_base_chat")]

    server = server_factory(root=project)
    with server.client() as client:
        assert client.get("/ready").status_code == 200
        assert client.get("/knowledge_base/list_knowledge_bases").json()["data"] == ["notes"]
        files = client.get("/knowledge_base/list_files", params={"knowledge_base_name": "notes"}).json()["data"]
        assert sorted(files) == sorted(chatchat_db.FILES)
        details = client.get("/knowledge_base/list_file_details", params={"knowledge_base_name": "notes"}).json()
        assert {d["path"]: d["status"] for d in details["data"]} == dict.fromkeys(chatchat_db.FILES, "ready")
        kbs = client.get("/knowledge_base/list_kb_details").json()["data"]
        assert [(k["name"], k["info"], k["embed_model"]) for k in kbs] == [
            ("notes", "Operations notes", server.settings.embedding.model)
        ]
        hits = client.post(
            "/knowledge_base/search_docs",
            json={"query": "Which port does the API server listen on?", "knowledge_base_name": "notes", "top_k": 2},
        ).json()
        assert hits and hits[0]["metadata"]["source"] == "ports.md"
        # A moved conversation goes on: the server reads its history.
        turns = ChatRecords(server.service.db).recent(chatchat_db.CONVERSATION, 5)
        assert turns == [(q, r) for _, q, r, _, _ in chatchat_db.MESSAGES]
    server.stop()

    history_before = chatchat_db.dump(kb_root / "info.db", *HISTORY)
    kbs_before = chatchat_db.dump(kb_root / "info.db", "knowledge_base")
    again = _init(project, "--recreate-vs")
    assert again.returncode == 0, again.stderr
    assert SUMMARY not in again.stdout
    assert _backups(kb_root) == [backup]
    assert chatchat_db.dump(kb_root / "info.db", *HISTORY) == history_before
    # id, name, info, vs_type, embed_model, embed_dim
    kbs_after = chatchat_db.dump(kb_root / "info.db", "knowledge_base")
    assert [row[:6] for row in kbs_after["knowledge_base"]] == [row[:6] for row in kbs_before["knowledge_base"]]
    files_after = chatchat_db.dump(kb_root / "info.db", "knowledge_file")["knowledge_file"]
    assert sorted(row[2] for row in files_after) == sorted(chatchat_db.FILES)
    assert old_index.is_dir() and not marker.exists()

    # --prune-old-vector-stores lists and removes Chatchat's folder, and only that.
    pruned = _init(project, "--prune-old-vector-stores", "-n", "notes")
    assert pruned.returncode == 0, pruned.stderr
    assert f"removed Chatchat's old index {old_index}" in pruned.stdout
    assert not old_index.exists()
    assert (kb_root / "notes" / "vector_store" / "multilingual-e5-small" / "CURRENT").is_file()


def test_api_server_start_migrates_and_lists_the_moved_files_as_pending(
    tmp_path: Path, server_factory: ServerFactory
) -> None:
    project = _project(tmp_path / "project")
    chatchat_db.build(project / "kb", tmp_path / "unpickled")
    server = server_factory(root=project)
    assert len(_backups(project / "kb")) == 1
    with server.client() as client:
        assert client.get("/ready").status_code == 200
        details = client.get("/knowledge_base/list_file_details", params={"knowledge_base_name": "notes"}).json()
        assert {d["path"]: d["status"] for d in details["data"]} == dict.fromkeys(chatchat_db.FILES, "pending")
        rated = client.post(
            "/chat/feedback", json={"message_id": chatchat_db.MESSAGES[1][0], "score": 80, "reason": "good"}
        )
        assert rated.status_code == 200, rated.text
    scores = {row[0]: row[6] for row in chatchat_db.dump(project / "kb" / "info.db", "message")["message"]}
    assert scores == {chatchat_db.MESSAGES[0][0]: 5, chatchat_db.MESSAGES[1][0]: 80}


def _foreign(db: Path) -> None:
    db.parent.mkdir(parents=True, exist_ok=True)
    conn = sqlite3.connect(db)
    with conn:
        conn.execute("CREATE TABLE knowledge_base (id INTEGER PRIMARY KEY, title TEXT)")
        conn.execute("INSERT INTO knowledge_base (title) VALUES ('someone else''s')")
    conn.close()


def _newer(db: Path) -> None:
    db.parent.mkdir(parents=True, exist_ok=True)
    conn = sqlite3.connect(db)
    with conn:
        conn.execute("CREATE TABLE kbqa_schema_version (version INTEGER NOT NULL)")
        conn.execute("INSERT INTO kbqa_schema_version VALUES (999)")
        conn.execute("CREATE TABLE knowledge_base (id INTEGER PRIMARY KEY, name TEXT, embed_model TEXT, embed_dim INT)")
    conn.close()


@pytest.mark.slow
@pytest.mark.parametrize(("make", "says"), [(_foreign, "neither kbqa's nor"), (_newer, "newer kbqa")])
def test_foreign_or_newer_database_is_refused_unchanged_by_every_entry_point(
    tmp_path: Path, make: object, says: str
) -> None:
    project = _project(tmp_path / "project")
    db = project / "kb" / "info.db"
    make(db)  # type: ignore[operator]
    before = _sha(db)
    init = _init(project, "--recreate-vs")
    assert init.returncode == 1
    assert says in init.stderr and "Traceback" not in init.stderr
    assert len(init.stderr.strip().splitlines()) == 1, init.stderr
    cleared = _init(project, "--clear-tables")
    assert cleared.returncode == 1 and says in cleared.stderr
    api = _run(project, "-m", "kbqa.api", "--port", str(free_port()), "--log-level", "warning", timeout=120)
    assert api.returncode == 1
    assert says in api.stderr and "Traceback" not in api.stderr
    assert _sha(db) == before
    # no WAL files, no backup (.locks is kbqa's lock folder, not part of the database)
    assert sorted(p.name for p in db.parent.iterdir() if p.name != ".locks") == ["info.db"]
