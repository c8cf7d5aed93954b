"""`python startup.py -a` end to end, as a user runs it on a fresh checkout: every service comes up on the bundled
models, the samples knowledge base is indexed on first run, a file uploaded through the API is answered from with
sources, and Ctrl-C leaves no process and no bound port behind."""

from __future__ import annotations

import json
import re
from pathlib import Path

import httpx
import pytest
import yaml

from tests.launcher.launch_root import alive, children_of, make_root, port_free, read_until, stop

pytestmark = pytest.mark.slow


def test_startup_all_then_upload_ask_and_stop(tmp_path: Path) -> None:
    root = make_root(tmp_path)
    # Keys on both servers: the launcher's readiness probe, the API server's LLM client and the UI must all get them.
    config = yaml.safe_load(root.config.read_text())
    config["api"]["api_keys"] = ["e2e-api-key"]
    config["llm"]["openai_server"]["api_keys"] = ["e2e-llm-key"]
    root.config.write_text(yaml.safe_dump(config))
    proc = root.start("-a")
    try:
        out = read_until(proc, r"Press Ctrl-C", timeout=300)
        assert re.search(r"kbqa: ready in [\d.]+ s", out)
        for port in root.ports.values():
            assert f"http://127.0.0.1:{port}" in out
        assert "first run: indexing the samples knowledge base" in out
        kids = children_of(proc.pid)
        assert len(kids) >= 5

        assert httpx.get(f"{root.api_url}/knowledge_base/list_knowledge_bases", timeout=10).status_code == 401
        with httpx.Client(base_url=root.api_url, timeout=300, headers={"Authorization": "Bearer e2e-api-key"}) as api:
            # First run: the samples knowledge base was created and indexed before the API came up.
            kbs = api.get("/knowledge_base/list_knowledge_bases").json()["data"]
            assert "samples" in kbs
            files = api.get("/knowledge_base/list_files", params={"knowledge_base_name": "samples"}).json()["data"]
            assert len(files) >= 10

            # The API server asks the launcher's controller which models run.
            running = api.post("/llm_model/list_running_models").json()["data"]
            assert [m["source"] for m in running.values()] == ["controller"]

            r = api.post("/knowledge_base/create_knowledge_base", json={"knowledge_base_name": "e2e"})
            assert r.status_code == 200, r.text
            note = "The Zephyr-9 turbine in hall C is inspected every 41 days by the night shift.\n"
            r = api.post(
                "/knowledge_base/upload_docs",
                data={"knowledge_base_name": "e2e"},
                files=[("files", ("turbine.txt", note.encode(), "text/plain"))],
            )
            assert r.status_code == 200, r.text
            assert r.json()["data"]["failed_files"] == {}

            r = api.post(
                "/chat/knowledge_base_chat",
                json={
                    "query": "How often is the Zephyr-9 turbine inspected?",
                    "knowledge_base_name": "e2e",
                    "stream": False,
                    "max_tokens": 16,
                },
            )
            assert r.status_code == 200, r.text
            event = json.loads(r.text.removeprefix("data: ").strip().splitlines()[0])
            assert event["answer"].strip()
            assert event["sources"][0]["file"] == "turbine.txt"
            assert "41 days" in event["sources"][0]["text"]

            # /v1/embeddings answers in the default stack: the OpenAI server embeds with the KBs' model itself.
            llm = {"Authorization": "Bearer e2e-llm-key"}
            openai_url = f"http://127.0.0.1:{root.ports['openai']}/v1"
            models = httpx.get(f"{openai_url}/models", headers=llm, timeout=10).json()["data"]
            assert "multilingual-e5-small" in {m["id"] for m in models}
            body = {"model": "multilingual-e5-small", "input": ["How often is the turbine inspected?"]}
            r = httpx.post(f"{openai_url}/embeddings", json=body, headers=llm, timeout=60)
            assert r.status_code == 200 and len(r.json()["data"][0]["embedding"]) == 384

            # The web UI is served (its health endpoint and the page shell).
            ui = httpx.get(f"http://127.0.0.1:{root.ports['webui']}/_stcore/health", timeout=10)
            assert ui.status_code == 200
    except BaseException:
        proc.kill()
        raise

    out = stop(proc)
    assert proc.returncode == 0, out
    assert not [pid for pid in kids if alive(pid)], "children left running after Ctrl-C"
    busy = [name for name, port in root.ports.items() if not port_free(port)]
    assert not busy, f"ports still bound after Ctrl-C: {busy}"


def test_api_server_on_an_external_openai_endpoint(tmp_path: Path) -> None:
    """`--openai-api-base`: no local controller or worker; the API server answers through the given endpoint (here a
    kbqa LLM stack started separately, standing in for vLLM or Ollama)."""
    engine = make_root(tmp_path / "engine", samples=False)
    kb_side = make_root(tmp_path / "kb", samples=False)
    llm = engine.start("--llm-api")
    api = None
    try:
        read_until(llm, r"Press Ctrl-C", timeout=300)
        base = f"http://127.0.0.1:{engine.ports['openai']}/v1"
        api = kb_side.start("--api", "--openai-api-base", base, "--model-name", "SmolLM2-135M-Instruct")
        out = read_until(api, r"Press Ctrl-C", timeout=300)
        assert "starting api (" in out and "model_worker" not in out
        with httpx.Client(base_url=kb_side.api_url, timeout=300) as http:
            assert (
                http.post("/knowledge_base/create_knowledge_base", json={"knowledge_base_name": "ext"}).status_code
                == 200
            )
            note = "The Zephyr-9 turbine in hall C is inspected every 41 days by the night shift.\n"
            files = [("files", ("turbine.txt", note.encode(), "text/plain"))]
            assert (
                http.post("/knowledge_base/upload_docs", data={"knowledge_base_name": "ext"}, files=files).status_code
                == 200
            )
            body = {"query": "How often is the turbine inspected?", "knowledge_base_name": "ext", "stream": False}
            r = http.post("/chat/knowledge_base_chat", json={**body, "max_tokens": 12})
            assert r.status_code == 200, r.text
            event = json.loads(r.text.removeprefix("data: ").strip().splitlines()[0])
            assert event["answer"].strip() and event["sources"][0]["file"] == "turbine.txt"
            running = http.post("/llm_model/list_running_models").json()["data"]
            assert "SmolLM2-135M-Instruct" in running
    except BaseException:
        llm.kill()
        if api is not None:
            api.kill()
        raise
    assert "all services stopped" in stop(api)
    assert "all services stopped" in stop(llm)
