"""Error answers, route by route: OpenAI's envelope with a real status, and the official client's exception types."""

from __future__ import annotations

from typing import Any

import httpx
import openai
import pytest
from llm_topology import API_KEY, CHAT_MODEL, EMBED_MODEL, Service

pytestmark = pytest.mark.slow

AUTH = {"Authorization": f"Bearer {API_KEY}"}
CHAT_OK = {"model": CHAT_MODEL, "messages": [{"role": "user", "content": "Hi"}], "max_tokens": 1}
COMPLETION_OK = {"model": CHAT_MODEL, "prompt": "Hi", "max_tokens": 1}
EMBED_OK = {"model": EMBED_MODEL, "input": ["Hi"]}

ROUTES: list[tuple[str, str, dict[str, Any] | None]] = [
    ("GET", "/v1/models", None),
    ("GET", f"/v1/models/{CHAT_MODEL}", None),
    ("POST", "/v1/chat/completions", CHAT_OK),
    ("POST", "/v1/completions", COMPLETION_OK),
    ("POST", "/v1/embeddings", EMBED_OK),
    ("GET", "/health", None),
    ("GET", "/no/such/route", None),
]


def _envelope(r: httpx.Response, status: int) -> dict[str, Any]:
    assert r.status_code == status, r.text
    body = r.json()
    assert set(body) == {"error"}
    assert set(body["error"]) == {"message", "type", "param", "code"}
    assert body["error"]["message"]
    return body["error"]


def _call(server: Service, method: str, path: str, body: dict[str, Any] | None, **kw: Any) -> httpx.Response:
    return httpx.request(method, server.url + path, json=body, timeout=60, **kw)


@pytest.mark.parametrize(("method", "path", "body"), ROUTES)
def test_every_route_needs_the_key(stack: dict[str, Service], method: str, path: str, body: Any) -> None:
    server = stack["openai"]
    for headers in ({}, {"Authorization": "Bearer wrong"}, {"Authorization": API_KEY}):
        err = _envelope(_call(server, method, path, body, headers=headers), 401)
        assert err["code"] == "invalid_api_key" and err["type"] == "authentication_error"
    assert _call(server, method, path, body, headers=AUTH).status_code == (404 if "no/such" in path else 200)


def test_openai_client_sees_authentication_error(stack: dict[str, Service]) -> None:
    client = openai.OpenAI(base_url=stack["openai"].url + "/v1", api_key="wrong", max_retries=0)
    with pytest.raises(openai.AuthenticationError) as info:
        client.models.list()
    assert info.value.code == "invalid_api_key"


@pytest.mark.parametrize(
    ("method", "path", "body"),
    [
        ("GET", "/v1/models/no-such-model", None),
        ("POST", "/v1/chat/completions", {**CHAT_OK, "model": "no-such-model"}),
        ("POST", "/v1/completions", {**COMPLETION_OK, "model": "no-such-model"}),
        ("POST", "/v1/embeddings", {**EMBED_OK, "model": "no-such-model"}),
    ],
)
def test_unknown_model_is_404(stack: dict[str, Service], method: str, path: str, body: Any) -> None:
    err = _envelope(_call(stack["openai"], method, path, body, headers=AUTH), 404)
    assert err["code"] == "model_not_found" and err["param"] == "model"


BAD_REQUESTS: list[tuple[str, dict[str, Any], str | None]] = [
    ("/v1/chat/completions", {**CHAT_OK, "temperature": 3}, "temperature"),
    ("/v1/chat/completions", {**CHAT_OK, "max_tokens": 0}, "max_tokens"),
    ("/v1/chat/completions", {**CHAT_OK, "n": 0}, "n"),
    ("/v1/chat/completions", {**CHAT_OK, "messages": []}, "messages"),
    ("/v1/chat/completions", {**CHAT_OK, "messages": [{"role": "wizard", "content": "x"}]}, None),
    ("/v1/chat/completions", {**CHAT_OK, "messages": [{"role": "user", "content": None}]}, None),
    ("/v1/chat/completions", {**CHAT_OK, "messages": [{"role": "tool", "content": "x"}]}, None),
    (
        "/v1/chat/completions",
        {**CHAT_OK, "messages": [{"role": "user", "content": [{"type": "image_url", "image_url": {"url": "x"}}]}]},
        None,
    ),
    ("/v1/chat/completions", {**CHAT_OK, "tools": [{"type": "function", "function": {"name": "f"}}]}, None),
    ("/v1/chat/completions", {**CHAT_OK, "top_logprobs": 2}, None),  # without logprobs: true
    ("/v1/chat/completions", {**CHAT_OK, "logprobs": True, "top_logprobs": 21}, "top_logprobs"),
    ("/v1/chat/completions", {**CHAT_OK, "logit_bias": {"1": 5}}, None),
    ("/v1/chat/completions", {**CHAT_OK, "response_format": {"type": "json_object"}}, None),
    ("/v1/chat/completions", {**CHAT_OK, "stream_options": {"include_usage": True}}, None),
    ("/v1/chat/completions", {**CHAT_OK, "frobnicate": 1}, "frobnicate"),
    ("/v1/chat/completions", {**CHAT_OK, "model": EMBED_MODEL}, "model"),
    ("/v1/completions", {**COMPLETION_OK, "suffix": "x"}, None),
    ("/v1/completions", {**COMPLETION_OK, "logprobs": 2}, None),
    ("/v1/completions", {**COMPLETION_OK, "best_of": 3}, None),
    ("/v1/completions", {**COMPLETION_OK, "prompt": [99999999]}, "prompt"),
    ("/v1/embeddings", {**EMBED_OK, "input": [[100300]]}, "input"),  # not a cl100k_base id
    ("/v1/embeddings", {**EMBED_OK, "input": [[100265]]}, "input"),  # a hole in cl100k_base's ids
    ("/v1/embeddings", {**EMBED_OK, "input": [[-1]]}, None),
    ("/v1/embeddings", {**EMBED_OK, "input": [[1]] * 2049}, None),
    ("/v1/embeddings", {**EMBED_OK, "input": []}, None),
    ("/v1/embeddings", {**EMBED_OK, "dimensions": 4096}, "dimensions"),
    ("/v1/embeddings", {**EMBED_OK, "encoding_format": "int8"}, "encoding_format"),
    ("/v1/embeddings", {**EMBED_OK, "model": CHAT_MODEL}, "model"),
]


