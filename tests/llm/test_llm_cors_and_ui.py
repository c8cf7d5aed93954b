"""The OpenAI server's browser side without a model: the web client page at /ui (no key needed, everything else
still guarded), CORS for listed origins only with credentials, and origin lists that cannot be unsafe."""

from __future__ import annotations

import subprocess
import sys

import pytest
from fastapi.testclient import TestClient
from pydantic import SecretStr, ValidationError

from kbqa.api.settings import APISettings
from kbqa.llm.openai_server import WEB_CLIENT_PAGE, create_app
from kbqa.llm.settings import OpenAIServerSettings

KEY = "k-123"
ORIGIN = "http://localhost:5500"
PREFLIGHT = {"Access-Control-Request-Method": "POST", "Access-Control-Request-Headers": "authorization,content-type"}


def client(**settings: object) -> TestClient:
    base = {"api_keys": [SecretStr(KEY)], "controller_address": "http://127.0.0.1:9", **settings}
    return TestClient(create_app(OpenAIServerSettings.model_validate(base)))


def test_page_is_served_without_a_key_and_the_api_still_needs_one() -> None:
    with client() as c:
        for path in ("/ui", "/ui/"):
            r = c.get(path)
            assert r.status_code == 200 and r.headers["content-type"].startswith("text/html")
            assert r.text == WEB_CLIENT_PAGE.read_text(encoding="utf-8")
        assert c.get("/v1/models").status_code == 401
        assert c.get("/ui/../v1/models").status_code == 401
        assert c.get("/uix").status_code == 401


def test_page_can_be_switched_off() -> None:
    with client(web_client=False) as c:
        assert c.get("/ui").status_code == 401
    with TestClient(create_app(OpenAIServerSettings(web_client=False))) as c:
        assert c.get("/ui").status_code == 404


def test_cors_answers_listed_origins_only_with_credentials() -> None:
    with client(allowed_origins=[ORIGIN + "/"]) as c:
        r = c.options("/v1/chat/completions", headers={**PREFLIGHT, "Origin": ORIGIN})
        assert r.status_code == 200
        assert r.headers["access-control-allow-origin"] == ORIGIN
        assert r.headers["access-control-allow-credentials"] == "true"
        r = c.options("/v1/chat/completions", headers={**PREFLIGHT, "Origin": "http://evil.example"})
        assert r.status_code == 400 and "access-control-allow-origin" not in r.headers
        # A refused key still reaches the page with CORS headers, so it can say why.
        r = c.get("/v1/models", headers={"Origin": ORIGIN})
        assert r.status_code == 401 and r.headers["access-control-allow-origin"] == ORIGIN
    with client() as c:  # no origins listed: no CORS at all
        r = c.options("/v1/chat/completions", headers={**PREFLIGHT, "Origin": ORIGIN})
        assert "access-control-allow-origin" not in r.headers


@pytest.mark.parametrize("origin", ["*", "null", "localhost:5500", "http://host/path", "ftp://host", "http://h?x=1"])
def test_unsafe_or_malformed_origins_are_refused(origin: str) -> None:
    with pytest.raises(ValidationError):
        OpenAIServerSettings(allowed_origins=[origin])
    with pytest.raises(ValidationError):
        APISettings(cors_origins=[origin])


def test_origins_are_normalised() -> None:
    assert OpenAIServerSettings(allowed_origins=["HTTP://LocalHost:5500/"]).allowed_origins == ["http://localhost:5500"]


def test_the_flag_is_checked_like_the_settings_file() -> None:
    out = subprocess.run(
        [sys.executable, "-m", "kbqa.llm.openai_server", "--allowed-origins", "*"],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert out.returncode == 2
    assert "allowed_origins" in out.stderr and "'*' is not allowed" in out.stderr and "Traceback" not in out.stderr
