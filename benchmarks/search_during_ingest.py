"""Search latency while a 500-file upload is being indexed, against idle search latency, over real HTTP.

The API server runs as its own process (``python -m kbqa.api``) with a temporary knowledge-base root. A KB is
pre-filled with 100 documents; then

- idle: ``--queries`` sequential ``/knowledge_base/search_docs`` requests;
- during ingestion: ``/knowledge_base/upload_docs`` with 500 new files and ``background=true``, then the same
  search requests in a loop until the ingestion job finishes.

Documents and queries come from the development corpora in benchmarks/corpora.py (English Wikipedia summaries and
Chinese news, half each). Goal: p50 during ingestion <= 2x idle p50.

    python benchmarks/search_during_ingest.py [--files 500] [--queries 100] [--write-results]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parent))

from corpora import file_name, inews_dev, wiki_dev
from results_file import replace_section

REPO = Path(__file__).resolve().parent.parent
SECTION = "## Search during ingestion"
KB = "bench"


def free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def start_server(root: Path, port: int, workers: int) -> subprocess.Popen[bytes]:
    config = root / "settings.yaml"
    config.write_text(f"paths:\n  kb_root: {root / 'kb'}\napi:\n  ingest_workers: {workers}\n", encoding="utf-8")
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "TOKENIZERS_PARALLELISM": "false"}
    log = (root / "server.log").open("wb")
    proc = subprocess.Popen(
        [sys.executable, "-m", "kbqa.api", "--config", str(config), "--port", str(port), "--log-level", "warning"],
        cwd=REPO,
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError((root / "server.log").read_text()[-3000:])
        try:
            if httpx.get(f"http://127.0.0.1:{port}/ready", timeout=30).status_code == 200:
                return proc
        except httpx.HTTPError:
            time.sleep(0.3)
    raise TimeoutError("server did not become ready")


def docs_and_queries(n_files: int, n_pre: int, n_queries: int) -> tuple[list, list, list[str]]:
    half_docs = (n_files + n_pre) // 2
    half_q = n_queries // 2
    en, zh = wiki_dev(half_docs, half_q), inews_dev(n_files + n_pre - half_docs, n_queries - half_q)
    docs = [(file_name(d), t) for d, t in en.docs] + [(file_name(d), t) for d, t in zh.docs]
    docs.sort()
    queries = [q for q, _ in en.queries] + [q for q, _ in zh.queries]
    return docs[:n_pre], docs[n_pre:], queries


def upload(client: httpx.Client, docs: list[tuple[str, str]], background: bool) -> dict:
    files = [("files", (name, text.encode("utf-8"), "text/plain")) for name, text in docs]
    data = {"knowledge_base_name": KB, "background": str(background).lower()}
    r = client.post("/knowledge_base/upload_docs", data=data, files=files, timeout=3600)
    r.raise_for_status()
    return r.json()["data"]


def search_once(client: httpx.Client, query: str) -> float:
    started = time.perf_counter()
    r = client.post("/knowledge_base/search_docs", json={"knowledge_base_name": KB, "query": query, "top_k": 3})
    r.raise_for_status()
    return (time.perf_counter() - started) * 1000


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def run(n_files: int, n_pre: int, n_queries: int, workers: int) -> dict:
    pre, new, queries = docs_and_queries(n_files, n_pre, n_queries)
    with tempfile.TemporaryDirectory(prefix="kbqa-bench-") as tmp:
        root = Path(tmp)
        port = free_port()
        proc = start_server(root, port, workers)
        try:
            with httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=120) as client:
                r = client.post("/knowledge_base/create_knowledge_base", json={"knowledge_base_name": KB})
                r.raise_for_status()
                upload(client, pre, background=False)
                for q in queries[:10]:  # warm-up: caches, first jieba load, connection
                    search_once(client, q)
                idle = [search_once(client, q) for q in queries]

                started = time.perf_counter()
                job_id = upload(client, new, background=True)["job_id"]
                accepted_s = time.perf_counter() - started
                during: list[float] = []
                i = 0
                while True:
                    status = client.get(f"/jobs/{job_id}").json()["data"]
                    if status["status"] not in ("queued", "running"):
                        break
                    during.append(search_once(client, queries[i % len(queries)]))
                    i += 1
                ingest_s = time.perf_counter() - started
        finally:
            proc.terminate()
            proc.wait(30)
    return {
        "files_ingested": n_files,
        "job_status": status["status"],
        "job_failed_files": status["failed"],
        "upload_accepted_s": round(accepted_s, 2),
        "ingest_s": round(ingest_s, 1),
        "idle": {"n": len(idle), "p50_ms": statistics.median(idle), "p95_ms": pct(idle, 0.95)},
        "during": {"n": len(during), "p50_ms": statistics.median(during), "p95_ms": pct(during, 0.95)},
        "ratio_p50": statistics.median(during) / statistics.median(idle),
        "cpus": os.cpu_count(),
        "machine": f"{platform.machine()}, {os.cpu_count()} CPU cores, Python {platform.python_version()}",
    }


def write_results(result: dict, command: str) -> None:
    idle, during = result["idle"], result["during"]
    busy = f"during ingestion of {result['files_ingested']} files"
    section = f"""{SECTION}

`{command}` — API server as its own process (`python -m kbqa.api`), searches over real HTTP
(`/knowledge_base/search_docs`, hybrid retrieval, top_k 3) against a KB pre-filled with 100 documents, while
`/knowledge_base/upload_docs?background=true` indexes {result["files_ingested"]} more (English Wikipedia summaries and
Chinese news from benchmarks/corpora.py) on the background job pool. {result["machine"]}, CPU only, bundled
multilingual-e5-small.

| searches | n | p50 ms | p95 ms |
|---|---:|---:|---:|
| idle | {idle["n"]} | {idle["p50_ms"]:.1f} | {idle["p95_ms"]:.1f} |
| {busy} | {during["n"]} | {during["p50_ms"]:.1f} | {during["p95_ms"]:.1f} |

p50 during / idle = **{result["ratio_p50"]:.2f}x** (goal <= 2x). The upload request returned its job id after
{result["upload_accepted_s"]:.1f} s (multipart body streamed to disk and saved); the job finished in
{result["ingest_s"]:.0f} s ({result["job_status"]}, {result["job_failed_files"]} failed files).
"""
    replace_section(SECTION, section)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--files", type=int, default=500, help="files in the upload that is ingested meanwhile")
    parser.add_argument("--prefill", type=int, default=100, help="documents in the KB before measuring")
    parser.add_argument("--queries", type=int, default=100, help="distinct queries (idle: each once)")
    parser.add_argument("--workers", type=int, default=2, help="api.ingest_workers")
    parser.add_argument("--write-results", action="store_true", help=f"replace the '{SECTION}' section of RESULTS.md")
    args = parser.parse_args()
    result = run(args.files, args.prefill, args.queries, args.workers)
    print(json.dumps(result, indent=2))
    if args.write_results:
        write_results(result, "python benchmarks/search_during_ingest.py " + " ".join(sys.argv[1:]))


if __name__ == "__main__":
    main()
