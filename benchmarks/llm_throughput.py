"""LLM serving throughput: aggregate tokens/s and time to first token through the OpenAI-compatible server.

Starts the controller, one worker and the OpenAI server as subprocesses on loopback, drives them with concurrent
streaming chat requests (concurrency 1, 8, 32, 64 by default), then, in the same run, measures the FastChat way: one
request at a time, one forward per token with a host-side argmax, over the same model in this process.

    python benchmarks/llm_throughput.py                 # CPU, the bundled SmolLM2-135M-Instruct
    python benchmarks/llm_throughput.py --gpu           # CUDA: Qwen2.5-7B-Instruct shape, random bf16 weights,
                                                        # 512-token prompts, 128 new tokens (skips without CUDA)

CPU target: aggregate tokens/s at concurrency 8 >= 4x the concurrency-1 figure.
GPU goal: >= 1,700 tokens/s at 64 concurrent streams, >= 120 tokens/s for a single stream.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import httpx

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

CPU_QUESTIONS = [
    "Write a long story about a dragon.",
    "Explain how a bicycle works.",
    "Describe the city of Paris.",
    "Tell me about the history of tea.",
    "Why is the sky blue?",
    "List some healthy breakfast ideas.",
    "How do airplanes fly?",
    "Describe a day at the beach.",
]


@dataclass
class LevelResult:
    concurrency: int
    requests: int
    tokens: int
    seconds: float
    ttft: list[float]

    @property
    def tokens_per_s(self) -> float:
        return self.tokens / self.seconds

    def line(self) -> str:
        p50 = statistics.median(self.ttft)
        p90 = sorted(self.ttft)[max(0, int(len(self.ttft) * 0.9) - 1)]
        return (
            f"| {self.concurrency:>3} | {self.requests:>4} | {self.tokens:>6} | {self.seconds:7.1f} | "
            f"{self.tokens_per_s:8.1f} | {p50:6.2f} | {p90:6.2f} |"
        )


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class Services:
    def __init__(self, worker_args: list[str], log_dir: Path) -> None:
        self.log_dir = log_dir
        self.procs: list[subprocess.Popen[bytes]] = []
        (log_dir / "empty.yaml").write_text("{}\n")
        self.env = {**os.environ, "KBQA_CONFIG": str(log_dir / "empty.yaml")}
        c_port, w_port, o_port = free_port(), free_port(), free_port()
        self.controller = f"http://127.0.0.1:{c_port}"
        self.server = f"http://127.0.0.1:{o_port}"
        self._start("controller", "kbqa.llm.controller", c_port)
        self._start("worker", "kbqa.llm.worker", w_port, "--controller-address", self.controller, *worker_args)
        self._start("openai", "kbqa.llm.openai_server", o_port, "--controller-address", self.controller)

    def _start(self, name: str, module: str, port: int, *args: str) -> None:
        log = (self.log_dir / f"{name}.log").open("wb")
        self.procs.append(
            subprocess.Popen(
                [sys.executable, "-m", module, "--port", str(port), "--log-level", "warning", *args],
                stdout=log,
                stderr=subprocess.STDOUT,
                env=self.env,
            )
        )

    def wait(self, model: str, timeout: float = 900) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            for p in self.procs:
                if p.poll() is not None:
                    raise RuntimeError(f"a service exited; logs in {self.log_dir}")
            try:
                models = httpx.get(f"{self.server}/v1/models", timeout=2).json()["data"]
                if any(m["id"] == model for m in models):
                    return
            except (httpx.HTTPError, KeyError, ValueError):
                pass
            time.sleep(0.5)
        raise TimeoutError(f"services not up; logs in {self.log_dir}")

    def stop(self) -> None:
        for p in reversed(self.procs):
            p.terminate()
        for p in self.procs:
            try:
                p.wait(15)
            except subprocess.TimeoutExpired:
                p.kill()


async def one_request(client: httpx.AsyncClient, body: dict) -> tuple[int, float]:
    """Completion tokens and time to first token of one streaming request."""
    start = time.perf_counter()
    ttft = None
    tokens = 0
    path = "/v1/chat/completions" if "messages" in body else "/v1/completions"
    async with client.stream("POST", path, json=body) as r:
        if r.status_code != 200:
            raise RuntimeError(f"HTTP {r.status_code}: {(await r.aread())[:300]!r}")
        async for line in r.aiter_lines():
            if not line.startswith("data: ") or line == "data: [DONE]":
                continue
            chunk = json.loads(line[6:])
            if "error" in chunk:
                raise RuntimeError(chunk["error"])
            choices = chunk.get("choices") or []
            if ttft is None and choices and (choices[0].get("delta", {}).get("content") or choices[0].get("text")):
                ttft = time.perf_counter() - start
            if chunk.get("usage"):
                tokens = chunk["usage"]["completion_tokens"]
    return tokens, ttft if ttft is not None else time.perf_counter() - start


async def run_level(server: str, concurrency: int, rounds: int, make_body) -> LevelResult:  # type: ignore[no-untyped-def]
    limits = httpx.Limits(max_connections=concurrency + 4)
    async with httpx.AsyncClient(base_url=server, timeout=3600, limits=limits) as client:
        results: list[tuple[int, float]] = []

        async def lane(lane_id: int) -> None:
            for r in range(rounds):
                results.append(await one_request(client, make_body(lane_id * rounds + r)))

        start = time.perf_counter()
        await asyncio.gather(*(lane(i) for i in range(concurrency)))
        seconds = time.perf_counter() - start
    return LevelResult(concurrency, len(results), sum(t for t, _ in results), seconds, [f for _, f in results])


def naive_loop(model_dir: Path, prompts: list[list[int]], max_tokens: int, device: str, dtype: str) -> LevelResult:
    """FastChat's default worker: batch size 1, one forward per token, argmax on the host, one request at a time."""
    import torch
    from transformers import AutoModelForCausalLM

    from kbqa.llm.backends.transformers_backend import configure_cpu_threads

    if device == "cpu":
        configure_cpu_threads(0)  # the same thread count the worker uses, for a like-for-like comparison
    model = AutoModelForCausalLM.from_pretrained(model_dir, dtype=getattr(torch, dtype)).to(device).eval()
    tokens = 0
    ttfts: list[float] = []
    start = time.perf_counter()
    with torch.inference_mode():
        for prompt in prompts:
            t0 = time.perf_counter()
            ids = torch.tensor([prompt], device=device)
            out = model(input_ids=ids, use_cache=True)
            past = out.past_key_values
            token = int(out.logits[0, -1].argmax())
            ttfts.append(time.perf_counter() - t0)
            tokens += 1
            for _ in range(max_tokens - 1):
                out = model(input_ids=torch.tensor([[token]], device=device), past_key_values=past, use_cache=True)
                past = out.past_key_values
                token = int(out.logits[0, -1].argmax())
                tokens += 1
    seconds = time.perf_counter() - start
    return LevelResult(1, len(prompts), tokens, seconds, ttfts)