@pytest.mark.parametrize(("path", "body", "param"), BAD_REQUESTS)
def test_invalid_requests_are_400(
    stack: dict[str, Service], path: str, body: dict[str, Any], param: str | None
) -> None:
    err = _envelope(_call(stack["openai"], "POST", path, body, headers=AUTH), 400)
    assert err["type"] == "invalid_request_error"
    if param is not None:
        assert err["param"] == param


def test_bad_json_is_400(stack: dict[str, Service]) -> None:
    r = httpx.post(
        stack["openai"].url + "/v1/chat/completions",
        content=b"{not json",
        headers={**AUTH, "Content-Type": "application/json"},
    )
    _envelope(r, 400)


@pytest.mark.parametrize("stream", [False, True])
def test_context_overflow_is_400(stack: dict[str, Service], stream: bool) -> None:
    client = openai.OpenAI(base_url=stack["openai"].url + "/v1", api_key=API_KEY, max_retries=0)
    with pytest.raises(openai.BadRequestError) as info:
        client.chat.completions.create(
            model=CHAT_MODEL, messages=[{"role": "user", "content": "Hi"}], max_tokens=9000, stream=stream
        )
    assert info.value.code == "context_length_exceeded"
    long_prompt = "word " * 9000
    with pytest.raises(openai.BadRequestError) as info:
        client.completions.create(model=CHAT_MODEL, prompt=long_prompt, max_tokens=1)
    assert info.value.code == "context_length_exceeded"


@pytest.mark.parametrize(
    ("path", "body"),
    [
        ("/v1/chat/completions", {**CHAT_OK, "model": "busy-model"}),
        ("/v1/chat/completions", {**CHAT_OK, "model": "busy-model", "stream": True}),
        ("/v1/completions", {**COMPLETION_OK, "model": "busy-model"}),
    ],
)
def test_overload_is_503_with_retry_after(stack: dict[str, Service], path: str, body: dict[str, Any]) -> None:
    r = _call(stack["openai"], "POST", path, body, headers=AUTH)
    err = _envelope(r, 503)
    assert err["type"] == "server_error"
    assert int(r.headers["retry-after"]) >= 0


def test_openai_client_sees_overload_as_internal_server_error(stack: dict[str, Service]) -> None:
    client = openai.OpenAI(base_url=stack["openai"].url + "/v1", api_key=API_KEY, max_retries=0)
    with pytest.raises(openai.InternalServerError) as info:
        client.chat.completions.create(model="busy-model", messages=[{"role": "user", "content": "Hi"}], max_tokens=1)
    assert info.value.status_code == 503


def test_worker_routes_answer_with_envelopes(stack: dict[str, Service]) -> None:
    worker = stack["chat"].url
    err = _envelope(httpx.post(worker + "/worker_generate", json={"model": CHAT_MODEL}), 400)
    assert err["type"] == "invalid_request_error"
    err = _envelope(httpx.post(worker + "/worker_generate", json={"model": "other", "prompt": "x"}), 404)
    assert err["code"] == "model_not_found"
    err = _envelope(httpx.post(worker + "/worker_get_embeddings", json={"model": CHAT_MODEL, "input": ["x"]}), 400)
    r = httpx.post(worker + "/worker_generate", json={"model": CHAT_MODEL, "prompt": "Hi", "params": {"max_tokens": 2}})
    assert r.status_code == 200 and r.json()["usage"]["completion_tokens"] == 2
    assert httpx.post(worker + "/count_token", json={"prompt": "Hello world"}).json()["count"] >= 2
    details = httpx.get(worker + "/model_details").json()
    # llama.cpp (a quantized dtype) allocates its slots up front and caps them at 4096; transformers uses the model's.
    assert details["context_length"] == (8192 if details["dtype"] == "float32" else 4096)
    assert details["kind"] == "chat"


def test_controller_routes_answer_with_envelopes(stack: dict[str, Service]) -> None:
    controller = stack["controller"].url
    err = _envelope(httpx.post(controller + "/register_worker", json={"worker_name": "http://127.0.0.1:9"}), 502)
    assert err["param"] == "worker_name"
    _envelope(httpx.post(controller + "/get_worker_address", json={}), 400)
    assert httpx.post(controller + "/get_worker_address", json={"model": "nope"}).json() == {"address": ""}
    assert httpx.get(controller + "/test_connection").text == "success"
