"""The launcher's failure paths and clean-up, on real child processes: a busy port, a service that dies while
starting, a launcher killed with SIGKILL. The full `startup.py -a` run is in test_startup_e2e.py."""

from __future__ import annotations

import os
import signal
import socket
import time
from pathlib import Path

import yaml

from kbqa.launcher.main import build_parser, selection_from
from kbqa.launcher.services import ALL_SERVICES, LLM_SERVICES, plan
from kbqa.settings import load_settings
from tests.launcher.launch_root import alive, children_of, make_root, port_free, read_until, stop


def _selection(*flags: str):  # type: ignore[no-untyped-def]
    return selection_from(build_parser().parse_args(list(flags)))


def test_flags_select_services_like_chatchat() -> None:
    assert _selection("-a").services == frozenset(ALL_SERVICES)
    assert _selection("--all-api").services == frozenset((*LLM_SERVICES, "api"))
    assert _selection("--llm-api").services == frozenset(LLM_SERVICES)
    assert _selection("--api", "-w").services == frozenset({"api", "webui"})
    assert _selection("-c", "-m").services == frozenset({"controller", "model_worker"})


def test_external_endpoint_replaces_local_llm_services(tmp_path: Path) -> None:
    root = make_root(tmp_path, samples=False)
    settings = load_settings(root.config)
    selection = _selection("-a", "--openai-api-base", "http://gpu-box:8000/v1", "--openai-api-key", "k", "-n", "qwen")
    specs = plan(settings, selection, str(root.config))
    assert [s.name for s in specs] == ["api", "webui"]
    api = specs[0]
    assert api.env == {
        "KBQA_LLM__CLIENT__BASE_URL": "http://gpu-box:8000/v1",
        "KBQA_LLM__CLIENT__API_KEY": "k",
        "KBQA_LLM__CLIENT__MODEL": "qwen",
    }
    # The UI is pointed at the API server's configured port, whatever the defaults say.
    assert f"http://127.0.0.1:{root.ports['api']}" in specs[1].argv


def test_local_services_are_wired_to_each_other(tmp_path: Path) -> None:
    root = make_root(tmp_path, samples=False)
    specs = {s.name: s for s in plan(load_settings(root.config), _selection("-a"), str(root.config))}
    controller = f"http://127.0.0.1:{root.ports['controller']}"
    for name in ("model_worker", "openai_api"):
        argv = specs[name].argv
        assert argv[argv.index("--controller-address") + 1] == controller
    assert specs["api"].env["KBQA_LLM__CLIENT__BASE_URL"] == f"http://127.0.0.1:{root.ports['openai']}/v1"
    assert specs["api"].env["KBQA_LLM__OPENAI_SERVER__CONTROLLER_ADDRESS"] == controller


def test_busy_port_is_refused_before_anything_starts(tmp_path: Path) -> None:
    root = make_root(tmp_path, samples=False)
    with socket.socket() as holder:
        holder.bind(("127.0.0.1", root.ports["api"]))
        holder.listen()
        proc = root.start("--api")
        out, _ = proc.communicate(timeout=60)
    assert proc.returncode == 1
    assert f"api (127.0.0.1:{root.ports['api']})" in out
    assert "port already in use" in out
    assert not (root.root / "logs" / "api.log").exists(), "nothing may be started when a port is taken"


def test_service_failing_at_start_is_named_with_its_log_and_the_rest_stopped(tmp_path: Path) -> None:
    root = make_root(tmp_path, samples=False)
    proc = root.start("--llm-api", "--model-path", str(tmp_path / "no-such-model.gguf"))
    out, _ = proc.communicate(timeout=120)
    assert proc.returncode == 1, out
    log = root.root / "logs" / "model_worker.log"
    assert "model_worker exited with code" in out and str(log) in out
    assert "no-such-model.gguf" in log.read_text()
    assert port_free(root.ports["controller"]) and port_free(root.ports["openai"])


def test_sigterm_stops_children_and_frees_ports(tmp_path: Path) -> None:
    root = make_root(tmp_path, samples=False)
    proc = root.start("-c", "-o")
    read_until(proc, r"Press Ctrl-C", timeout=60)
    kids = children_of(proc.pid)
    assert len(kids) >= 2
    out = stop(proc, signal.SIGTERM)
    assert proc.returncode == 0
    assert "all services stopped" in out
    assert not any(alive(pid) for pid in kids)
    assert port_free(root.ports["controller"]) and port_free(root.ports["openai"])


