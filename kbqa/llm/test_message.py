"""``kbqa test-message --model-name NAME`` (FastChat's ``python -m fastchat.serve.test_message``): does a freshly
started worker really answer?

It asks the controller to refresh its workers and for one serving NAME, sends a short chat message straight to that
worker's ``/worker_generate_stream``, prints the reply as it streams and the timing, and exits non-zero with the
reason when any step fails (controller down, no worker for the model, worker unreachable or erroring, empty reply).

Run: ``kbqa test-message --model-name SmolLM2-135M-Instruct`` or ``python -m kbqa.llm.test_message ...``.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, TextIO

import httpx

from kbqa.errors import KBQAError

DEFAULT_MESSAGE = "Say hello and introduce yourself in one sentence."


@dataclass
class Timing:
    completion_tokens: int
    first_token_s: float
    total_s: float

    def summary(self) -> str:
        rate = self.completion_tokens / self.total_s if self.total_s > 0 else 0.0
        return (
            f"{self.completion_tokens} tokens in {self.total_s:.2f} s "
            f"(first token after {self.first_token_s:.2f} s, {rate:.1f} tokens/s)"
        )


def _error_detail(response: httpx.Response) -> str:
    try:
        payload: Any = response.json()
    except ValueError:
        return response.text[:300]
    if isinstance(payload, dict) and isinstance(payload.get("error"), dict):
        return str(payload["error"].get("message"))
    return str(payload)[:300]


def _controller_call(http: httpx.Client, controller: str, path: str, body: dict[str, Any] | None = None) -> Any:
    try:
        r = http.post(f"{controller}{path}", json=body)
    except httpx.TransportError as exc:
        raise KBQAError(
            f"cannot reach the controller at {controller} ({type(exc).__name__}): is it running? "
            "(python -m kbqa.llm.controller)"
        ) from exc
    if r.status_code != 200:
        raise KBQAError(f"the controller answered {path} with HTTP {r.status_code}: {_error_detail(r)}")
    return r.json()


def _stream_reply(http: httpx.Client, worker: str, body: dict[str, Any], out: TextIO) -> tuple[str, Timing]:
    started = time.perf_counter()
    first_token: float | None = None
    text: list[str] = []
    usage: dict[str, Any] = {}
    try:
        with http.stream("POST", f"{worker}/worker_generate_stream", json=body) as r:
            if r.status_code != 200:
                r.read()
                raise KBQAError(f"worker {worker} refused the message: HTTP {r.status_code}: {_error_detail(r)}")
            for line in r.iter_lines():
                if not line.strip():
                    continue
                event = json.loads(line)
                if event.get("error"):
                    raise KBQAError(f"worker {worker} failed while generating: {event['error'].get('message')}")
                if event.get("text"):
                    first_token = first_token if first_token is not None else time.perf_counter() - started
                    text.append(event["text"])
                    out.write(event["text"])
                    out.flush()
                if event.get("finish_reason"):
                    usage = event.get("usage") or {}
    except httpx.TransportError as exc:
        raise KBQAError(f"cannot reach worker {worker} ({type(exc).__name__}: {exc})") from exc
    finally:
        out.write("\n")
    total = time.perf_counter() - started
    timing = Timing(int(usage.get("completion_tokens", 0)), first_token if first_token is not None else total, total)
    return "".join(text), timing


def send_test_message(
    controller: str,
    model: str,
    message: str = DEFAULT_MESSAGE,
    *,
    max_tokens: int = 32,
    temperature: float = 0.0,
    timeout_s: float = 120.0,
    out: TextIO = sys.stdout,
) -> Timing:
    """Run the check, printing as it goes; raises :class:`KBQAError` with the reason when it fails."""
    controller = controller.rstrip("/")
    with httpx.Client(timeout=httpx.Timeout(timeout_s, connect=5.0)) as http:
        # As FastChat did: drop workers that stopped answering, so the pick below is a live one.
        _controller_call(http, controller, "/refresh_all_workers")
        models = _controller_call(http, controller, "/list_models")["models"]
        print(f"models: {', '.join(models) or '(none)'}", file=out)
        if model not in models:
            known = ", ".join(models) if models else "nothing (no worker is registered)"
            raise KBQAError(f"no worker serves {model!r}; the controller at {controller} knows {known}")
        worker = _controller_call(http, controller, "/get_worker_address", {"model": model})["address"]
        if not worker:
            raise KBQAError(f"no worker serves {model!r} any more (it left between two calls)")
        print(f"worker: {worker}", file=out)
        print(f"user: {message}", file=out)
        out.write("assistant: ")
        out.flush()
        body = {
            "model": model,
            "messages": [{"role": "user", "content": message}],
            "params": {"max_tokens": max_tokens, "temperature": temperature},
        }
        try:
            text, timing = _stream_reply(http, worker.rstrip("/"), body, out)
        finally:
            # The pick counted a request in flight on that worker; give it back whatever happened.
            with contextlib.suppress(httpx.HTTPError):
                http.post(f"{controller}/release_worker", json={"worker_name": worker})
    if not text.strip():
        raise KBQAError(f"worker {worker} answered with no text ({timing.completion_tokens} tokens)")
    print(f"ok: {timing.summary()}", file=out, flush=True)
    return timing


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--model-name", required=True, help="model to check, as the worker serves it")
    parser.add_argument(
        "--controller-address", help="controller URL (default: llm.openai_server.controller_address, :21001)"
    )
    parser.add_argument("--message", default=DEFAULT_MESSAGE, help="what to send")
    parser.add_argument("--max-new-tokens", type=int, default=32, help="longest reply, in tokens")
    parser.add_argument("--temperature", type=float, default=0.0, help="0: greedy, the same reply every time")
    parser.add_argument("--timeout", type=float, default=120.0, help="seconds to wait for the controller and worker")


def run(args: argparse.Namespace) -> int:
    from kbqa.settings import load_settings

    controller = args.controller_address or load_settings(args.config).llm.openai_server.controller_address
    send_test_message(
        controller,
        args.model_name,
        args.message,
        max_tokens=args.max_new_tokens,
        temperature=args.temperature,
        timeout_s=args.timeout,
    )
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m kbqa.llm.test_message", description=__doc__.split("\n\n")[0])
    parser.add_argument("--config", help="settings YAML (default: $KBQA_CONFIG or ./configs/settings.yaml)")
    add_arguments(parser)
    args = parser.parse_args(argv)
    try:
        return run(args)
    except KBQAError as exc:
        print(f"error: {exc.message}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    raise SystemExit(main())
