"""The one error mapping shared by the three services: envelopes, statuses, Retry-After, no leaked internals."""

from __future__ import annotations

from fastapi import FastAPI
from fastapi.testclient import TestClient

from kbqa.llm.errors import ContextOverflow, Overloaded, error_from_envelope
from kbqa.llm.http_errors import install_error_handlers
from kbqa.llm.protocol import ChatCompletionRequest


def _app() -> FastAPI:
    app = FastAPI()
    install_error_handlers(app)

    @app.get("/boom")
    async def boom() -> None:
        raise RuntimeError("secret internal detail")

    @app.get("/busy")
    async def busy() -> None:
        raise Overloaded("queue full", retry_after=3)

    @app.post("/chat")
    async def chat(body: ChatCompletionRequest) -> dict:
        return {}

    return app


def test_unexpected_exception_is_a_500_envelope_without_internals() -> None:
    with TestClient(_app(), raise_server_exceptions=False) as client:
        r = client.get("/boom")
    assert r.status_code == 500
    error = r.json()["error"]
    assert error["type"] == "server_error" and error["code"] == "internal_error"
    assert "secret" not in error["message"]


def test_overload_carries_retry_after() -> None:
    with TestClient(_app()) as client:
        r = client.get("/busy")
    assert r.status_code == 503 and r.headers["retry-after"] == "3"
    assert r.json()["error"]["code"] == "overloaded"


def test_method_not_allowed_and_unknown_route() -> None:
    with TestClient(_app()) as client:
        assert client.post("/boom").status_code == 405
        assert client.post("/boom").json()["error"]["type"] == "invalid_request_error"
        assert client.get("/nowhere").json()["error"]["code"] == "not_found"


def test_validation_names_the_parameter() -> None:
    with TestClient(_app()) as client:
        r = client.post("/chat", json={"model": "m", "messages": [{"role": "user", "content": "x"}], "top_p": 5})
    assert r.status_code == 400
    assert r.json()["error"]["param"] == "top_p"


def test_envelopes_round_trip_between_processes() -> None:
    original = ContextOverflow("too long", param="messages")
    rebuilt = error_from_envelope(400, original.to_envelope())
    assert isinstance(rebuilt, ContextOverflow)
    assert rebuilt.to_envelope() == original.to_envelope()
    assert error_from_envelope(502, "plain text").status_code == 502