def test_sigint_stops_everything_even_when_inherited_as_ignored(tmp_path: Path) -> None:
    """A shell's background job starts with SIGINT ignored; a SIGINT to the launcher still stops it all."""
    root = make_root(tmp_path, samples=False)
    proc = root.start("-c", "-o", sigint_ignored=True)
    read_until(proc, r"Press Ctrl-C", timeout=60)
    kids = children_of(proc.pid)
    assert len(kids) >= 2
    out = stop(proc, signal.SIGINT)
    assert proc.returncode == 0 and "all services stopped" in out
    assert not any(alive(pid) for pid in kids)
    assert port_free(root.ports["controller"]) and port_free(root.ports["openai"])


def test_killed_launcher_leaves_no_orphans(tmp_path: Path) -> None:
    """Even SIGKILL, which the launcher cannot catch, takes its services down (PR_SET_PDEATHSIG)."""
    root = make_root(tmp_path, samples=False)
    proc = root.start("-c")
    read_until(proc, r"Press Ctrl-C", timeout=60)
    kids = children_of(proc.pid)
    assert kids
    proc.kill()
    proc.wait(10)
    deadline = time.monotonic() + 20
    while any(alive(pid) for pid in kids) and time.monotonic() < deadline:
        time.sleep(0.2)
    assert not any(alive(pid) for pid in kids)
    assert port_free(root.ports["controller"])


def test_nothing_selected_is_a_usage_error(tmp_path: Path) -> None:
    root = make_root(tmp_path, samples=False)
    proc = root.start()
    out, _ = proc.communicate(timeout=60)
    assert proc.returncode == 2
    assert "nothing to start" in out


def test_readiness_deadline_names_the_late_service(tmp_path: Path) -> None:
    # The worker needs seconds to load its model; a 1-second deadline must fail and say who was late.
    root = make_root(tmp_path, samples=False)
    proc = root.start("-c", "-m", "--ready-timeout", "1")
    out, _ = proc.communicate(timeout=120)
    assert proc.returncode == 1, out
    assert "not ready after 1 s: model_worker" in out
    assert port_free(root.ports["controller"]) and port_free(root.ports["worker"])


def test_keys_follow_the_services_that_require_them(tmp_path: Path) -> None:
    root = make_root(tmp_path, samples=False)
    config = yaml.safe_load(root.config.read_text())
    config["api"]["api_keys"] = ["api-secret"]
    config["llm"]["openai_server"]["api_keys"] = ["llm-secret"]
    root.config.write_text(yaml.safe_dump(config))
    specs = {s.name: s for s in plan(load_settings(root.config), _selection("-a"), str(root.config))}
    assert specs["api"].env["KBQA_LLM__CLIENT__API_KEY"] == "llm-secret"
    assert specs["webui"].env == {"KBQA_WEBUI__API_KEY": "api-secret"}
    # With scoped keys the UI started alongside gets the widest one (a plain string key is admin).
    config["api"]["api_keys"] = [{"key": "reader", "scope": "read"}, {"key": "kb1-admin", "knowledge_bases": ["kb1"]}]
    config["api"]["api_keys"].append("api-secret")
    root.config.write_text(yaml.safe_dump(config))
    specs = {s.name: s for s in plan(load_settings(root.config), _selection("-a"), str(root.config))}
    assert specs["webui"].env == {"KBQA_WEBUI__API_KEY": "api-secret"}
    # An external endpoint keeps its own key; the local server's is not sent elsewhere.
    external = _selection("--api", "--openai-api-base", "http://gpu-box:8000/v1")
    (api,) = plan(load_settings(root.config), external, str(root.config))
    assert "KBQA_LLM__CLIENT__API_KEY" not in api.env


def test_a_service_dying_after_start_stops_the_rest_and_is_named(tmp_path: Path) -> None:
    root = make_root(tmp_path, samples=False)
    proc = root.start("-c", "-o")
    read_until(proc, r"Press Ctrl-C", timeout=60)
    kids = children_of(proc.pid)
    controller = next(pid for pid in kids if f"--port {root.ports['controller']}" in _cmdline(pid))
    os.kill(controller, signal.SIGKILL)
    out, _ = proc.communicate(timeout=60)
    assert proc.returncode == 1
    assert "controller exited with code -9" in out and str(root.root / "logs" / "controller.log") in out
    assert not any(alive(pid) for pid in kids)
    assert port_free(root.ports["openai"])


def _cmdline(pid: int) -> str:
    return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode()
