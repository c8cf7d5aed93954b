"""Entry points: --help works for each service and names the host/port flags."""

from __future__ import annotations

import subprocess
import sys

import pytest


@pytest.mark.parametrize("module", ["kbqa.llm.controller", "kbqa.llm.worker", "kbqa.llm.openai_server"])
def test_help(module: str) -> None:
    out = subprocess.run([sys.executable, "-m", module, "--help"], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert "--host" in out.stdout and "--port" in out.stdout and "--config" in out.stdout
    if module.endswith("worker"):
        assert "--model-path" in out.stdout and "--device" in out.stdout


def test_worker_refuses_a_missing_model_in_one_line(tmp_path) -> None:  # type: ignore[no-untyped-def]
    missing = tmp_path / "no-such-model"
    out = subprocess.run(
        [sys.executable, "-m", "kbqa.llm.worker", "--model-path", str(missing), "--no-register"],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert out.returncode == 2
    assert "model path does not exist" in out.stderr and "Traceback" not in out.stderr
