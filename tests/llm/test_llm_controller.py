"""Controller: registration, heartbeats and expiry, shortest-queue dispatch with real in-flight counts."""

from __future__ import annotations

import time

from fastapi.testclient import TestClient

from kbqa.llm.controller import WorkerRegistry, create_app
from kbqa.llm.protocol import WorkerStatus
from kbqa.llm.settings import ControllerSettings


def _status(*models: str, kind: str = "chat", queue: int = 0) -> dict:
    return {"model_names": list(models), "kind": kind, "queue_length": queue, "speed": 1.0, "context_length": 2048}


def _register(client: TestClient, name: str, *models: str, **kw: object) -> dict:
    r = client.post("/register_worker", json={"worker_name": name, "worker_status": _status(*models, **kw)})
    assert r.status_code == 200, r.text
    return r.json()


def test_registration_answers_with_the_worker_record() -> None:
    with TestClient(create_app(ControllerSettings())) as client:
        body = _register(client, "http://w1", "m")
        assert body["registered"] is True
        assert body["worker"]["worker_name"] == "http://w1" and body["worker"]["model_names"] == ["m"]
        assert client.post("/list_models").json() == {"models": ["m"]}
        assert client.get("/list_models").json() == {"models": ["m"]}


def test_models_are_listed_by_kind() -> None:
    with TestClient(create_app(ControllerSettings())) as client:
        _register(client, "http://w1", "chat-a")
        _register(client, "http://w2", "chat-a")
        _register(client, "http://e1", "emb", kind="embedding")
        assert client.get("/list_language_models").json() == {"models": ["chat-a"]}
        assert client.get("/list_embedding_models").json() == {"models": ["emb"]}
        detail = {m["id"]: m for m in client.get("/list_models_detail").json()["models"]}
        assert detail["chat-a"]["workers"] == 2 and detail["emb"]["kind"] == "embedding"


def test_shortest_queue_counts_in_flight_and_release() -> None:
    with TestClient(create_app(ControllerSettings())) as client:
        _register(client, "http://w1", "m")
        _register(client, "http://w2", "m")

        def pick(**extra: object) -> str:
            return client.post("/get_worker_address", json={"model": "m", **extra}).json()["address"]

        first, second = pick(), pick()
        assert {first, second} == {"http://w1", "http://w2"}, "load spreads over both workers"
        client.post("/release_worker", json={"worker_name": first})
        assert pick() == first, "the worker whose request finished is the least loaded again"
        assert pick(exclude=["http://w1", "http://w2"]) == ""
        loads = {w["worker_name"]: w["in_flight"] for w in client.get("/list_workers").json()["workers"]}
        assert loads == {"http://w1": 1, "http://w2": 1}


def test_reported_queue_length_counts_too() -> None:
    with TestClient(create_app(ControllerSettings())) as client:
        _register(client, "http://w1", "m")
        _register(client, "http://w2", "m")
        assert client.post("/receive_heart_beat", json={"worker_name": "http://w1", "queue_length": 7}).json() == {
            "exist": True
        }
        picks = {client.post("/get_worker_address", json={"model": "m"}).json()["address"] for _ in range(3)}
        assert picks == {"http://w2"}


def test_heartbeat_from_unknown_worker_asks_it_to_register() -> None:
    with TestClient(create_app(ControllerSettings())) as client:
        r = client.post("/receive_heart_beat", json={"worker_name": "http://ghost", "queue_length": 0})
        assert r.json() == {"exist": False}


def test_failed_worker_is_removed_at_once() -> None:
    with TestClient(create_app(ControllerSettings())) as client:
        _register(client, "http://w1", "m")
        _register(client, "http://w2", "m")
        assert client.post("/remove_worker", json={"worker_name": "http://w1", "reason": "ConnectError"}).json() == {
            "removed": True
        }
        for _ in range(4):
            assert client.post("/get_worker_address", json={"model": "m"}).json()["address"] == "http://w2"


def test_unreachable_worker_cannot_register() -> None:
    with TestClient(create_app(ControllerSettings(status_timeout_s=1))) as client:
        r = client.post("/register_worker", json={"worker_name": "http://127.0.0.1:9"})
        assert r.status_code == 502
        assert r.json()["error"]["param"] == "worker_name"
        assert client.get("/list_models").json() == {"models": []}


def test_stale_workers_expire() -> None:
    registry = WorkerRegistry(expiration_s=30)
    registry.register("http://old", WorkerStatus(model_names=["m"]), check_heart_beat=True)
    registry.register("http://pinned", WorkerStatus(model_names=["m"]), check_heart_beat=False)
    registry.register("http://fresh", WorkerStatus(model_names=["m"]), check_heart_beat=True)
    registry.workers["http://old"].last_heart_beat -= 31
    registry.workers["http://pinned"].last_heart_beat -= 31
    assert registry.expire() == ["http://old"]
    assert set(registry.workers) == {"http://pinned", "http://fresh"}


def test_sweeper_expires_without_any_request() -> None:
    settings = ControllerSettings(heartbeat_expiration_s=0.3, sweep_interval_s=0.1)
    with TestClient(create_app(settings)) as client:
        _register(client, "http://w1", "m")
        deadline = time.monotonic() + 5
        while client.get("/list_models").json()["models"] and time.monotonic() < deadline:
            time.sleep(0.05)
        assert client.get("/list_models").json() == {"models": []}


def test_reregistration_keeps_in_flight_count() -> None:
    registry = WorkerRegistry(expiration_s=30)
    registry.register("http://w", WorkerStatus(model_names=["m"]), check_heart_beat=True)
    assert registry.pick("m", set()) is not None
    registry.register("http://w", WorkerStatus(model_names=["m"]), check_heart_beat=True)
    assert registry.workers["http://w"].in_flight == 1
