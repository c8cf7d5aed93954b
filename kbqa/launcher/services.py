"""Which services a ``startup.py`` invocation runs, with their command lines, wiring and readiness probes.

The launcher is the one place that wires the processes together: ports come from the settings, and every child is
told explicitly where its peers are (controller address, the API server's LLM endpoint, the UI's API URL), so a
port changed in ``configs/settings.yaml`` moves every reference to it at once.
"""

from __future__ import annotations

import sys
from dataclasses import dataclass

import httpx

from kbqa.launcher.supervisor import Probe, ServiceSpec, connect_host
from kbqa.llm.model_catalog import CATALOG, resolve
from kbqa.settings import Settings

LLM_SERVICES = ("controller", "model_worker", "openai_api")
ALL_SERVICES = (*LLM_SERVICES, "api", "webui")


@dataclass(frozen=True)
class Selection:
    """What to run, as startup.py's flags say it."""

    services: frozenset[str]
    model_name: str | None = None
    model_path: str | None = None
    device: str | None = None
    # An external OpenAI-compatible endpoint (vLLM, Ollama, a cloud API): the local LLM services are not started.
    openai_api_base: str | None = None
    openai_api_key: str | None = None

    @property
    def external_llm(self) -> bool:
        return self.openai_api_base is not None


def service_url(host: str, port: int) -> str:
    h = connect_host(host)
    return f"http://[{h}]:{port}" if ":" in h else f"http://{h}:{port}"


def answers_ok(path: str, headers: dict[str, str] | None = None) -> Probe:
    def probe(client: httpx.Client, base: str) -> bool:
        return client.get(base + path, headers=headers).status_code == 200

    return probe


def _bearer(key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}


def worker_registered(client: httpx.Client, base: str) -> bool:
    # The worker answers HTTP only after its model is loaded; it is usable once the controller has accepted it.
    detail = client.get(base + "/health").json().get("detail", {})
    return bool(detail.get("registered"))


def plan(settings: Settings, selection: Selection, config_file: str | None) -> list[ServiceSpec]:
    """The services to start, in start order (each one's dependencies before it)."""
    llm = settings.llm
    py = sys.executable
    common = ["--config", config_file] if config_file else []
    wanted = selection.services
    local_llm = not selection.external_llm
    controller_url = service_url(llm.controller.host, llm.controller.port)
    openai_url = service_url(llm.openai_server.host, llm.openai_server.port)
    api_url = service_url(settings.api.host, settings.api.port)
    specs: list[ServiceSpec] = []

    def listen(host: str, port: int) -> list[str]:
        return [*common, "--host", host, "--port", str(port)]

    if local_llm and "controller" in wanted:
        c = llm.controller
        argv = [py, "-m", "kbqa.llm.controller", *listen(c.host, c.port)]
        specs.append(ServiceSpec("controller", argv, c.host, c.port, answers_ok("/health"), controller_url))
    if local_llm and "model_worker" in wanted:
        w = llm.worker
        worker_url = service_url(w.host, w.port)
        argv = [py, "-m", "kbqa.llm.worker", *listen(w.host, w.port)]
        argv += ["--controller-address", controller_url, "--worker-address", worker_url]
        for flag, value in (
            ("--model-path", selection.model_path),
            ("--model-names", selection.model_name),
            ("--device", selection.device),
        ):
            if value:
                argv += [flag, value]
        specs.append(ServiceSpec("model_worker", argv, w.host, w.port, worker_registered, worker_url))
    if local_llm and "openai_api" in wanted:
        o = llm.openai_server
        argv = [py, "-m", "kbqa.llm.openai_server", *listen(o.host, o.port), "--controller-address", controller_url]
        probe = answers_ok("/health", _bearer(o.api_keys[0].get_secret_value()) if o.api_keys else None)
        specs.append(ServiceSpec("openai_api", argv, o.host, o.port, probe, openai_url))
    if "api" in wanted:
        a = settings.api
        key = a.widest_key()
        probe = answers_ok("/ready", _bearer(key) if key else None)
        argv = [py, "-m", "kbqa.api", *listen(a.host, a.port)]
        env = _api_llm_env(settings, selection, openai_url)
        if local_llm:  # where the API server asks which models run (/llm_model/list_running_models)
            env["KBQA_LLM__OPENAI_SERVER__CONTROLLER_ADDRESS"] = controller_url
        specs.append(ServiceSpec("api", argv, a.host, a.port, probe, api_url, env=env))
    if "webui" in wanted:
        specs.append(_webui_spec(settings, api_url, common))
    return specs


def _api_llm_env(settings: Settings, selection: Selection, openai_url: str) -> dict[str, str]:
    """Point the API server's LLM client at the local OpenAI server, or at the external endpoint; with a key the
    local OpenAI server accepts when it requires one and the client has none of its own."""
    env = {"KBQA_LLM__CLIENT__BASE_URL": selection.openai_api_base or f"{openai_url}/v1"}
    local_keys = settings.llm.openai_server.api_keys
    if selection.openai_api_key:
        env["KBQA_LLM__CLIENT__API_KEY"] = selection.openai_api_key
    elif not selection.external_llm and local_keys and settings.llm.client.api_key is None:
        env["KBQA_LLM__CLIENT__API_KEY"] = local_keys[0].get_secret_value()
    model = selection.model_name or (_catalog_served_name(settings, selection) if not selection.external_llm else None)
    if model:
        env["KBQA_LLM__CLIENT__MODEL"] = model
    return env


def check_worker_model(settings: Settings, selection: Selection) -> None:
    """Fail before anything starts when the worker is to serve a catalog model that is not installed: the
    `kbqa models install` hint belongs on the terminal, not at the end of the worker's log."""
    model = selection.model_path or settings.llm.worker.model_path
    if model in CATALOG and "model_worker" in selection.services and not selection.external_llm:
        resolve(model, settings.llm.worker.models_dir)


def _catalog_served_name(settings: Settings, selection: Selection) -> str | None:
    """The name the local worker serves a catalog model under (its catalog name), so the API server asks for the
    model the worker was started with rather than the configured default. None for a path, or when the worker's
    names are configured (then llm.client.model is the operator's to match, as before)."""
    worker = settings.llm.worker
    entry = CATALOG.get(selection.model_path or worker.model_path or "")
    if entry is None or worker.model_names or "model_worker" not in selection.services:
        return None
    return entry.served_name


def _webui_spec(settings: Settings, api_url: str, common: list[str]) -> ServiceSpec:
    from kbqa.webui.launch import streamlit_argv

    ui = settings.webui
    url = service_url(ui.host, ui.port)
    argv = streamlit_argv(ui.host, ui.port, api_url=api_url, extra=common)
    env = {}
    if settings.api.api_keys and ui.api_key is None:
        # The UI started with the API server it talks to gets one of its keys, so `startup.py -a` works with
        # api.api_keys set and nobody has to type the key into the sidebar.
        env["KBQA_WEBUI__API_KEY"] = settings.api.widest_key() or ""
    return ServiceSpec("webui", argv, ui.host, ui.port, answers_ok("/_stcore/health"), url, env=env)
