"""A worker killed mid-run: the controller stops dispatching to it at once, in-flight requests are retried on
another worker or end with a clean 503 / error event."""

from __future__ import annotations

import asyncio
import json
import time

import httpx
import pytest
from llm_topology import CHAT_MODEL, Stack

pytestmark = pytest.mark.slow

PROMPT = [{"role": "user", "content": "Write a long story about a dragon."}]


async def _non_stream(client: httpx.AsyncClient) -> tuple[int, dict]:
    r = await client.post(
        "/v1/chat/completions", json={"model": CHAT_MODEL, "messages": PROMPT, "max_tokens": 24, "temperature": 0}
    )
    return r.status_code, r.json()


async def _stream(client: httpx.AsyncClient) -> list[str]:
    body = {"model": CHAT_MODEL, "messages": PROMPT, "max_tokens": 24, "temperature": 0, "stream": True}
    async with client.stream("POST", "/v1/chat/completions", json=body) as r:
        assert r.status_code in (200, 503)
        if r.status_code == 503:
            return ["503"]
        return [line async for line in r.aiter_lines() if line]


def test_killed_worker_is_dropped_and_requests_recover(new_stack: Stack) -> None:
    controller = new_stack.controller()
    new_stack.wait_http(controller)
    w1 = new_stack.worker("worker-1", controller)
    w2 = new_stack.worker("worker-2", controller)
    server = new_stack.openai_server(controller)
    new_stack.wait_for_models(controller, {CHAT_MODEL}, workers=2)
    new_stack.wait_http(server)

    async def main() -> None:
        async with httpx.AsyncClient(base_url=server.url, timeout=120) as client:
            non_stream = [asyncio.create_task(_non_stream(client)) for _ in range(4)]
            streams = [asyncio.create_task(_stream(client)) for _ in range(2)]
            # Let both workers start generating, then kill one without warning.
            deadline = time.monotonic() + 60
            while time.monotonic() < deadline:
                workers = httpx.get(controller.url + "/list_workers").json()["workers"]
                if len(workers) == 2 and all(w["in_flight"] > 0 for w in workers):
                    break
                await asyncio.sleep(0.1)
            await asyncio.sleep(1.0)
            w1.kill()
            killed_at = time.monotonic()

            # The controller learns from the first failed dispatch, not from a heartbeat 30 s later.
            while time.monotonic() - killed_at < 10:
                names = [w["worker_name"] for w in httpx.get(controller.url + "/list_workers").json()["workers"]]
                if w1.url not in names:
                    break
                await asyncio.sleep(0.05)
            assert w1.url not in names
            assert time.monotonic() - killed_at < 5
            for _ in range(5):
                address = httpx.post(controller.url + "/get_worker_address", json={"model": CHAT_MODEL}).json()
                assert address == {"address": w2.url}
                httpx.post(controller.url + "/release_worker", json={"worker_name": w2.url})

            for status, body in await asyncio.gather(*non_stream):
                # Nothing had reached these clients yet, so the ones on the dead worker were retried on the live one.
                assert status == 200, body
                assert body["choices"][0]["message"]["content"]
                assert body["usage"]["completion_tokens"] == 24 or body["choices"][0]["finish_reason"] == "stop"
            for lines in await asyncio.gather(*streams):
                if lines == ["503"]:
                    continue
                assert lines[-1] == "data: [DONE]"
                payloads = [json.loads(line[6:]) for line in lines[:-1]]
                errors = [p for p in payloads if "error" in p]
                finishes = [c for p in payloads for c in p.get("choices", []) if c.get("finish_reason")]
                # Either it finished normally (it ran on the survivor) or it ends with one error event.
                assert (len(finishes) == 1 and not errors) or (len(errors) == 1 and "error" in payloads[-1])

            after = await _non_stream(client)
            assert after[0] == 200
        deadline = time.monotonic() + 5
        while time.monotonic() < deadline:
            workers = httpx.get(controller.url + "/list_workers").json()["workers"]
            in_flight = {w["worker_name"]: w["in_flight"] for w in workers}
            if in_flight == {w2.url: 0}:
                break
            await asyncio.sleep(0.1)
        assert in_flight == {w2.url: 0}, "every dispatch was released"

    asyncio.run(main())
