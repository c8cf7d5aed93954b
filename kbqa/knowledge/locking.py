"""An exclusive lock shared by every process on this host that writes to the same knowledge base."""

from __future__ import annotations

import fcntl
import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path


@contextmanager
def process_lock(path: Path, *, blocking: bool = True) -> Iterator[bool]:
    """Block until this process holds ``path``'s lock (yields True). The OS releases it if the process dies, so a
    killed writer never leaves a knowledge base locked. With ``blocking=False`` it yields False at once when another
    writer holds the lock."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX if blocking else fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            yield False
            return
        try:
            yield True
        finally:
            fcntl.flock(fd, fcntl.LOCK_UN)
    finally:
        os.close(fd)
