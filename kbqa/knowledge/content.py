"""A knowledge base's folder on disk: ``<kb_root>/<kb>/content`` (the files) and ``vector_store/<model>`` (indexes).

Every path is built with :func:`resolve_inside`, so nothing here can reach outside the KB's folder.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import shutil
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

from kbqa.atomic_file import TEMP_PREFIX, atomic_writer
from kbqa.errors import FileExistsInKB, FileTooLarge, InvalidPath, KBQAError
from kbqa.knowledge.naming import normalize_relative_path, resolve_inside, validate_kb_name

# Chatchat skips these when rebuilding from a folder: editor swap files, Office lock files, temp files.
_SKIPPED_PREFIXES = (".", "~$", "temp", "tmp")
_COPY_CHUNK = 1 << 20
_CHATCHAT_INDEX_FILES = ("index.faiss", "index.pkl")


@dataclass(frozen=True, slots=True)
class FileDigest:
    sha256: str
    size: int
    mtime: float


def digest_file(path: Path) -> FileDigest:
    h = hashlib.sha256()
    with path.open("rb") as fh:
        for block in iter(lambda: fh.read(_COPY_CHUNK), b""):
            h.update(block)
        st = os.fstat(fh.fileno())
    return FileDigest(h.hexdigest(), st.st_size, st.st_mtime)


@dataclass(frozen=True)
class KBFolder:
    root: Path  # <kb_root>/<kb>

    @classmethod
    def of(cls, kb_root: Path, kb_name: str) -> KBFolder:
        name = validate_kb_name(kb_name)
        base = kb_root.resolve()
        folder = (base / name).resolve()
        if folder.parent != base:
            raise InvalidPath("knowledge base folder escapes the knowledge-base root")
        return cls(folder)

    @property
    def content(self) -> Path:
        return self.root / "content"

    def vector_store(self, embed_model: str) -> Path:
        # Model names may be paths (a local folder); keep one safe path segment.
        safe = "".join(c if c.isalnum() or c in "-_." else "_" for c in embed_model.strip("/").replace("/", "__"))
        return self.root / "vector_store" / (safe.lstrip(".") or "model")

    def ensure(self) -> None:
        self.content.mkdir(parents=True, exist_ok=True)

    def file_path(self, rel_path: str) -> Path:
        return resolve_inside(self.content, rel_path)

    def exists(self, rel_path: str) -> bool:
        return self.file_path(rel_path).is_file()

    def scan(self) -> Iterator[tuple[str, Path | KBQAError]]:
        """Every candidate file under content/ as (relative path, absolute path or the error that rejects it)."""
        if not self.content.is_dir():
            return
        base = self.content.resolve()
        for dirpath, dirnames, filenames in os.walk(base, followlinks=False):
            dirnames[:] = sorted(d for d in dirnames if not d.startswith(_SKIPPED_PREFIXES))
            for fname in sorted(filenames):
                if fname.startswith(_SKIPPED_PREFIXES):
                    continue
                rel = Path(dirpath, fname).relative_to(base).as_posix()
                try:
                    path = resolve_inside(base, rel)
                    if not path.is_file():
                        raise InvalidPath(f"{rel} is not a regular file")
                except KBQAError as exc:
                    yield rel, exc
                    continue
                yield normalize_relative_path(rel), path

    def save_stream(self, rel_path: str, source: BinaryIO, *, override: bool, max_bytes: int) -> tuple[Path, int]:
        """Stream an upload into place: temp file in the KB folder, size-checked, fsynced, then renamed.

        A killed upload leaves only a temp file (ignored by scans and removed by :meth:`clean_temp`), never a
        truncated document under its real name.
        """
        target = self.file_path(rel_path)
        if target.exists() and not override:
            raise FileExistsInKB(f"file {rel_path} already exists")
        self.ensure()
        target.parent.mkdir(parents=True, exist_ok=True)
        if not target.parent.resolve().is_relative_to(self.content.resolve()):
            raise InvalidPath("file path escapes the knowledge base folder")
        written = 0
        with atomic_writer(target, temp_dir=self.root) as out:
            while block := source.read(_COPY_CHUNK):
                written += len(block)
                if written > max_bytes:
                    raise FileTooLarge(f"file {rel_path} is larger than {max_bytes // (1 << 20)} MiB")
                out.write(block)
        return target, written

    def delete_file(self, rel_path: str) -> bool:
        path = self.file_path(rel_path)
        if path.is_file():
            path.unlink()
            self._prune_empty_dirs(path.parent)
            return True
        return False

    def _prune_empty_dirs(self, folder: Path) -> None:
        content = self.content.resolve()
        while folder != content and folder.is_relative_to(content):
            try:
                folder.rmdir()
            except OSError:
                return
            folder = folder.parent

    def clean_temp(self) -> None:
        for tmp in self.root.glob(f"{TEMP_PREFIX}*"):
            with contextlib.suppress(OSError):
                tmp.unlink()

    def chatchat_vector_stores(self) -> list[Path]:
        """Langchain-Chatchat 0.2's FAISS indexes of this KB: ``vector_store/<model>/`` folders (or, before 0.2.4,
        files right in ``vector_store/``) holding an ``index.pkl``, which kbqa never writes nor reads. In a folder
        kbqa also uses (same model name) only Chatchat's two files count."""
        indexes = self.root / "vector_store"
        if not indexes.is_dir() or indexes.is_symlink():
            return []
        found = _chatchat_files(indexes)
        for child in sorted(indexes.iterdir()):
            if child.is_dir() and not child.is_symlink() and (child / "index.pkl").is_file():
                found += _chatchat_files(child) if (child / "CURRENT").exists() else [child]
        return found

    def remove_chatchat_vector_stores(self) -> list[Path]:
        removed = self.chatchat_vector_stores()
        for path in removed:
            if path.is_dir():
                shutil.rmtree(path)
            else:
                path.unlink()
        return removed

    def remove_indexes(self) -> None:
        """Remove kbqa's saved indexes; Chatchat's old ones stay until the user asks for them to go."""
        indexes = self.root / "vector_store"
        if not indexes.is_dir() or indexes.is_symlink():
            return
        kept = set(self.chatchat_vector_stores())
        if not kept:
            shutil.rmtree(indexes)
            return
        for child in indexes.iterdir():
            inner = [k for k in kept if k.parent == child]
            if child in kept:
                continue
            if inner:
                for item in child.iterdir():
                    if item not in kept:
                        _remove(item)
            else:
                _remove(child)

    def remove_all(self) -> None:
        if self.root.is_dir() and not self.root.is_symlink():
            shutil.rmtree(self.root)
        elif self.root.is_symlink():
            self.root.unlink()


def _chatchat_files(folder: Path) -> list[Path]:
    if not (folder / "index.pkl").is_file():
        return []
    return [folder / n for n in _CHATCHAT_INDEX_FILES if (folder / n).is_file()]


def _remove(path: Path) -> None:
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path)
    else:
        path.unlink()