def cpu_benchmark(args: argparse.Namespace) -> str:
    from transformers import AutoTokenizer

    from kbqa.llm.backends.model_files import bundled_gguf_path, ensure_hf_folder

    model_dir = ensure_hf_folder(bundled_gguf_path(), None)
    model = "SmolLM2-135M-Instruct"
    tokenizer = AutoTokenizer.from_pretrained(model_dir)

    def body(i: int) -> dict:
        return {
            "model": model,
            "messages": [{"role": "user", "content": CPU_QUESTIONS[i % len(CPU_QUESTIONS)]}],
            "max_tokens": args.max_tokens,
            "temperature": 0,
            "ignore_eos": True,
            "stream": True,
            "stream_options": {"include_usage": True},
        }

    prompts = [
        list(
            tokenizer(
                tokenizer.apply_chat_template(
                    [{"role": "user", "content": q}], tokenize=False, add_generation_prompt=True
                ),
                add_special_tokens=False,
            ).input_ids
        )
        for q in CPU_QUESTIONS[: args.naive_requests]
    ]
    worker_args = ["--max-batch-size", str(max(args.concurrency)), "--device", "cpu"]
    return run(args, model, worker_args, body, model_dir, prompts, "cpu", "float32")


def gpu_benchmark(args: argparse.Namespace) -> str | None:
    import torch

    if not torch.cuda.is_available():
        print("GPU benchmark skipped: no CUDA device.")
        return None
    from transformers import AutoModelForCausalLM, AutoTokenizer, Qwen2Config

    from kbqa.llm.backends.model_files import bundled_gguf_path, ensure_hf_folder

    folder = Path(tempfile.mkdtemp(prefix="kbqa-qwen7b-shape-"))
    config = Qwen2Config(
        vocab_size=152064,
        hidden_size=3584,
        intermediate_size=18944,
        num_hidden_layers=28,
        num_attention_heads=28,
        num_key_value_heads=4,
        max_position_embeddings=32768,
        rope_theta=1_000_000.0,
        tie_word_embeddings=False,
    )
    torch.manual_seed(0)
    with torch.device("cuda"):
        model = AutoModelForCausalLM.from_config(config, dtype=torch.bfloat16)
    model.save_pretrained(folder)
    del model
    torch.cuda.empty_cache()
    # Random weights need no real vocabulary; the bundled tokenizer only has to decode (unknown ids decode to "").
    AutoTokenizer.from_pretrained(ensure_hf_folder(bundled_gguf_path(), None)).save_pretrained(folder)
    rng = random.Random(0)
    prompt_len = 512
    prompts = [[rng.randrange(1000, 40000) for _ in range(prompt_len)] for _ in range(max(args.naive_requests, 64 * 2))]
    model_name = "qwen2.5-7b-shape"

    def body(i: int) -> dict:
        return {
            "model": model_name,
            "prompt": prompts[i % len(prompts)],
            "max_tokens": 128,
            "temperature": 0,
            "ignore_eos": True,
            "stream": True,
            "stream_options": {"include_usage": True},
        }

    args.max_tokens = 128
    worker_args = [
        "--model-path",
        str(folder),
        "--model-names",
        model_name,
        "--device",
        "cuda",
        "--dtype",
        "bfloat16",
        "--max-batch-size",
        str(max(args.concurrency)),
    ]
    return run(args, model_name, worker_args, body, folder, prompts[: args.naive_requests], "cuda", "bfloat16")


