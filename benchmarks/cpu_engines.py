"""CPU engines for GGUF chat models: llama.cpp (quantized) against transformers (fp32), same prompts, one run.

Each engine is loaded in this process through the worker's own backend seam (``load_backend``), so the figures are
the worker's minus HTTP. Per model and engine: time to first token and decode tokens/s of one stream, then the
aggregate tokens/s of 8 concurrent streams.

    python benchmarks/cpu_engines.py                                  # the bundled SmolLM2-135M-Instruct
    python benchmarks/cpu_engines.py --model /models/qwen2.5-coder-0.5b-instruct-q4_k_m.gguf --engines llama_cpp

Targets (issue 14): llama.cpp single-stream decode >= 5x transformers fp32 on the same model; 8 concurrent >= 3x its
own single stream.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import time
from dataclasses import dataclass
from pathlib import Path

from llm_throughput import CPU_QUESTIONS

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

# A knowledge-base chat prompt's size: three retrieved passages and a question, about 700 tokens.
PASSAGE = (
    "The Eiffel Tower is a wrought-iron lattice tower on the Champ de Mars in Paris, France. It is named after the "
    "engineer Gustave Eiffel, whose company designed and built the tower from 1887 to 1889 as the centerpiece of "
    "the 1889 World's Fair. Although initially criticised by some of France's leading artists and intellectuals "
    "for its design, it has since become a global cultural icon of France and one of the most recognisable "
    "structures in the world. "
)
RAG_QUESTION = "Sources:\n" + "\n".join(f"[{i}] {PASSAGE * 3}" for i in (1, 2, 3)) + "\nQuestion: Who designed it?"

# The same eight prompts as the HTTP throughput benchmark, so the two sets of figures describe one workload.
QUESTIONS = CPU_QUESTIONS


@dataclass
class Run:
    tokens: int
    first_token_s: float
    total_s: float


@dataclass
class EngineFigures:
    engine: str
    threads: int
    load_s: float
    first_token_s: float
    single_tok_s: float
    concurrent_tok_s: float

    rag_first_token_s: float

    def row(self, model: str) -> str:
        ratio = self.concurrent_tok_s / self.single_tok_s
        return (
            f"| {model} | {self.engine} | {self.threads} | {self.load_s:.1f} | {self.first_token_s:.2f} | "
            f"{self.rag_first_token_s:.2f} | {self.single_tok_s:.1f} | {self.concurrent_tok_s:.1f} | {ratio:.2f}x |"
        )


async def _one(backend, question: str, max_tokens: int) -> Run:  # type: ignore[no-untyped-def]
    from kbqa.llm.protocol import GenerateRequest, SamplingParams, WorkerMessage

    request = GenerateRequest(
        model="bench",
        messages=[WorkerMessage(role="user", content=question)],
        params=SamplingParams(max_tokens=max_tokens, temperature=0.0, ignore_eos=True),
    )
    started = time.perf_counter()
    first = None
    tokens = 0
    async for event in await backend.generate_stream(request):
        if event.error:
            raise RuntimeError(event.error)
        if first is None and event.text:
            first = time.perf_counter() - started
        if event.usage:
            tokens = event.usage.completion_tokens
    total = time.perf_counter() - started
    return Run(tokens, first if first is not None else total, total)


def measure(model_path: Path, engine: str, threads: int, max_tokens: int, singles: int) -> EngineFigures:
    from kbqa.llm.backends.loader import load_backend
    from kbqa.llm.settings import WorkerSettings

    started = time.perf_counter()
    backend = load_backend(
        WorkerSettings(
            model_path=str(model_path),
            backend=engine,  # type: ignore[arg-type]
            num_threads=threads,
            max_batch_size=8,
            kv_cache_tokens=8 * 4096,  # 8 llama.cpp slots of the default 4,096-token context (the default has 4)
            register_with_controller=False,
        )
    )
    load_s = time.perf_counter() - started
    try:

        async def main() -> EngineFigures:
            await _one(backend, "Hello", 4)  # warm-up
            runs = [await _one(backend, QUESTIONS[i % len(QUESTIONS)], max_tokens) for i in range(singles)]
            decode = [r.tokens / (r.total_s - r.first_token_s) for r in runs if r.tokens > 1]
            began = time.perf_counter()
            batch = await asyncio.gather(*(_one(backend, q, max_tokens) for q in QUESTIONS))
            concurrent = sum(r.tokens for r in batch) / (time.perf_counter() - began)
            rag = [await _one(backend, RAG_QUESTION, 1) for _ in range(singles)]
            used = threads or _default_threads(engine)
            return EngineFigures(
                engine,
                used,
                load_s,
                statistics.median(r.first_token_s for r in runs),
                statistics.median(decode),
                concurrent,
                statistics.median(r.total_s for r in rag),
            )

        return asyncio.run(main())
    finally:
        backend.close()


def _default_threads(engine: str) -> int:
    from kbqa.llm.backends.llamacpp_backend import engine_threads

    if engine == "llama_cpp":
        return engine_threads(0)
    return max(1, (os.cpu_count() or 2) - 1)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", help="a .gguf file (default: the bundled SmolLM2-135M-Instruct)")
    parser.add_argument("--engines", nargs="+", default=["transformers", "llama_cpp"])
    parser.add_argument("--threads", type=int, nargs="+", default=[0], help="0: the worker's default per engine")
    parser.add_argument("--max-tokens", type=int, default=64)
    parser.add_argument("--singles", type=int, default=3, help="single-stream requests (median taken)")
    args = parser.parse_args()
    from kbqa.llm.backends.model_files import bundled_gguf_path, default_model_name

    path = Path(args.model) if args.model else bundled_gguf_path()
    name = default_model_name(path)
    figures: list[EngineFigures] = []
    for engine in args.engines:
        for threads in args.threads:
            result = measure(path, engine, threads, args.max_tokens, args.singles)
            print(result.row(name), flush=True)
            figures.append(result)
    print()
    print(f"{os.cpu_count()} cores; {args.max_tokens} new tokens per request; 8 concurrent = the 8 questions at once.")
    print(
        "| model | engine | threads | load s | first token s | first token, ~700-token prompt s | single tok/s | "
        "8 concurrent tok/s | 8 conc / single |"
    )
    print("|---|---|---:|---:|---:|---:|---:|---:|---:|")
    for f in figures:
        print(f.row(name))
    by_engine = {f.engine: f for f in figures}
    if "transformers" in by_engine and "llama_cpp" in by_engine:
        ratio = by_engine["llama_cpp"].single_tok_s / by_engine["transformers"].single_tok_s
        print(f"\nllama.cpp single stream / transformers fp32 single stream: {ratio:.1f}x")


if __name__ == "__main__":
    main()
