"""Which engine `backend: auto` gives a model, and what happens when llama.cpp is missing or cannot read a file."""

from __future__ import annotations

import logging
import sys
from pathlib import Path

import pytest

from kbqa.llm.backends.loader import LLAMA_CPP_MIN_GGUF_BYTES, _auto_backend, load_backend
from kbqa.llm.backends.model_files import bundled_gguf_path
from kbqa.llm.errors import ModelLoadError
from kbqa.llm.settings import WorkerSettings


def _sparse(path: Path, size: int) -> Path:
    with path.open("wb") as f:
        f.truncate(size)  # no blocks written: a size for the rule, not a model
    return path


def test_auto_picks_llama_cpp_for_large_gguf_on_cpu(tmp_path: Path) -> None:
    big = _sparse(tmp_path / "big.gguf", LLAMA_CPP_MIN_GGUF_BYTES)
    small = _sparse(tmp_path / "small.gguf", LLAMA_CPP_MIN_GGUF_BYTES - 1)
    cpu = WorkerSettings(device="cpu")
    assert _auto_backend(big, cpu) == "llama_cpp"
    assert _auto_backend(small, cpu) == "transformers"
    assert _auto_backend(bundled_gguf_path(), cpu) == "transformers"
    assert _auto_backend(big, WorkerSettings(device="cuda")) == "transformers"
    assert _auto_backend(tmp_path, cpu) == "transformers"  # a folder


def test_missing_llama_cpp_falls_back_to_transformers_with_a_warning(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    # None in sys.modules makes `import llama_cpp` raise ImportError, as on a machine where the build failed.
    monkeypatch.setitem(sys.modules, "llama_cpp", None)
    with caplog.at_level(logging.WARNING):
        backend = load_backend(WorkerSettings(backend="llama_cpp", register_with_controller=False))
    try:
        assert type(backend).__name__ == "TransformersBackend"
        assert "llama_cpp backend is unavailable" in caplog.text
    finally:
        backend.close()


def test_a_gguf_llama_cpp_cannot_read_is_one_sentence(tmp_path: Path) -> None:
    pytest.importorskip("llama_cpp")
    broken = tmp_path / "broken.gguf"
    broken.write_bytes(b"GGUF" + b"\x00" * 64)
    with pytest.raises(ModelLoadError, match=r"llama\.cpp cannot read"):
        load_backend(WorkerSettings(model_path=str(broken), backend="llama_cpp", register_with_controller=False))