def run(args, model, worker_args, body, model_dir, naive_prompts, device, dtype) -> str:  # type: ignore[no-untyped-def]
    log_dir = Path(tempfile.mkdtemp(prefix="kbqa-bench-"))
    services = Services(worker_args, log_dir)
    results: list[LevelResult] = []
    try:
        services.wait(model)
        asyncio.run(run_level(services.server, 1, 1, body))  # warm-up
        for c in args.concurrency:
            rounds = args.rounds if c <= 8 else 1
            result = asyncio.run(run_level(services.server, c, rounds, body))
            print(f"concurrency {c}: {result.tokens_per_s:.1f} tok/s", flush=True)
            results.append(result)
    finally:
        services.stop()
    naive = naive_loop(model_dir, naive_prompts, args.max_tokens, device, dtype)
    by_c = {r.concurrency: r for r in results}
    lines = [
        "| concurrency | requests | tokens | seconds | tokens/s | TTFT p50 s | TTFT p90 s |",
        "|---:|---:|---:|---:|---:|---:|---:|",
        *[r.line() for r in results],
        "",
        f"Naive one-request-at-a-time loop (FastChat's default worker), same model, {naive.requests} requests: "
        f"{naive.tokens_per_s:.1f} tokens/s (TTFT p50 {statistics.median(naive.ttft):.2f} s).",
    ]
    if 1 in by_c and 8 in by_c:
        lines.append(f"Concurrency 8 / concurrency 1: {by_c[8].tokens_per_s / by_c[1].tokens_per_s:.2f}x")
    top = max(by_c)
    lines.append(f"Concurrency {top} / naive loop: {by_c[top].tokens_per_s / naive.tokens_per_s:.2f}x")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--gpu", action="store_true", help="GPU mode (skips cleanly without CUDA)")
    parser.add_argument("--concurrency", type=int, nargs="+", default=[1, 8, 32, 64])
    parser.add_argument(
        "--max-tokens", type=int, default=128, help="new tokens per request (CPU mode; 128 as in the GPU setup)"
    )
    parser.add_argument("--rounds", type=int, default=3, help="requests per lane at concurrency <= 8")
    parser.add_argument("--naive-requests", type=int, default=4, help="requests in the naive loop")
    args = parser.parse_args()
    report = gpu_benchmark(args) if args.gpu else cpu_benchmark(args)
    if report is not None:
        print()
        print(report)


if __name__ == "__main__":
    main()
